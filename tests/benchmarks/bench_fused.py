"""Benchmark: training steps of the paper-size RGBPoseConv3D + CMF + PRM on this CPU, batch 2.

The model and view settings are those of ``pipelines/imigue_rgbpose.yaml`` (8 x 224^2 RGB, 32 x 56^2
heatmaps rendered in the same crop, CMF at both exchange points, PRM on both pathways), fed by the
real paired loader with 2 workers. Reported: step time (median, the first step left out), samples/s,
the fraction of the step spent waiting for data, and the training process's peak resident memory
(workers not included). Also the same for the ablations without CMF / PRM. Data: the default
synthetic sample (frames cached at 128 px, upscaled by the loader as any frame size would be).

    .venv/bin/python tests/benchmarks/bench_fused.py [--steps 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_train import bench, sample_artifacts  # the branches' timing loop and data (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "pipelines/imigue_rgbpose.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sample_artifacts(tmp)
        data = [f"data.path={tmp / 'frames.h5'}", f"data.poses={tmp / 'poses.h5'}", "train.batch_size=2"]
        # the full model first, so that the peak memory it reports is its own
        bench("RGBPoseConv3D + CMF + PRM (paper size, batch 2)", data, args.steps, CONFIG)
        bench("  without PRM", [*data, "model.prm=false"], args.steps, CONFIG)
        bench(
            "  without CMF and PRM (plain RGBPoseConv3D)",
            [*data, "model.prm=false", "model.cmf=false"],
            args.steps,
            CONFIG,
        )


if __name__ == "__main__":
    main()
