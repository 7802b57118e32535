"""`mg train-fused`: the two-pathway model in the one training loop, on the small sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import MgError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.scores import check_probabilities, read_scores
from mgcli.train.config import load_config
from mgcli.train.launch import launch

TINY_FUSED = [
    "model.name=rgbpose_conv3d",
    "model.rgb.base_channels=4",
    "model.pose.base_channels=4",
    "model.rgb.stage_blocks=[1,1,1,1]",
    "model.pose.stage_blocks=[1,1,1]",
    "model.speed_ratio=2",
    "model.cmf=true",
    "model.cmf_hidden=8",
    "model.cmf_tokens=2",
    "model.prm=true",
    "model.prm_dim=8",
    "data.view.rgb_len=2",
    "data.view.speed_ratio=2",
    "data.view.num_clips=2",
    "data.view.resize=40",
    "data.view.train_size=32",
    "data.view.test_size=32",
    "optim.lr=0.02",
    "train.batch_size=4",
    "train.eval_batch_size=4",
    "data.workers=0",
]


def tiny_fused(artifacts: Path, out: Path, *extra: str) -> list[str]:
    return [
        *TINY_FUSED,
        f"data.path={artifacts / 'frames.h5'}",
        f"data.poses={artifacts / 'poses.h5'}",
        f"out_dir={out}",
        *extra,
    ]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fused_run(train_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fused")
    launch(load_config(None, tiny_fused(train_artifacts, out, "name=fused", "train.epochs=2")), quiet=True)
    return out / "fused"


def test_fused_run_writes_fused_and_per_modality_scores(fused_run: Path) -> None:
    metrics = json.loads((fused_run / "metrics.json").read_text())
    assert metrics["finished"] and metrics["model"] == "rgbpose_conv3d"
    row = metrics["history"][-1]
    assert {"loss_rgb", "loss_pose", "loss_prm_rgb", "loss_prm_pose"} <= set(row)
    parts = ("loss_rgb", "loss_pose", "loss_prm_rgb", "loss_prm_pose")
    assert row["train_loss"] == pytest.approx(sum(row[k] for k in parts), rel=1e-5)
    for split in ("val", "test"):
        fused = read_scores(fused_run / f"scores-{split}.csv")
        rgb = read_scores(fused_run / f"scores-{split}-rgb.csv")
        pose = read_scores(fused_run / f"scores-{split}-pose.csv")
        for s in (fused, rgb, pose):
            check_probabilities(s, split)
        assert fused.clip_ids == rgb.clip_ids == pose.clip_ids
        np.testing.assert_allclose(fused.probs, (rgb.probs + pose.probs) / 2, atol=1e-6)  # 1:1 late fusion
        table = metrics["splits"][split]["late_fusion"]
        assert list(table) == ["rgb", "pose", "1:1", "2:1", "1:2"]
        assert table["1:1"]["top1"] == metrics["splits"][split]["top1"]
        labels = np.asarray(rgb.labels)
        two_one = (2 * rgb.probs + pose.probs) / 3
        assert table["2:1"]["top1"] == pytest.approx(float((two_one.argmax(1) == labels).mean()))
    state = load_checkpoint(fused_run / "model.pt")
    assert "prm.rgb.prototypes" in state["state_dict"] and "prm.pose.prototypes" in state["state_dict"]
    assert any(k.startswith("backbone.cmf.") for k in state["state_dict"])


def test_evaluate_reproduces_fused_scores(fused_run: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["evaluate", str(fused_run / "model.pt"), "--split", "test", "-o", str(tmp_path / "s.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "late fusion" in res.output
    a, b = read_scores(fused_run / "scores-test.csv"), read_scores(tmp_path / "s.csv")
    np.testing.assert_allclose(a.probs, b.probs, atol=2e-6)
    np.testing.assert_allclose(
        read_scores(tmp_path / "s-rgb.csv").probs, read_scores(fused_run / "scores-test-rgb.csv").probs, atol=2e-6
    )


def _branch_runs(artifacts: Path, out: Path) -> tuple[Path, Path]:
    """Tiny RGB and pose branch runs with the pathways' architecture (1 epoch each)."""
    rgb = load_config(
        None,
        [
            "model.name=rgb_slowonly",
            "model.base_channels=4",
            "model.stage_blocks=[1,1,1,1]",
            f"data.path={artifacts / 'frames.h5'}",
            "data.view.clip_len=2",
            "data.view.num_clips=1",
            "data.view.resize_short=40",
            "data.view.train_size=32",
            "data.view.test_size=32",
            "data.workers=0",
            "train.batch_size=4",
            "train.epochs=1",
            f"out_dir={out}",
            "name=rgb",
        ],
    )
    pose = load_config(
        None,
        [
            "model.name=posec3d_slowonly",
            "model.base_channels=4",
            "model.stage_blocks=[1,1,1]",
            "model.temporal_strides=[1,1,1]",
            f"data.path={artifacts / 'heatmaps-joint.h5'}",
            "data.view.clip_len=4",
            "data.view.num_clips=1",
            "data.view.train_size=8",
            "data.view.test_size=8",
            "data.view.resize_short=8",
            "data.workers=0",
            "train.batch_size=4",
            "train.epochs=1",
            f"out_dir={out}",
            "name=pose",
        ],
    )
    launch(rgb, quiet=True)
    launch(pose, quiet=True)
    return out / "rgb" / "model.pt", out / "pose" / "model.pt"


