"""MViTv2-S from torchvision as an RGB branch: block setting, tokens/embedding, weights, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgcli.errors import MgError
from mgcli.models.mvit import VideoMViT, mvit_v2_blocks, mvit_v2_s

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"frames": 4, "size": 64, "depths": (1, 1, 1, 1), "dims": (16, 32, 64, 128), "heads": (1, 1, 2, 2)}


def _torchvision_v2_s_setting(monkeypatch: pytest.MonkeyPatch) -> tuple[list, dict]:
    """The block setting and keyword arguments torchvision's ``mvit_v2_s`` hands to its ``_mvit``."""
    import torchvision.models.video.mvit as tvm

    seen = []
    monkeypatch.setattr(tvm, "_mvit", lambda block_setting, **kw: seen.append((block_setting, kw)))
    tvm.mvit_v2_s()
    monkeypatch.undo()
    return seen[0]


def test_block_setting_reproduces_torchvision_v2_s(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs, kwargs = _torchvision_v2_s_setting(monkeypatch)
    ours = mvit_v2_blocks()
    assert len(ours) == len(theirs) == 16
    for a, b in zip(ours, theirs, strict=False):
        assert vars(a) == vars(b)
    assert (
        kwargs["residual_pool"],
        kwargs["residual_with_cls_embed"],
        kwargs["rel_pos_embed"],
        kwargs["proj_after_attn"],
    ) == (True, False, True, True)
    with pytest.raises(ValueError, match="4 stages"):
        mvit_v2_blocks((1, 1, 1), (8, 16, 32, 64), (1, 1, 1, 1))
    with pytest.raises(ValueError, match="divisible by its heads"):
        mvit_v2_blocks((1, 1, 1, 1), (8, 16, 30, 64), (1, 1, 4, 1))


@torch.no_grad()
def test_paper_size_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models.video as tvv

    torch.manual_seed(0)
    model = mvit_v2_s(7).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"MViTv2-S, 7 classes: {params:,} parameters")
    assert params == 34_537_744 - (768 + 1) * 400 + (768 + 1) * 7  # torchvision's count, our head
    assert model.embed_dim == 768 and model.num_classes == 7
    assert model.temporal_size == 16 and model.spatial_size == (224, 224)
    with torch.device("meta"):  # the same tensors as torchvision's own builder (meta: no memory, no init)
        reference = tvv.mvit_v2_s(num_classes=7)
    ours = {k: v.shape for k, v in model.net.state_dict().items()}
    assert ours == {k: v.shape for k, v in reference.state_dict().items()}
    x = torch.randint(0, 256, (1, 3, 16, 224, 224), dtype=torch.uint8)
    emb = model.embed(x)
    assert emb.shape == (1, 768)
    assert model.net.head(emb).shape == (1, 7)


@torch.no_grad()
def test_tiny_tokens_embedding_and_logits() -> None:
    torch.manual_seed(0)
    model = mvit_v2_s(5, dropout=0.0, **TINY).eval()
    assert isinstance(model, VideoMViT) and model.embed_dim == 128
    assert model.temporal_size == 4 and model.spatial_size == (64, 64)
    x = torch.randint(0, 256, (2, 3, 4, 64, 64), dtype=torch.uint8)
    tokens, thw = model.tokens(x)
    assert thw == (2, 2, 2) and tokens.shape == (2, 1 + 2 * 2 * 2, 128)
    emb, logits = model.embed(x), model(x)
    assert emb.shape == (2, 128) and logits.shape == (2, 5)
    torch.testing.assert_close(emb, tokens[:, 0])
    torch.testing.assert_close(logits, model.net.head(emb))
    torch.testing.assert_close(logits, model.net(model.input_norm(x)))  # the same as torchvision's forward
    torch.testing.assert_close(model(x.float()), logits)  # 0..255 floats as uint8
    channels_last = x.contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(model(channels_last), logits, rtol=1e-4, atol=1e-5)
    # Kinetics normalisation: mean 0.45, std 0.225 on the 0..1 scale
    torch.testing.assert_close(model.input_norm(torch.full((1, 3, 1, 1, 1), 0.45 * 255)), torch.zeros(1, 3, 1, 1, 1))
    torch.testing.assert_close(model.input_norm(torch.full((1, 3, 1, 1, 1), 0.675 * 255)), torch.ones(1, 3, 1, 1, 1))
    with pytest.raises(MgError, match=r"exactly the frames x size x size.*got \[2, 3, 4, 96, 96\]"):
        model(torch.zeros(2, 3, 4, 96, 96))


