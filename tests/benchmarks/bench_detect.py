"""Benchmark: ``mg detect`` throughput (frames of video per second) and ``mg predict`` wall time.

Detection: the sample's test videos are tiled into one 10-minute interview (15 000 frames at 25
fps), and three detectors, random init on the sample's classes plus background, are slid over it
on this machine's threads (window 64, stride 8, so every frame is seen by 8 windows):

- 2s-AGCN at the sample's size (``pipelines/sample_agcn_joint.yaml``: 16 base channels, 32
  frames, 4 test clips and their flips);
- 2s-AGCN at the paper's size (``pipelines/imigue_agcn_joint.yaml``: 64 base channels, 64 frames)
  with one test clip per window instead of the recipe's 10 (the time scales with the clips);
- PoseConv3D at the sample's size (``pipelines/sample_pose_joint.yaml``, heatmaps rendered per
  window).

Then ``mg predict`` (MediaPipe poses of every frame, detection, the three outputs with the H.264
overlay) on a one-minute video of the sample. Usage: ``python tests/benchmarks/bench_detect.py``
(about 5 minutes on 2 cores).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MG = [sys.executable, "-m", "mgcli"]


def mg(*args: str) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([*MG, "-q", *args], cwd=REPO, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"mg {args[0]} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def long_poses(src: Path, out: Path, frames: int) -> None:
    """One test video of ``frames`` frames, the sample's test skeletons tiled end to end."""
    from mgcli.io.poses import PosesFile, PosesWriter, VideoPoses

    with PosesFile(src) as pf:
        vids = sorted(set(pf.clips.loc[pf.clips["split"] == "test", "video_id"]))
        parts = [pf[v] for v in vids]
        layout, names, clips = pf.layout, pf.class_names, pf.clips
    kp = np.concatenate([p.keypoint for p in parts], 1)
    sc = np.concatenate([p.keypoint_score for p in parts], 1)
    reps = -(-frames // kp.shape[1])
    kp, sc = np.tile(kp, (1, reps, 1, 1))[:, :frames], np.tile(sc, (1, reps, 1))[:, :frames]
    import pandas as pd

    table = clips[(clips["video_id"] == vids[0]) & (clips["end"] < frames)].copy()
    table["video_id"] = "9999"
    table["clip_id"] = [f"9999_{i}" for i in range(len(table))]
    keep = clips[clips["split"].isin(["train", "val"])]  # so that a run can be trained on the file
    with PosesWriter(out, layout, "bench", names, overwrite=True) as w:
        w.add_video(VideoPoses("9999", kp, sc, parts[0].img_shape, 25.0, frames))
        with PosesFile(src) as pf:
            for v in sorted(set(keep["video_id"])):
                w.add_video(pf[v])
        w.set_clips(pd.concat([keep, table], ignore_index=True))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        mg("sample-data", str(d / "sample"))
        mg(
            "extract-pose",
            str(d / "sample"),
            "-o",
            str(d / "poses.h5"),
            "--background",
            "4",
            "--background-window",
            "24",
        )
        frames = 15_000
        long_poses(d / "poses.h5", d / "long.h5", frames)
        long_poses(d / "poses.h5", d / "short.h5", 1_500)  # the paper-size model: one minute
        mg("build-heatmaps", str(d / "long.h5"), "--layout", "upper22", "--kind", "joint", "-o", str(d / "hm.h5"))
        one = ["train.epochs=1", "train.min_steps=0", "data.workers=0", "train.val_every=100"]
        runs = {
            "2s-AGCN, sample size": ["-c", "pipelines/sample_agcn_joint.yaml", f"data.path={d / 'long.h5'}"],
            "2s-AGCN, paper size, 1 clip": [
                "-c",
                "pipelines/imigue_agcn_joint.yaml",
                f"data.path={d / 'short.h5'}",
                "train.batch_size=4",
                "data.view.num_clips=1",
            ],
            "PoseConv3D, sample size": ["-c", "pipelines/sample_pose_joint.yaml", f"data.path={d / 'hm.h5'}"],
        }
        minutes = frames / 25 / 60
        print(f"mg detect, window 64, stride 8; a {minutes:.0f}-minute interview (1 minute for the paper size):")
        for name, args in runs.items():
            run = name.replace(" ", "").replace(",", "_")
            mg("train-branch", *args, "--out-dir", str(d / "runs"), "--name", run, *one)
            model = d / "runs" / run / "model.pt"
            data, n = (d / "short.h5", 1_500) if "paper" in name else (d / "long.h5", frames)
            secs = mg("detect", str(model), "--data", str(data), "-o", str(d / f"{run}.csv"), "--window", "64",
                      "--stride", "8", "--heatmaps", str(d / "hm.h5"))  # fmt: skip
            rate = n / secs
            print(f"  {name:30s} {n:6d} frames {secs:6.1f} s {rate:6.0f} frames/s ({rate / 25:5.2f}x real time)")
        video = next((d / "sample").rglob("0013.mp4"))
        model = d / "runs" / "2s-AGCN_samplesize" / "model.pt"
        out = ["-o", str(d / "pred"), "--overlay", str(d / "pred" / "overlay.mp4")]
        secs = mg("predict", str(video), "--model", str(model), *out, "--window", "32", "--stride", "8")
        import cv2

        cap = cv2.VideoCapture(str(video))
        length = cap.get(cv2.CAP_PROP_FRAME_COUNT) / (cap.get(cv2.CAP_PROP_FPS) or 25.0)
        print(f"mg predict on a {length:.0f}-s video (MediaPipe, detection, overlay): {secs:.1f} s")


if __name__ == "__main__":
    main()