def test_init_from_branches_via_the_cli(train_artifacts: Path, tmp_path: Path) -> None:
    rgb_pt, pose_pt = _branch_runs(train_artifacts, tmp_path / "branches")
    args = [
        "train-fused",
        *tiny_fused(
            train_artifacts, tmp_path, "name=merged", "train.epochs=1", "schedule.warmup_epochs=0", "optim.lr=0"
        ),
        "--init-from",
        str(rgb_pt),
        str(pose_pt),
        "--no-cmf",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "init_from:" in text and "tensors loaded" in text and "zero-padded" in text
    assert "new: backbone.pose_laterals" in text or "backbone.pose_laterals" in text
    saved = yaml.safe_load((tmp_path / "merged" / "config.yaml").read_text())
    assert saved["model"]["cmf"] is False and saved["model"]["prm"] is True
    assert saved["init_from"] == [str(rgb_pt), str(pose_pt)]
    # lr 0: the weights after one epoch are the merged ones (BN statistics aside)
    merged = load_checkpoint(tmp_path / "merged" / "last.pt")["state_dict"]
    assert not any(k.startswith("backbone.cmf.") for k in merged)
    rgb_state = load_checkpoint(rgb_pt)["state_dict"]
    pose_state = load_checkpoint(pose_pt)["state_dict"]
    torch.testing.assert_close(merged["backbone.rgb.stem.conv.weight"], rgb_state["backbone.stem.conv.weight"])
    torch.testing.assert_close(merged["head.pose.fc.weight"], pose_state["head.fc.weight"])
    w = merged["backbone.pose.stages.1.0.conv1.weight"]
    src = pose_state["backbone.stages.1.0.conv1.weight"]
    torch.testing.assert_close(w[:, : src.shape[1]], src)
    assert not w[:, src.shape[1] :].any()  # the lateral input channels start at zero


def test_init_from_is_checked_before_training(train_artifacts: Path, tmp_path: Path, fused_run: Path) -> None:
    with pytest.raises(MgError, match="init_from needs two checkpoints"):
        load_config(None, tiny_fused(train_artifacts, tmp_path, "init_from=[a.pt]"))
    bad = load_config(
        None,
        tiny_fused(
            train_artifacts, tmp_path, "name=bad", f"init_from=[{fused_run / 'model.pt'}, {fused_run / 'model.pt'}]"
        ),
    )
    with pytest.raises(MgError, match="the rgb checkpoint must come from an RGB branch run"):
        launch(bad, quiet=True)
    assert not (tmp_path / "bad" / "last.pt").exists()


def test_train_fused_refuses_single_modality_models(train_artifacts: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "train-fused",
            "model.name=posec3d_slowonly",
            f"data.path={train_artifacts / 'heatmaps-joint.h5'}",
            f"out_dir={tmp_path}",
        ],
    )
    assert res.exit_code == 2
    assert "is not trained by train-fused" in " ".join(res.output.split())
    cfg = load_config(None, tiny_fused(train_artifacts, tmp_path, f"data.path={train_artifacts / 'heatmaps-joint.h5'}"))
    with pytest.raises(MgError, match="data.path must be a frames.h5"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_fused(train_artifacts, tmp_path, "model.speed_ratio=4"))
    with pytest.raises(MgError, match="data.view.speed_ratio is 2 but model.speed_ratio is 4"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_fused(train_artifacts, tmp_path, "data.view.scaling=0.5"))
    with pytest.raises(MgError, match="data.view.scaling is 0.5 but the model's stems need heatmaps at 0.25"):
        launch(cfg, quiet=True)


def test_fused_resume_is_exact(train_artifacts: Path, tmp_path: Path) -> None:
    full = load_config(None, tiny_fused(train_artifacts, tmp_path, "name=full", "train.epochs=2"))
    launch(full, quiet=True)
    half = load_config(None, tiny_fused(train_artifacts, tmp_path, "name=half", "train.epochs=1"))
    launch(half, quiet=True)
    resumed = load_config(None, tiny_fused(train_artifacts, tmp_path, "name=half", "train.epochs=2"))
    launch(resumed, resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "half" / "last.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)  # prototypes included


def test_two_gloo_processes_train_the_fused_model(train_artifacts: Path, tmp_path: Path) -> None:
    # DDP with keyword inputs, the PRM's all-reduce inside the forward and drop-path on the laterals
    cfg = load_config(
        None,
        tiny_fused(
            train_artifacts,
            tmp_path,
            "name=ddp",
            "train.epochs=1",
            "model.rgb.drop_path=0.5",
            "model.pose.drop_path=0.5",
        ),
    )
    metrics = launch(cfg, procs=2, quiet=True)
    assert metrics["processes"] == 2
    for split in ("val", "test"):
        for suffix in ("", "-rgb", "-pose"):
            scores = read_scores(tmp_path / "ddp" / f"scores-{split}{suffix}.csv")  # refuses duplicated ids
            check_probabilities(scores, split)
            assert len(scores.clip_ids) == metrics["splits"][split]["n"]
