"""SwinFace on torchvision's Swin: the reference checkpoint layout maps onto it tensor by tensor, the
patch merging / relative-position / shifted-window conventions agree, bad files are one MgError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mgcli.errors import MgError
from mgcli.models.swinface import SwinFace, map_swinface_state, read_swinface_checkpoint, swinface

pytestmark = pytest.mark.usefixtures("one_thread")

# The reference architecture, written out from its facts (not from our module's state_dict):
# 112x112 input, patch 2 -> 56x56 tokens of 96 channels, 4 stages, window 7, embedding 512.
DEPTHS, HEADS, WINDOW, TOKENS = (2, 2, 6, 2), (3, 6, 12, 24), 7, 56


def reference_index() -> np.ndarray:
    """The reference's [49, 49] relative-position index of a 7x7 window."""
    hh, ww = np.meshgrid(np.arange(WINDOW), np.arange(WINDOW), indexing="ij")
    flat = np.stack([hh.ravel(), ww.ravel()])  # 2, 49
    rel = (flat[:, :, None] - flat[:, None, :]).transpose(1, 2, 0) + (WINDOW - 1)
    return rel[..., 0] * (2 * WINDOW - 1) + rel[..., 1]


def reference_backbone_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Reference backbone names and shapes (``SwinTransformer(img_size=112, patch_size=2, ...)``),
    random values; ``attn_mask`` buffers only on shifted blocks whose map is larger than the window."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    def ln(prefix: str, c: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1 + r(c), f"{prefix}.bias": r(c)}

    def bn(prefix: str, c: int) -> dict[str, torch.Tensor]:
        return {
            f"{prefix}.weight": 1 + r(c),
            f"{prefix}.bias": r(c),
            f"{prefix}.running_mean": r(c),
            f"{prefix}.running_var": torch.rand(c, generator=g) + 0.5,
            f"{prefix}.num_batches_tracked": torch.tensor(1000),
        }

    sd = {"patch_embed.proj.weight": r(96, 3, 2, 2), "patch_embed.proj.bias": r(96), **ln("patch_embed.norm", 96)}
    res = TOKENS
    for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS, strict=True)):
        c = 96 * 2**i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}"
            sd.update(ln(f"{p}.norm1", c))
            sd[f"{p}.attn.relative_position_bias_table"] = r((2 * WINDOW - 1) ** 2, heads)
            sd[f"{p}.attn.relative_position_index"] = torch.from_numpy(reference_index())
            sd[f"{p}.attn.qkv.weight"], sd[f"{p}.attn.qkv.bias"] = r(3 * c, c), r(3 * c)
            sd[f"{p}.attn.proj.weight"], sd[f"{p}.attn.proj.bias"] = r(c, c), r(c)
            sd.update(ln(f"{p}.norm2", c))
            sd[f"{p}.mlp.fc1.weight"], sd[f"{p}.mlp.fc1.bias"] = r(4 * c, c), r(4 * c)
            sd[f"{p}.mlp.fc2.weight"], sd[f"{p}.mlp.fc2.bias"] = r(c, 4 * c), r(c)
            if j % 2 == 1 and res > WINDOW:
                sd[f"{p}.attn_mask"] = torch.zeros((res // WINDOW) ** 2, WINDOW**2, WINDOW**2)
        if i < len(DEPTHS) - 1:
            sd[f"layers.{i}.downsample.reduction.weight"] = r(2 * c, 4 * c)
            sd.update(ln(f"layers.{i}.downsample.norm", 4 * c))
        res //= 2
    sd.update(ln("norm", 768))
    sd["head.weight"], sd["head.bias"] = r(512, 768), r(512)  # built by the reference, unused by its forward
    sd["feature.0.weight"] = r(768, 768)
    sd.update(bn("feature.1", 768))
    sd["feature.2.weight"] = r(512, 768)
    sd.update(bn("feature.3", 512))
    return sd


def checkpoint(backbone: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "state_dict_backbone": backbone,
        "state_dict_fam": {"conv.weight": torch.ones(4, 2)},
        "state_dict_tss": {"subnets.0.weight": torch.ones(3)},
        "state_dict_om": {"output_fcs.0.weight": torch.ones(2, 2)},
    }


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return reference_backbone_state()


@pytest.fixture(scope="module")
def loaded(ref: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> tuple[SwinFace, Path]:
    path = tmp_path_factory.mktemp("swinface") / "checkpoint_step_79999_gpu_0.pt"
    torch.save(checkpoint(ref), path)
    with torch.random.fork_rng():
        torch.manual_seed(123)  # our init differs from the file everywhere, so a missed copy shows
        return swinface(pretrained=path), path


def test_reference_checkpoint_loads_every_tensor_in_place(ref: dict[str, torch.Tensor], loaded) -> None:
    model, path = loaded
    (report,) = model.load_reports
    masks = [k for k in ref if k.endswith("attn_mask")]
    indexes = [k for k in ref if k.endswith("relative_position_index")]
    assert len(masks) == 5 and len(indexes) == 12
    assert report.new == [] and sorted(report.unused) == ["state_dict_fam", "state_dict_om", "state_dict_tss"]
    assert sorted(report.skipped) == sorted(["head.weight", "head.bias", *masks, *indexes])
    assert len(report.loaded) == len(ref) - len(report.skipped)
    assert "skipped" in report.describe() and str(path) in report.source

    f = model.backbone.features
    exact = {
        "layers.2.blocks.5.attn.qkv.weight": f[5][5].attn.qkv.weight,
        "layers.2.blocks.5.attn.qkv.bias": f[5][5].attn.qkv.bias,
        "layers.1.downsample.reduction.weight": f[4].reduction.weight,
        "layers.1.downsample.norm.weight": f[4].norm.weight,
        "layers.0.blocks.1.attn.relative_position_bias_table": f[1][1].attn.relative_position_bias_table,
        "layers.3.blocks.1.mlp.fc1.weight": f[7][1].mlp[0].weight,
        "layers.3.blocks.1.mlp.fc2.bias": f[7][1].mlp[3].bias,
        "patch_embed.proj.weight": f[0][0].weight,
        "patch_embed.norm.bias": f[0][2].bias,
        "norm.weight": model.backbone.norm.weight,
        "feature.2.weight": model.feature[2].weight,
        "feature.3.running_var": model.feature[3].running_var,
    }
    for key, ours in exact.items():
        assert torch.equal(ours, ref[key]), key

    ours = model.state_dict()
    mapped = map_swinface_state(checkpoint(ref))  # the whole checkpoint: its backbone is unwrapped
    index_names = {k for k in ours if k.endswith("relative_position_index")}
    assert set(mapped) | index_names == set(ours) and not set(mapped) & index_names
    for name, value in mapped.items():
        assert torch.equal(ours[name], value), name
    # torchvision's recomputed index is the reference's, flattened
    for name in index_names:
        assert torch.equal(ours[name], torch.from_numpy(reference_index()).flatten())


@torch.no_grad()
def test_embedding_is_512d_finite_and_uint8_means_minus_one_to_one(loaded) -> None:
    model, _ = loaded
    assert not model.training and model.out_dim == model.embed_dim == 512
    x = torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    emb = model(x)
    assert emb.shape == (2, 512) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])
    torch.testing.assert_close(model(x.float() / 127.5 - 1.0), emb)  # floats are taken as [-1, 1]
    torch.testing.assert_close(emb, model.feature(model.pooled(x)))
    with pytest.raises(ValueError, match=r"\[N, 3, 112, 112\]"):
        model(torch.zeros(1, 3, 96, 96, dtype=torch.uint8))


@torch.no_grad()
def test_patch_merging_concatenates_like_the_reference(ref: dict[str, torch.Tensor], loaded) -> None:
    model, _ = loaded
    x = np.random.default_rng(1).standard_normal((1, 4, 6, 96)).astype(np.float32)  # B, H, W, C
    w = ref["layers.0.downsample.norm.weight"].numpy()
    b = ref["layers.0.downsample.norm.bias"].numpy()
    red = ref["layers.0.downsample.reduction.weight"].numpy()

    def reference(order: tuple[int, int, int, int]) -> np.ndarray:
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]  # x0, x1, x2, x3
        y = np.concatenate([parts[i] for i in order], -1)
        y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5) * w + b
        return y @ red.T

    ours = model.backbone.features[2](torch.from_numpy(x)).numpy()
    assert ours.shape == (1, 2, 3, 192)
    np.testing.assert_allclose(ours, reference((0, 1, 2, 3)), rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours, reference((0, 2, 1, 3)), atol=1e-3)  # the order is what is tested


