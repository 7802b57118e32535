"""Benchmark: the keypoint streams of ``mg embed`` (face-points, body-motion), run by `make bench`.

Times the descriptors alone (the xlsx already read) on the keypoints of one long interview, 30
minutes at 25 fps (45 000 frames x 137 points, the length of a long iMiGUE video), and reports
frames per second of video and the peak of the extra memory the computation allocates; then the
whole `mg embed` command on the emotion sample (40 videos of 6 s), where reading the xlsx files
dominates.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mgcli import embed_points as ep


def long_interview(frames: int = 45_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.zeros((frames, ep.POINTS, 3), np.float32)
    base = rng.uniform(200, 600, (ep.POINTS, 2))
    drift = np.cumsum(rng.normal(0, 0.3, (frames, 1, 2)), 0)
    kp[..., :2] = base + drift + rng.normal(0, 1.5, (frames, ep.POINTS, 2))
    kp[..., 2] = rng.uniform(0.3, 1.0, (frames, ep.POINTS))
    kp[rng.random((frames, ep.POINTS)) < 0.05] = 0.0  # points not found
    return kp


def main() -> None:
    kp = long_interview()
    opts = ep.PointsOptions()
    seconds = len(kp) / 25.0
    print(f"one interview: {len(kp)} frames ({seconds / 60:.0f} min at 25 fps), {kp.nbytes / 1e6:.0f} MB of keypoints")
    for name, fn in (("face-points", ep.face_steps), ("body-motion", ep.body_steps)):
        fn(kp[:2000], 25.0, opts)  # warm-up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            vectors, frames, valid = fn(kp, 25.0, opts)
            best = min(best, time.perf_counter() - t0)
        tracemalloc.start()
        fn(kp, 25.0, opts)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"  {name:<12s} {best:6.2f} s (best of 3)  {len(kp) / best / 1000:7.1f} k frames/s  "
            f"{len(frames)} steps, {valid.mean():.0%} valid  peak extra memory {peak / 1e6:5.0f} MB"
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sample"
        mg = [sys.executable, "-m", "mgcli", "--quiet"]
        subprocess.run([*mg, "sample-data", str(root), "--preset", "emotion"], check=True, capture_output=True)
        for kind in ("face-points", "body-motion"):
            t0 = time.perf_counter()
            subprocess.run([*mg, "embed", str(root), "--model", kind, "-o", f"{tmp}/{kind}.h5"], check=True)
            print(f"mg embed --model {kind:<12s} emotion sample (40 videos): {time.perf_counter() - t0:6.1f} s")


if __name__ == "__main__":
    main()
