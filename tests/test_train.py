"""The training loop end to end on the small sample, with tiny models of the paper's code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import MgError, OutputExistsError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.scores import check_probabilities, read_scores
from mgcli.train.config import load_config
from mgcli.train.launch import launch

REPO = Path(__file__).resolve().parents[1]
TINY_POSE = [
    "model.name=posec3d_slowonly",
    "model.base_channels=4",
    "model.stage_blocks=[1,1,1]",
    "data.view.clip_len=8",
    "data.view.num_clips=2",
    "optim.lr=0.05",
    "optim.lr_batch=0",  # the CLI runs without a config file start from the recipe: keep these as they are
    "optim.weight_decay=0",
    "schedule.kind=cosine",
    "train.min_steps=0",
    "train.batch_size=4",
    "train.grad_clip=40",
]


def tiny_pose(artifacts: Path, out: Path, *extra: str) -> list[str]:
    return [*TINY_POSE, f"data.path={artifacts / 'heatmaps-joint.h5'}", f"out_dir={out}", *extra]


def tiny_rgb(artifacts: Path, out: Path, *extra: str) -> list[str]:
    return [
        "model.name=rgb_slowonly",
        "model.base_channels=4",
        "model.stage_blocks=[1,1,1,1]",
        f"data.path={artifacts / 'frames.h5'}",
        "data.view.clip_len=4",
        "data.view.num_clips=2",
        "data.view.resize_short=64",
        "data.view.train_size=48",
        "data.view.test_size=48",
        "optim.lr=0.05",
        "train.batch_size=4",
        f"out_dir={out}",
        *extra,
    ]


@pytest.fixture(scope="module")
def pose_run(train_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, tiny_pose(train_artifacts, out, "name=pose", "train.epochs=8", "data.workers=2"))
    launch(cfg, quiet=True)
    return out / "pose"


def _clip_ids(heatmaps: Path, split: str) -> set[str]:
    from mgcli.io.heatmaps import HeatmapsFile

    with HeatmapsFile(heatmaps) as hm:
        return set(hm.clips.loc[hm.clips["split"] == split, "clip_id"])


def test_a_short_run_lowers_the_loss_and_writes_the_run_folder(pose_run: Path, train_artifacts: Path) -> None:
    for f in ("model.pt", "last.pt", "config.yaml", "metrics.json", "scores-val.csv", "scores-test.csv", "curves.png"):
        assert (pose_run / f).is_file(), f
    metrics = json.loads((pose_run / "metrics.json").read_text())
    losses = [r["train_loss"] for r in metrics["history"]]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    assert metrics["finished"] and metrics["params"] > 0
    assert all(0 <= r["data_wait"] <= 1 for r in metrics["history"])
    for split in ("val", "test"):
        scores = read_scores(pose_run / f"scores-{split}.csv")
        check_probabilities(scores, pose_run / f"scores-{split}.csv")
        assert set(scores.clip_ids) == _clip_ids(train_artifacts / "heatmaps-joint.h5", split)
        assert scores.num_classes == 32
        assert metrics["splits"][split]["n"] == len(scores.clip_ids)  # the sample's test labels are known
    # the checkpoint holds what DESIGN.md promises, and loads with weights_only
    ck = load_checkpoint(pose_run / "model.pt")
    assert ck["config"]["model"]["base_channels"] == 4 and len(ck["class_names"]) == 32
    best = metrics["best"]
    assert ck["epoch"] == best["epoch"] and ck["val_top1"] == best["val_top1"]
    assert (pose_run / "confusion-val.png").stat().st_size > 1000


def test_evaluate_reproduces_the_run_scores(pose_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.csv"
    res = CliRunner().invoke(app, ["evaluate", str(pose_run / "model.pt"), "--split", "test", "-o", str(out)])
    assert res.exit_code == 0, res.output
    a, b = read_scores(pose_run / "scores-test.csv"), read_scores(out)
    assert a.clip_ids == b.clip_ids
    np.testing.assert_allclose(a.probs, b.probs, atol=2e-6)
    res = CliRunner().invoke(app, ["evaluate", str(pose_run / "model.pt"), "-o", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_existing_runs_are_not_replaced_and_resume_needs_a_run(pose_run: Path, train_artifacts: Path) -> None:
    cfg = load_config(None, tiny_pose(train_artifacts, pose_run.parent, "name=pose", "train.epochs=8"))
    with pytest.raises(OutputExistsError, match="--resume"):
        launch(cfg, quiet=True)
    cfg2 = load_config(None, tiny_pose(train_artifacts, pose_run.parent, "name=nothing-here"))
    with pytest.raises(MgError, match="nothing to resume"):
        launch(cfg2, resume=True, quiet=True)
    changed = load_config(None, tiny_pose(train_artifacts, pose_run.parent, "name=pose", "optim.lr=0.5"))
    with pytest.raises(MgError, match=r"differs from the run's at optim.lr"):
        launch(changed, resume=True, quiet=True)


def test_killed_after_epoch_one_and_resumed_equals_uninterrupted(train_artifacts: Path, tmp_path: Path) -> None:
    args = tiny_pose(train_artifacts, tmp_path, "train.epochs=4", "data.workers=0", "train.val_every=2")
    # recipe=True: what train-branch does without a config file (the killed run below is one)
    launch(load_config(None, [*args, "name=straight"], recipe=True), quiet=True)

    # the same run in a separate process, killed with SIGKILL as soon as epoch 1 is checkpointed
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgcli", "-q", "train-branch", *args, "name=killed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 600  # a loaded CI machine (two test workers) can take minutes to start it
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), proc.stderr.read().decode()
    stopped_at = load_checkpoint(last)["epoch"]
    assert stopped_at < 4, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "scores-test.csv").exists()

    launch(load_config(None, [*args, "name=killed"], recipe=True), resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 4
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    ha, hb = a["history"], b["history"]
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    np.testing.assert_array_equal(
        read_scores(tmp_path / "straight" / "scores-test.csv").probs,
        read_scores(tmp_path / "killed" / "scores-test.csv").probs,
    )


def test_two_gloo_processes_train_and_score_every_clip_once(
    pose_run: Path, train_artifacts: Path, tmp_path: Path
) -> None:
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "name=ddp", "train.epochs=2", "data.workers=1"))
    metrics = launch(cfg, procs=2, quiet=True)
    assert metrics["processes"] == 2
    for split in ("val", "test"):
        one = read_scores(pose_run / f"scores-{split}.csv")
        two = read_scores(tmp_path / "ddp" / f"scores-{split}.csv")  # read_scores refuses duplicated ids
        assert sorted(two.clip_ids) == sorted(one.clip_ids)
        check_probabilities(two, split)
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(state["rng"]) == 2  # one RNG state per process, for an exact resume


def test_rgb_branch_trains_on_frames(train_artifacts: Path, tmp_path: Path) -> None:
    cfg = load_config(None, tiny_rgb(train_artifacts, tmp_path, "name=rgb", "train.epochs=2", "data.workers=0"))
    metrics = launch(cfg, quiet=True)
    assert metrics["model"] == "rgb_slowonly"
    scores = read_scores(tmp_path / "rgb" / "scores-test.csv")
    check_probabilities(scores, "rgb")
    assert len(scores.clip_ids) == metrics["splits"]["test"]["n"] > 0


def test_model_and_data_must_agree(train_artifacts: Path, tmp_path: Path) -> None:
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "model.name=rgb_slowonly"))
    with pytest.raises(MgError, match="model rgb_slowonly reads frames, but data.path is a heatmaps artifact"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "model.in_channels=3"))
    with pytest.raises(MgError, match="model.in_channels is 3 but the data has 17; leave it unset"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "model.widht=3"))
    with pytest.raises(MgError, match="unknown option 'widht'"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "data.view.clip_length=3"))
    with pytest.raises(MgError, match="unknown key data.view.clip_length"):
        launch(cfg, quiet=True)
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, f"data.path={tmp_path / 'none.h5'}"))
    with pytest.raises(MgError, match="none.h5: data.path: file not found"):
        launch(cfg, quiet=True)


def test_cli_bad_override_is_one_line_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["train-branch", "-c", str(REPO / "pipelines/imigue_pose_joint.yaml"), "train.epoch=3"]
    )
    text = " ".join(res.output.split())  # rich wraps long lines at the terminal width
    assert res.exit_code == 2
    assert "unknown key train.epoch (known: epochs," in text and "Traceback" not in text


def test_gpus_without_cuda_is_refused(train_artifacts: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path))
    with pytest.raises(MgError, match="needs CUDA"):
        launch(cfg, gpus=2, quiet=True)


def test_mg_models_lists_the_models() -> None:
    res = CliRunner().invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    assert "posec3d_slowonly" in res.output and "rgb_slowonly" in res.output


def test_validation_on_fewer_clips_keeps_test_views_for_the_scores(train_artifacts: Path, tmp_path: Path) -> None:
    """train.val_clips: the epochs validate on 1 clip per clip (pyskl's protocol), the best weights'
    val and test scores still use the test views (data.view.num_clips)."""
    from mgcli.data import open_split
    from mgcli.train.predict import evaluate_checkpoint

    args = tiny_pose(train_artifacts, tmp_path, "name=v1", "train.epochs=2", "data.workers=0", "train.val_clips=1")
    metrics = launch(load_config(None, args), quiet=True)
    assert all("val_seconds" in r for r in metrics["history"])
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "name=check"))
    assert open_split(cfg, "val", train=False, num_clips=1).num_views == 2  # one clip and its flip
    assert open_split(cfg, "val", train=False).num_views == 4
    out, _ = evaluate_checkpoint(tmp_path / "v1" / "model.pt", "val", out=tmp_path / "ev.csv")
    np.testing.assert_allclose(read_scores(tmp_path / "v1" / "scores-val.csv").probs, read_scores(out).probs, atol=1e-6)
