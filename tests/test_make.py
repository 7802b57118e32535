"""The Makefile's recipes: `make demo` in its fast form, end to end, and `make reproduce`'s stages."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
installed = pytest.mark.skipif(
    not (REPO / ".venv" / ".mgcli-installed").exists(), reason="needs the project's .venv (make install)"
)


def _make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env["COLUMNS"] = "160"  # rich tables unwrapped
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@installed
def test_make_demo_fast_runs_every_stage(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    res = _make("demo", "FAST=1", f"DEMO={demo}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    for stage in (
        "mg sample-data",
        "mg extract-pose",
        "mg build-heatmaps",
        "mg train-branch",
        "mg train-fused",
        "mg ensemble",
        "mg submit",
    ):
        assert stage in out, stage
    # the final table: every model and the ensemble, with val and test top-1
    table = out[out.rindex("mg ensemble") :]
    for name in ("sample_pose_joint", "sample_pose_limb", "sample_rgb", "sample_rgbpose"):
        assert re.search(rf"│ {name}\s+│\s+[01]\.\d{{3}}\s+│\s+[01]\.\d{{4}}\s+│\s+[01]\.\d{{4}}", table), name
    assert re.search(r"│ ensemble\s+│\s+1\.000\s+│\s+[01]\.\d{4}\s+│\s+[01]\.\d{4}", table)
    assert out.rstrip().endswith(f"{demo}/prediction.zip") or f"{demo}/prediction.zip" in out.splitlines()[-1]
    with zipfile.ZipFile(demo / "prediction.zip") as z:
        assert z.namelist() == ["prediction.csv"]
        rows = list(csv.reader(io.StringIO(z.read("prediction.csv").decode())))
    assert rows[0] == ["Id", "Target"] and len(rows) == 1 + 24  # 2 test videos x 12 gestures
    assert all(0 <= int(t) < 32 for _, t in rows[1:])
    for run in ("sample_pose_joint", "sample_pose_limb", "sample_rgb", "sample_rgbpose"):
        assert (demo / "runs" / run / "scores-test.csv").is_file()
    # a second make demo trains nothing: it re-fuses and re-submits from the runs it has
    again = _make("demo", "FAST=1", f"DEMO={demo}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "train-branch" not in again.stdout and "extract-pose" not in again.stdout
    assert "mg submit" in again.stdout


def _dry(*args: str) -> list[str]:
    res = _make("-n", *args, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = re.sub(r"[ \t]+", " ", res.stdout.replace("\\\n", " ")).splitlines()  # join continued lines
    return [line.strip() for line in lines if line.startswith("mg ")]


def test_make_reproduce_runs_every_stage_in_order_and_skips_what_is_built(tmp_path: Path) -> None:
    out = tmp_path / "repro"
    release = tmp_path / "release"
    cmds = _dry("reproduce", f"DATA={release}", f"OUT={out}", "GPUS=4", "MG=mg")
    joined = "\n".join(cmds)
    order = [
        f"mg extract-pose {release} -o {out}/poses.h5 --frames-out {out}/frames.h5 --frame-size 256",
        "train-branch -c pipelines/imigue_swin3d_b.yaml",
        "train-branch -c pipelines/imigue_miga2023_joint.yaml",
        "train-branch -c pipelines/imigue_miga2023_limb.yaml",
        "train-branch -c pipelines/imigue_rgb.yaml",
        "train-branch -c pipelines/imigue_pose_joint.yaml",
        "train-fused -c pipelines/imigue_rgbpose.yaml",
        f"mg ensemble {out}/runs/imigue_miga2023_joint {out}/runs/imigue_miga2023_limb --weights 0.4,0.6",
        f"mg ensemble {out}/runs/imigue_swin3d_b {out}/ensemble/miga2023 {out}/runs/imigue_rgbpose --search-weights",
        f"mg submit {out}/ensemble/final/scores-test.csv --format kaggle2025 --release {release}",
    ]
    positions = [joined.find(o) for o in order]
    assert all(p >= 0 for p in positions), [o for o, p in zip(order, positions, strict=False) if p < 0]
    assert positions[0] < min(positions[1:7]) and max(positions[1:6]) < positions[6] < positions[7] < positions[8]
    assert positions[8] < positions[9]
    assert joined.count("--gpus 4") == 6
    assert "--layout coco17 --kind joint" in joined and "--layout upper22 --kind limb" in joined
    assert f"--init-from {out}/runs/imigue_rgb/model.pt {out}/runs/imigue_pose_joint/model.pt" in joined

    # built stages are skipped; a run with last.pt but no scores resumes; REPRO_TRAIN_<run> reaches one run
    files = [
        "poses.h5",
        "frames.h5",
        "heatmaps-coco17-joint.h5",
        "heatmaps-upper22-joint.h5",
        "heatmaps-upper22-limb.h5",
    ] + [
        f"runs/{r}/scores-test.csv"
        for r in ("imigue_swin3d_b", "imigue_miga2023_joint", "imigue_miga2023_limb", "imigue_pose_joint")
    ]
    t = time.time() - 100
    for i, f in enumerate(files):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).touch()
        os.utime(out / f, (t + i, t + i))
    (out / "runs" / "imigue_rgb").mkdir()
    (out / "runs" / "imigue_rgb" / "last.pt").touch()
    cmds = _dry(
        "reproduce", f"DATA={release}", f"OUT={out}", "GPUS=0", "MG=mg", "REPRO_TRAIN_imigue_rgbpose=train.batch_size=4"
    )
    trained = [c for c in cmds if "train-" in c]
    assert len(trained) == 2, cmds
    assert "imigue_rgb.yaml" in trained[0] and "--resume" in trained[0] and "--gpus" not in trained[0]
    assert "imigue_rgbpose.yaml" in trained[1] and "--overwrite" in trained[1]
    assert trained[1].rstrip().endswith("train.batch_size=4") and "train.batch_size=4" not in trained[0]
    assert not any("extract-pose" in c or "build-heatmaps" in c for c in cmds)


@installed
def test_make_reproduce_needs_data(tmp_path: Path) -> None:
    res = _make("reproduce", f"OUT={tmp_path / 'r'}", "MG=mg", timeout=60)
    assert res.returncode != 0
    assert "make reproduce: give DATA=/path/to/the/release" in res.stdout + res.stderr


@installed
def test_make_reproduce_emotion_runs_the_chain_on_a_small_emotion_sample(tmp_path: Path) -> None:
    """faces -> SwinFace + MViTv2 embeddings (random init, CPU-sized) -> InterFusion and its two
    ablations -> the emotion submission, with every test video once."""
    release, out = tmp_path / "emo", tmp_path / "repro"
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "mg"), "--quiet", "sample-data", str(release), "--preset", "emotion",
         "--videos", "8", "--seconds", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    train = "train.epochs=1 train.min_steps=0 model.width=16 model.layers=1 model.heads=2 data.workers=0"
    res = _make(
        "reproduce-emotion", f"DATA={release}", f"OUT={out}", "GPUS=0", "WORKERS=1", "MVIT_WEIGHTS=",
        "MVIT_ARGS=--frames 4 --step 4 --size 32", f"REPRO_TRAIN={train} data.view.window=3",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for run in ("imigue_interfusion", "imigue_emotion_face", "imigue_emotion_context"):
        scores = list(csv.DictReader(io.StringIO((out / "runs" / run / "scores-test.csv").read_text())))
        assert len(scores) == 2, run  # one row per test video
    assert "--model emotion-face --name imigue_emotion_face" in res.stdout
    with zipfile.ZipFile(out / "emotion-prediction.zip") as z:
        rows = list(csv.reader(io.StringIO(z.read("prediction.csv").decode())))
    truth = list(csv.reader(io.StringIO((release / "test_label.csv").read_text())))
    assert rows[0] == ["video_id", "label"]
    assert sorted(r[0] for r in rows[1:]) == sorted(r[0] for r in truth if r[0] != "video_id")
    assert {r[1] for r in rows[1:]} <= {"0", "1"}


def test_make_reproduce_emotion_options_reach_their_stages(tmp_path: Path) -> None:
    out, release = tmp_path / "repro", tmp_path / "release"
    scores = [tmp_path / f"scores-{s}.csv" for s in ("train", "val", "test")]
    for s in scores:
        s.touch()
    cmds = _dry(
        "reproduce-emotion", f"DATA={release}", f"OUT={out}", "MG=mg", "GPUS=2", "EMO_PROTOCOL=imigue2021",
        "SWINFACE=/w/swinface.pt", f"GESTURE_SCORES={' '.join(map(str, scores))}",
    )  # fmt: skip
    joined = "\n".join(cmds)
    assert f"mg extract-faces {release} -o {out}/faces.h5 --protocol imigue2021" in joined
    assert "--model swinface --weights /w/swinface.pt" in joined
    assert "--model mvit-v2-s --weights kinetics400" in joined
    assert f"mg embed {' '.join(map(str, scores))} --model gestures --release {release} --protocol imigue2021" in joined
    fused = next(c for c in cmds if "train-fused" in c and "--name" not in c)
    assert f"'data.streams=[{out}/context-emb.h5,{out}/gesture-emb.h5]'" in fused
    assert "'model.streams=[face,context,gesture]'" in fused and "--gpus 2" in fused
    assert sum("train-fused" in c for c in cmds) == 3
    assert cmds[-1].startswith(f"mg submit --task emotion {out}/runs/imigue_interfusion/scores-test.csv")
    assert "--protocol imigue2021" in cmds[-1]
    res = _make("reproduce-emotion", f"OUT={tmp_path / 'r'}", "MG=mg", timeout=60)
    assert res.returncode != 0 and "make reproduce-emotion: give DATA=" in res.stdout + res.stderr


def test_make_demo_emotion_trains_the_fused_model_and_both_ablations(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    cmds = _dry("demo-emotion", f"DEMO={demo}", "MG=mg")
    emo = demo / "emotion"
    joined = "\n".join(cmds)
    assert f"mg embed {emo}/sample --model face-points -o {emo}/face-points.h5" in joined
    assert f"mg embed {emo}/sample --model body-motion -o {emo}/body-motion.h5" in joined
    assert "--preview 0001" in joined and "swinface" not in joined and "mvit" not in joined
    trains = [c for c in cmds if "train-fused" in c]
    assert [re.search(r"--model (\S+) --name (\S+)", c).groups() for c in trains] == [
        ("interfusion", "sample_interfusion"),
        ("emotion-face", "sample_emotion_face"),
        ("emotion-context", "sample_emotion_context"),
    ]
    assert all(f"data.path={emo}/face-points.h5 'data.streams=[{emo}/body-motion.h5]'" in c for c in trains)
    assert cmds[-1].startswith(f"mg submit --task emotion {emo}/runs/sample_interfusion/scores-test.csv")
    nets = _dry("demo-emotion", f"DEMO={demo}", "MG=mg", "EMBEDDERS=networks")
    joined = "\n".join(nets)
    assert f"mg embed {emo}/faces.h5 --model swinface -o {emo}/face-emb.h5" in joined and "--model mvit-v2-s" in joined
    assert "face-points" not in joined
    assert all(
        f"data.path={emo}/face-emb.h5 'data.streams=[{emo}/context-emb.h5]'" in c for c in nets if "train-fused" in c
    )


@installed
def test_make_demo_online_detects_scores_and_submits(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    res = _make("demo-online", "FAST=1", f"DEMO={demo}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    for stage in (
        "mg extract-pose",
        "--background 4",
        "mg train-branch",
        "mg detect",
        "mg evaluate-online",
        "mg submit",
    ):
        assert stage in out, stage
    assert re.search(r"│ strict\s+│\s+[01]\.\d{4}", out) and re.search(r"│ organisers\s+│\s+[01]\.\d{4}", out)
    onl = demo / "online"
    assert (onl / "online-timeline-0007.png").is_file()
    assert (onl / "frame-scores.h5").is_file()
    with zipfile.ZipFile(onl / "online-prediction.zip") as z:
        names = z.namelist()
    assert names and all(re.fullmatch(r"\d{4}_prediction\.csv", n) for n in names)


def test_make_reproduce_online_chain(tmp_path: Path) -> None:
    out, release = tmp_path / "repro", tmp_path / "release"
    cmds = _dry("reproduce-online", f"DATA={release}", f"OUT={out}", "GPUS=0", "MG=mg", "TEST_LABELS=t.csv")
    assert cmds[0].startswith(f"mg extract-pose {release} -o {out}/online/poses.h5") and "--background 8" in cmds[0]
    assert "-c pipelines/imigue_agcn_joint.yaml --name imigue_agcn_online" in cmds[1]
    assert cmds[2].startswith(f"mg detect {out}/runs/imigue_agcn_online/model.pt --data {out}/online/poses.h5")
    assert cmds[3].startswith(f"mg evaluate-online {out}/online/detections.csv --release {release} --test-labels t.csv")
    assert cmds[4].startswith(f"mg submit {out}/online/detections.csv --format online2023 --release {release}")
    res = _make("reproduce-online", f"OUT={tmp_path / 'r'}", "MG=mg", timeout=60)
    assert res.returncode != 0 and "make reproduce-online: give DATA=" in res.stdout + res.stderr
