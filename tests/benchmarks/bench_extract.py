"""Benchmark: extract-pose throughput (run by `make bench`).

- skeleton import of the default sample: clips per second, 1 and 2 workers
- video backends on a synthetic-sample video subset: frames per second through the model,
  1 and 2 workers (mediapipe, mediapipe-holistic; mmpose with a random-init RTMPose-t when
  MMPose is installed)
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from pathlib import Path

from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.pose.backends import BackendSpec
from mgcli.pose.extract import ExtractOptions, extract_pose


def run(label: str, root: Path, out: Path, opts: ExtractOptions, unit: str) -> None:
    t0 = time.perf_counter()
    report = extract_pose(root, out, opts, overwrite=True)
    dt = time.perf_counter() - t0
    assert not report.failed, report.failed
    n = sum(o.clips for o in report.outcomes) if unit == "clips" else sum(o.processed for o in report.outcomes)
    print(f"{label:<58s} {n:6d} {unit} {dt:7.2f} s  {n / dt:8.1f} {unit}/s")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate_sample(tmp / "sample", SampleConfig(), workers=2)
        for w in (1, 2):
            run(
                f"skeleton import, default sample, {w} worker(s)",
                tmp / "sample",
                tmp / "p.h5",
                ExtractOptions(layout="coco17", workers=w),
                "clips",
            )
        run(
            "skeleton import + frames.h5 cache (short side 128), 2 workers",
            tmp / "sample",
            tmp / "p.h5",
            ExtractOptions(layout="coco17", workers=2, frames_out=tmp / "f.h5", frame_size=128),
            "clips",
        )
        generate_sample(tmp / "small", SampleConfig(videos=4, gestures=6), workers=2)
        backends = [BackendSpec("mediapipe"), BackendSpec("mediapipe-holistic")]
        if importlib.util.find_spec("mmpose") is not None:
            from mgcli.pose.backends.mmpose import packaged_config

            cfg = packaged_config("body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py")
            backends.append(BackendSpec("mmpose", {"config": str(cfg), "device": "cpu", "batch_size": 16}))
        for spec in backends:
            for w in (1, 2):
                run(
                    f"{spec.name} on 4 sample videos (clip frames), {w} worker(s)",
                    tmp / "small",
                    tmp / "v.h5",
                    ExtractOptions(source="video", backend=spec, workers=w),
                    "frames",
                )
    print(f"(cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