def test_invalid_settings() -> None:
    for options, message in [
        (dict(TINY, frames=3), "frames must be even"),
        (dict(TINY, frames=0), "frames must be even"),
        (dict(TINY, size=72), "multiple of 32"),
        (dict(TINY, depths=(1, 1, 1)), "4 stages"),
        (dict(TINY, heads=(1, 1, 2)), "4 stages"),
        (dict(TINY, dropout=1.5), r"in \[0, 1\]"),
        (dict(TINY, in_channels=17), "3 channels"),
    ]:
        with pytest.raises(ValueError, match=message):
            mvit_v2_s(5, **options)


def test_pretrained_from_a_state_dict_file(tmp_path: Path) -> None:
    from torchvision.models.video import MViT

    torch.manual_seed(1)
    source = MViT(
        spatial_size=(64, 64),
        temporal_size=4,
        block_setting=mvit_v2_blocks(TINY["depths"], TINY["dims"], TINY["heads"]),
        residual_pool=True,
        residual_with_cls_embed=False,
        rel_pos_embed=True,
        proj_after_attn=True,
        num_classes=400,
    )
    torch.save(source.state_dict(), tmp_path / "k400.pth")
    model = mvit_v2_s(5, pretrained=str(tmp_path / "k400.pth"), **TINY)
    theirs = source.state_dict()
    for key, value in model.net.state_dict().items():
        if not key.startswith("head."):
            torch.testing.assert_close(value, theirs[key], rtol=0, atol=0)
    assert model.net.head[1].out_features == 5  # the head is ours, not the file's
    assert not model.net.head[1].bias.detach().any()

    with pytest.raises(
        MgError, match=r"\(MViT: check depths/dims/heads/frames/size\): 'blocks.0.attn.rel_pos_t' has shape"
    ):
        mvit_v2_s(5, pretrained=str(tmp_path / "k400.pth"), **dict(TINY, frames=8))  # rel. positions for 4 frames
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(
        MgError, match=r"\(MViT: .*\) does not fit: .* 1 of its tensors with no place in the model \(e.g. .*\)"
    ):
        mvit_v2_s(5, pretrained=str(tmp_path / "other.pth"), **TINY)
    with pytest.raises(MgError, match="pretrained weights not found"):
        mvit_v2_s(5, pretrained=str(tmp_path / "none.pth"), **TINY)


def test_kinetics_weights_offline_and_refused_for_other_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models.video as tvv

    def offline(*args, **kwargs):  # what an unreachable server does
        raise OSError("network unreachable\nsecond line")

    monkeypatch.setattr(tvv.MViT_V2_S_Weights.KINETICS400_V1.__class__, "get_state_dict", offline)
    with pytest.raises(MgError, match=r"could not fetch the MViT_V2_S_Weights.KINETICS400_V1 weights \(network ") as e:
        mvit_v2_s(5, pretrained="kinetics400", stochastic_depth=0.0)
    message = str(e.value)
    assert "\n" not in message and "cannot be downloaded" in message and "state dict works offline" in message
    for options in (TINY, {"frames": 8}, {"size": 192}):
        with pytest.raises(MgError, match="kinetics400' needs the MViTv2-S settings"):
            mvit_v2_s(5, pretrained="kinetics400", **options)


def test_gradients_and_a_few_training_steps() -> None:
    torch.manual_seed(0)
    model = mvit_v2_s(3, dropout=0.0, stochastic_depth=0.0, **TINY).train()
    x = torch.randint(0, 256, (4, 3, 4, 64, 64), dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if not losses:
            assert float(model.net.conv_proj.weight.grad.abs().sum()) > 0
            assert float(model.net.head[1].weight.grad.abs().sum()) > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
