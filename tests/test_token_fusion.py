"""Cross-Modal Token Fusion: shapes, masks, gradients, branch initialisation, and short training
runs of the MiGA 2025 models (2s-AGCN joint and bone, MViT, token fusion) on the small sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from mgcli.cli import app
from mgcli.errors import MgError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.scores import read_scores
from mgcli.models import build_model
from mgcli.train.config import load_config
from mgcli.train.launch import launch

runner = CliRunner()
VIDEO = {
    "frames": 4,
    "size": 64,
    "depths": [1, 1, 1, 1],
    "dims": [16, 32, 64, 128],
    "heads": [1, 1, 2, 2],
    "dropout": 0.0,
    "stochastic_depth": 0.0,
}
SKELETON = {"layout": "upper22", "base_channels": 8}


def tiny(**kw: object) -> torch.nn.Module:
    opts = {"video": VIDEO, "skeleton": SKELETON, "width": 32, "depth": 1, "heads": 2, "dropout": 0.0, **kw}
    return build_model("token_fusion", 5, **opts)


def batch(n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "rgb": torch.randint(0, 256, (n, 3, 4, 64, 64), generator=g, dtype=torch.uint8),
        "skeleton": torch.randn(n, 3, 16, 22, 1, generator=g),
    }


@pytest.mark.parametrize(
    ("video_tokens", "skeleton_tokens", "n_v", "n_s"),
    [
        ("temporal", "temporal", 2, 4),
        ("all", "joint", 8, 22),
        ("cls", "pooled", 1, 1),
    ],
)
def test_token_shapes(video_tokens: str, skeleton_tokens: str, n_v: int, n_s: int) -> None:
    model = tiny(video_tokens=video_tokens, skeleton_tokens=skeleton_tokens).eval()
    x = batch()
    assert model.rgb_tokens(x["rgb"]).shape == (2, n_v, 128)  # 4 frames -> 2 steps, 64 px -> 2 x 2
    assert model.skeleton_token_seq(x["skeleton"]).shape == (2, n_s, 32)  # 16 frames -> 4 steps
    assert model(**x).shape == (2, 5)


def test_absent_modality_tokens_are_masked() -> None:
    torch.manual_seed(0)
    model = tiny().eval()
    x = batch()
    present = torch.tensor([[True, False], [True, True]])
    out = model(**x, present=present)
    other = {**x, "skeleton": torch.randn_like(x["skeleton"]) * 5}
    out2 = model(**other, present=present)
    torch.testing.assert_close(out[0], out2[0])  # the skeleton of sample 0 is masked out
    assert not torch.allclose(out[1], out2[1])  # sample 1 sees its skeleton
    torch.testing.assert_close(model(**x, present=torch.ones(2, 2, dtype=torch.bool)), model(**x))


def test_gradients_reach_both_backbones_unless_frozen() -> None:
    model = tiny().train()
    y = torch.tensor([1, 3])
    model.loss(model(**batch(), labels=y), y)["ce"].backward()
    assert model.video.net.conv_proj.weight.grad.abs().sum() > 0
    assert model.skeleton.blocks[0].gcn.conv.weight.grad.abs().sum() > 0
    assert model.skeleton.data_bn.weight.grad.abs().sum() > 0
    frozen = tiny(freeze_backbones=True).train()
    assert not frozen.video.training and not frozen.skeleton.training and frozen.encoder.training
    frozen.loss(frozen(**batch(), labels=y), y)["ce"].backward()
    assert all(p.grad is None for p in (*frozen.video.parameters(), *frozen.skeleton.parameters()))
    assert frozen.head[1].weight.grad.abs().sum() > 0


def test_load_branches_fills_the_backbones() -> None:
    mvit = build_model("mvit_v2_s", 5, **VIDEO)
    agcn = build_model("agcn", 5, **SKELETON)
    model = tiny()
    report = model.load_branches({"rgb": mvit.state_dict(), "skeleton": agcn.state_dict()})
    torch.testing.assert_close(model.video.net.conv_proj.weight, mvit.net.conv_proj.weight)
    torch.testing.assert_close(model.skeleton.blocks[4].gcn.conv.weight, agcn.blocks[4].gcn.conv.weight)
    assert set(report.skipped) == {
        "rgb:net.head.1.weight",
        "rgb:net.head.1.bias",
        "skeleton:fc.weight",
        "skeleton:fc.bias",
    }
    assert report.unused == []
    assert any(k.startswith("encoder.") for k in report.new) and not any(k.startswith("video.") for k in report.new)
    with pytest.raises(MgError, match=r"the rgb \(MViT\) branch does not fit"):
        tiny().load_branches({"rgb": {}, "skeleton": agcn.state_dict()})
    # a tensor of another shape is an error, not a silent skip
    wider = build_model("agcn", 5, **{**SKELETON, "base_channels": SKELETON.get("base_channels", 8) * 2})
    with pytest.raises(MgError, match=r"the skeleton \(AGCN\) branch: .* has shape"):
        tiny().load_branches({"rgb": mvit.state_dict(), "skeleton": wider.state_dict()})


# ------------------------------------------------------------------------------ training runs


def _run(args: list[str]) -> dict:
    return launch(load_config(None, args), quiet=True)


def _losses(run: Path) -> list[float]:
    return [r["train_loss"] for r in load_checkpoint(run / "last.pt")["history"]]


AGCN = [
    "model.name=agcn",
    "model.base_channels=8",
    "data.view.clip_len=16",
    "data.view.num_clips=2",
    "data.view.layout=upper22",
    "optim.lr=0.05",
    "optim.lr_batch=0",  # the CLI runs without a config file start from the recipe: keep these as they are
    "train.min_steps=0",
    "train.batch_size=4",
    "data.workers=0",
]
MVIT = [
    "model.name=mvit_v2_s",
    *(f"model.{k}={v}" for k, v in VIDEO.items()),
    "data.view.clip_len=4",
    "data.view.resize_short=64",
    "data.view.train_size=64",
    "data.view.test_size=64",
    "data.view.num_clips=1",
    "optim.name=adamw",
    "optim.lr=0.002",
    "train.batch_size=4",
    "data.workers=0",
]


@pytest.fixture(scope="module")
def branch_runs(train_artifacts: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    out = tmp_path_factory.mktemp("branches")
    _run([*AGCN, f"data.path={train_artifacts / 'poses.h5'}", f"out_dir={out}", "name=agcn_joint", "train.epochs=6"])
    _run([*MVIT, f"data.path={train_artifacts / 'frames.h5'}", f"out_dir={out}", "name=mvit", "train.epochs=6"])
    return out


def test_agcn_and_mvit_branches_train(branch_runs: Path, train_artifacts: Path) -> None:
    for name in ("agcn_joint", "mvit"):
        losses = _losses(branch_runs / name)
        assert losses[-1] < losses[0], (name, losses)
        scores = read_scores(branch_runs / name / "scores-test.csv")
        np.testing.assert_allclose(scores.probs.sum(1), 1.0, atol=1e-5)
    # the bone stream through the CLI shorthand, and model.pt re-evaluates to the run's scores
    res = runner.invoke(
        app,
        [
            "train-branch",
            "--model",
            "agcn-bone",
            *AGCN[1:],
            f"data.path={train_artifacts / 'poses.h5'}",
            "--out-dir",
            str(branch_runs),
            "--name",
            "agcn_bone",
            "train.epochs=4",
        ],
    )
    assert res.exit_code == 0, res.output
    losses = _losses(branch_runs / "agcn_bone")
    assert losses[-1] < losses[0], losses
    cfg = load_checkpoint(branch_runs / "agcn_bone" / "model.pt")["config"]
    assert cfg["model"]["name"] == "agcn" and cfg["data"]["view"]["stream"] == "bone"
    res = runner.invoke(
        app,
        [
            "evaluate",
            str(branch_runs / "agcn_bone" / "model.pt"),
            "--split",
            "test",
            "-o",
            str(branch_runs / "bone-test.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(
        read_scores(branch_runs / "bone-test.csv").probs,
        read_scores(branch_runs / "agcn_bone" / "scores-test.csv").probs,
        atol=2e-6,
    )


def test_token_fusion_trains_from_both_branches(branch_runs: Path, train_artifacts: Path, tmp_path: Path) -> None:
    args = [
        f"data.path={train_artifacts / 'frames.h5'}",
        f"data.poses={train_artifacts / 'poses.h5'}",
        *(f"model.video.{k}={v}" for k, v in VIDEO.items()),
        "model.skeleton.base_channels=8",
        "model.width=32",
        "model.depth=1",
        "model.heads=2",
        "data.view.rgb_len=4",
        "data.view.speed_ratio=4",
        "data.view.resize=64",
        "data.view.train_size=64",
        "data.view.test_size=64",
        "data.view.num_clips=1",
        "data.view.layout=upper22",
        "optim.name=adamw",
        "optim.lr=0.002",
        "train.batch_size=4",
        "data.workers=0",
        "train.epochs=5",
    ]

    def fuse(name: str, init: tuple[str, str] | None, *extra: str) -> Result:
        """``mg train-fused --model token-fusion`` with the tiny settings, ``--init-from`` two branch runs."""
        cmd = ["train-fused", "--model", "token-fusion", *args, *extra, "--out-dir", str(tmp_path), "--name", name]
        if init is not None:
            cmd += ["--init-from", *(str(branch_runs / run / "model.pt") for run in init)]
        return runner.invoke(app, cmd)

    res = fuse("tf", ("mvit", "agcn_joint"))
    assert res.exit_code == 0, res.output
    assert "tensors loaded" in res.output
    losses = _losses(tmp_path / "tf")
    assert losses[-1] < losses[0], losses
    scores = read_scores(tmp_path / "tf" / "scores-test.csv")
    assert len(scores.clip_ids) > 0 and not (tmp_path / "tf" / "scores-test-rgb.csv").exists()
    # wrong pairings are refused with one line
    res = fuse("tf2", ("agcn_joint", "mvit"))
    assert res.exit_code == 2 and "must come from an RGB branch run (reading frames), not agcn" in res.output
    res = fuse("tf3", None, "model.video.frames=8")
    assert res.exit_code == 2 and "takes 8 x 64 x 64 clips but data.view gives rgb_len 4" in res.output
    res = fuse("tf4", None, "model.skeleton.layout=coco17")
    assert res.exit_code == 2 and "model.skeleton.layout is 'coco17' but the data has 'upper22'" in res.output


def test_pretrained_weights_are_checked_before_a_run_folder_exists(train_artifacts: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "train-branch",
            "--model",
            "mvit-v2-s",
            "--pretrained",
            "kinetics400",
            *MVIT[1:],
            f"data.path={train_artifacts / 'frames.h5'}",
            "--out-dir",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2
    assert "pretrained 'kinetics400' needs the MViTv2-S settings" in res.output
    assert not (tmp_path / "run").exists()
