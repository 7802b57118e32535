"""Video Swin from torchvision as an RGB branch: our head, the embedding, pretrained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgcli.errors import MgError
from mgcli.models import build_model, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")


@torch.no_grad()
def test_swin3d_t_random_init_logits_and_embedding() -> None:
    torch.manual_seed(0)
    model = build_model("swin3d_t", 7, dropout=0.0).eval()
    assert count_parameters(model) == 27_875_078 - (768 + 1) * 32 + (768 + 1) * 7
    x = torch.randint(0, 256, (2, 3, 8, 64, 64), dtype=torch.uint8)
    logits, emb = model(x), model.embed(x)
    assert logits.shape == (2, 7) and emb.shape == (2, 768)
    torch.testing.assert_close(logits, model.net.head(emb))
    torch.testing.assert_close(logits, model.net(model.input_norm(x)))  # the same as torchvision's forward


def test_pretrained_from_a_state_dict_file_and_offline(tmp_path: Path) -> None:
    import torchvision.models.video as tvv

    torch.manual_seed(1)
    source = tvv.swin3d_t(num_classes=400)
    torch.save(source.state_dict(), tmp_path / "k400.pth")
    model = build_model("swin3d_t", 5, pretrained=str(tmp_path / "k400.pth"))
    torch.testing.assert_close(model.net.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert model.net.head[1].out_features == 5  # the head is ours, not the file's
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(MgError, match=r"pretrained .*\(swin3d_t\) does not fit"):
        build_model("swin3d_t", 5, pretrained=str(tmp_path / "other.pth"))
    with pytest.raises(MgError, match="pretrained weights not found"):
        build_model("swin3d_t", 5, pretrained=str(tmp_path / "none.pth"))
    with pytest.raises(MgError, match="variant must be|3 channels"):
        build_model("swin3d_t", 5, in_channels=17)


def test_kinetics_weights_fail_with_one_line_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.models.video as tvv

    def offline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - what an unreachable server does
        raise OSError("network unreachable")

    monkeypatch.setattr(tvv.Swin3D_T_Weights.KINETICS400_V1.__class__, "get_state_dict", offline)
    with pytest.raises(MgError, match=r"could not fetch the Swin3D_T_Weights.KINETICS400_V1 weights \(network "):
        build_model("swin3d_t", 5, pretrained="kinetics400")


def test_swin_trains_as_an_rgb_branch(train_artifacts: Path, tmp_path: Path) -> None:
    from mgcli.io.scores import check_probabilities, read_scores
    from mgcli.train.config import load_config
    from mgcli.train.launch import launch

    cfg = load_config(
        None,
        [
            "model.name=swin3d_t",
            f"data.path={train_artifacts / 'frames.h5'}",
            "data.view.clip_len=4",
            "data.view.num_clips=1",
            "data.view.resize_short=40",
            "data.view.train_size=32",
            "data.view.test_size=32",
            "optim.name=adamw",
            "optim.lr=0.0001",
            "train.batch_size=4",
            "train.epochs=1",
            "data.workers=0",
            f"out_dir={tmp_path}",
            "name=swin",
        ],
    )
    metrics = launch(cfg, quiet=True)
    assert metrics["model"] == "swin3d_t" and metrics["finished"]
    check_probabilities(read_scores(tmp_path / "swin" / "scores-test.csv"), "swin")
