"""Benchmark: accuracy of each branch on the bundled sample, and the CPU time it took.

Generates the default sample, extracts its OpenPose skeletons with a 128-px frames cache,
builds upper22 joint heatmaps, then trains ``pipelines/sample_pose_joint.yaml`` and
``pipelines/sample_rgb.yaml`` exactly as ``make demo`` does, and prints val/test top-1, wall and
CPU time (this process and its DataLoader workers) per run.

    .venv/bin/python tests/benchmarks/bench_train_sample.py [--only pose|rgb]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.heatmaps.build import BuildOptions, build_heatmaps
from mgcli.pose.extract import ExtractOptions, extract_pose
from mgcli.train.config import load_config
from mgcli.train.loop import launch

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("pose", "rgb"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate_sample(tmp / "s", SampleConfig(), workers=2)
        ceilings = json.loads((tmp / "s" / "sample.json").read_text()).get("expected_test_ceilings")
        extract_pose(tmp / "s", tmp / "poses.h5",
                     ExtractOptions(frames_out=tmp / "frames.h5", frame_size=128, workers=2))  # fmt: skip
        build_heatmaps(tmp / "poses.h5", tmp / "heatmaps-upper22.h5", BuildOptions(kind="joint", layout="upper22"))
        runs = {"pose": ("sample_pose_joint", "heatmaps-upper22.h5"), "rgb": ("sample_rgb", "frames.h5")}
        for key, (name, artifact) in runs.items():
            if args.only and key != args.only:
                continue
            cfg = load_config(
                PIPELINES / f"{name}.yaml",
                [f"data.path={tmp / artifact}", f"data.poses={tmp / 'poses.h5'}", f"out_dir={tmp / 'runs'}"],
            )
            m = launch(cfg, quiet=True)
            s = m["splits"]
            print(
                f"{name}: {m['params'] / 1e6:.3f} M parameters, {cfg.train.epochs} epochs: "
                f"val top-1 {s['val']['top1']:.3f}, test top-1 {s['test']['top1']:.3f} "
                f"(top-5 {s['test']['top5']:.3f}); {m['seconds'] / 60:.1f} min wall, "
                f"{m['cpu_seconds'] / 60:.1f} min CPU, data wait {100 * m['data_wait']:.1f} % of epoch time"
            )
        print("the sample's test top-1 ceilings by construction:", ceilings)


if __name__ == "__main__":
    main()