@torch.no_grad()
def test_relative_position_bias_and_shifts_follow_the_reference(ref: dict[str, torch.Tensor], loaded) -> None:
    model, _ = loaded
    f = model.backbone.features
    table = ref["layers.2.blocks.3.attn.relative_position_bias_table"].numpy()
    expected = table[reference_index().ravel()].reshape(49, 49, -1).transpose(2, 0, 1)  # heads, 49, 49
    np.testing.assert_array_equal(f[5][3].attn.get_relative_position_bias()[0].numpy(), expected)

    def unshifted(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        saved, block.attn.shift_size = block.attn.shift_size, [0, 0]
        try:
            return block(x)
        finally:
            block.attn.shift_size = saved

    g = torch.Generator().manual_seed(2)
    last, third = f[7][1], f[5][1]  # odd blocks: shift 3 configured
    assert last.attn.shift_size == [3, 3] and third.attn.shift_size == [3, 3]
    x7 = torch.randn(1, 7, 7, 768, generator=g)
    torch.testing.assert_close(last(x7), unshifted(last, x7), rtol=0, atol=0)  # 7x7 map: no shift, as the reference
    x14 = torch.randn(1, 14, 14, 384, generator=g)
    assert not torch.allclose(third(x14), unshifted(third, x14))  # 14x14 map: shifted windows


def test_bad_files_are_one_mgerror_line(ref: dict[str, torch.Tensor], tmp_path: Path) -> None:
    def fails(obj: object, match: str) -> None:
        path = tmp_path / "bad.pt"
        torch.save(obj, path)
        with pytest.raises(MgError, match=match) as e:
            swinface(pretrained=path)
        assert "\n" not in str(e.value)

    with pytest.raises(MgError, match="pretrained weights not found") as e:
        swinface(pretrained=tmp_path / "missing.pt")
    assert e.value.path == str(tmp_path / "missing.pt")

    wrong = dict(ref)
    wrong["layers.2.blocks.5.attn.qkv.weight"] = torch.zeros(3 * 384, 383)
    fails(checkpoint(wrong), r"'layers.2.blocks.5.attn.qkv.weight' has shape \[1152, 383\]")
    fails({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, "does not fit")
    fails({"state_dict_backbone": {"norm.weight": "not a tensor"}}, "expected a SwinFace checkpoint")
    fails([1, 2, 3], "expected a SwinFace checkpoint")
    flipped = dict(ref)
    flipped["layers.1.blocks.0.attn.relative_position_index"] = flipped[
        "layers.1.blocks.0.attn.relative_position_index"
    ].T.contiguous()
    fails(flipped, "relative-position index")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(MgError, match="not a loadable checkpoint"):
        swinface(pretrained=tmp_path / "text.pt")


def test_bare_and_ddp_backbone_state_dicts(ref: dict[str, torch.Tensor], tmp_path: Path) -> None:
    torch.save({f"module.{k}": v for k, v in ref.items()}, tmp_path / "ddp.pt")
    backbone, others = read_swinface_checkpoint(tmp_path / "ddp.pt")
    assert others == [] and set(backbone) == set(ref)
    with pytest.raises(MgError, match="1 tensors are not SwinFace backbone names"):
        map_swinface_state({**ref, "fam.conv.weight": torch.zeros(1)})
