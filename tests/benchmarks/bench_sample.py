"""Benchmark: sample generation and release reading (run by `make bench`).

Prints wall-clock figures for the default `mg sample-data` and its parts on one video: rendering
(ms per frame), mp4 encoding, OpenPose xlsx writing and reading, light_hand CSV reading, and the
clip table of the whole sample.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mgcli.dataset import synth
from mgcli.dataset.formats import read_light_hand_csv, read_openpose_xlsx, write_light_hand_csv, write_openpose_xlsx
from mgcli.dataset.release import Release
from mgcli.dataset.sample import SampleConfig, generate_sample


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    print(f"{label:<44s} {dt:8.3f} s")
    return out, dt


def main() -> None:
    cfg = SampleConfig()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        summary, _ = timed(
            f"mg sample-data (default: {cfg.videos} videos, 2 workers)", generate_sample, tmp / "s", cfg, workers=2
        )
        print(
            f"{'':<44s} {sum(r.frames for r in summary.videos):,} frames, {sum(summary.clips_per_split.values())} clips"
        )
        rel = Release(tmp / "s")
        timed("clip table of the sample (probes 16 mp4s)", rel.clips)

        rng = np.random.default_rng(0)
        subject = synth.random_subject(rng, cfg.height, cfg.width)
        segments, n = synth.plan_segments(rng, cfg.gestures, cfg.fps)
        frames, dt = timed(
            f"render one video ({n} frames)",
            lambda: list(synth.render(subject, segments, n, cfg.fps, cfg.height, cfg.width, rng)),
        )
        print(f"{'':<44s} {1000 * dt / n:8.3f} ms/frame")
        kps = np.stack([k for _, k in frames])

        def encode() -> None:
            w = cv2.VideoWriter(str(tmp / "v.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height))
            for f, _ in frames:
                w.write(f)
            w.release()

        timed("encode mp4v", encode)
        noisy, _ = timed("openpose noise", synth.openpose_noise, kps, rng)
        timed("write openpose.xlsx", write_openpose_xlsx, tmp / "x.xlsx", noisy)
        timed("read openpose.xlsx", read_openpose_xlsx, tmp / "x.xlsx")
        timed("write light_hand.csv", write_light_hand_csv, tmp / "l.csv", noisy)
        timed("read light_hand.csv", read_light_hand_csv, tmp / "l.csv")


if __name__ == "__main__":
    main()
