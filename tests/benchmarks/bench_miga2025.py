"""Benchmark: training steps of the MiGA 2025 classifier's models on this CPU, fed by the real loaders.

At the paper's size (``pipelines/imigue_*.yaml``, random init): 2s-AGCN joint and bone streams
(batch 16, 64 upper22 frames), MViTv2-S (batch 2, 16 x 224^2) and token fusion of the two
(batch 2); and at the sample's size (``pipelines/sample_*.yaml``, the configs the README's sample
figures come from). Reported per model: parameters, step time (median, the first step left out),
samples/s, the fraction of the step spent waiting for data, the process's peak resident memory.
And what a run does besides its steps (``bench_run``): two epochs of the real loop for the
paper-size 2s-AGCN, with seconds per step inside an epoch, per validation pass and per run.
Data: the default synthetic sample (frames cached at 128 px, upscaled by the loaders).

    .venv/bin/python tests/benchmarks/bench_miga2025.py [--steps 3] [--only sample|paper]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_train import bench, bench_run, sample_artifacts  # timing loops and data (this folder is on sys.path)

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--only", choices=("sample", "paper"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sample_artifacts(tmp)
        poses = [f"data.path={tmp / 'poses.h5'}"]
        frames = [f"data.path={tmp / 'frames.h5'}", f"data.poses={tmp / 'poses.h5'}"]
        runs = {
            "sample": [
                ("2s-AGCN joint (sample size)", poses, "sample_agcn_joint"),
                ("2s-AGCN bone (sample size)", poses, "sample_agcn_bone"),
                ("MViTv2 (sample size)", frames, "sample_mvit_v2_s"),
                ("token fusion (sample size)", frames, "sample_token_fusion"),
            ],
            "paper": [
                ("2s-AGCN joint (paper size, batch 16)", poses, "imigue_agcn_joint"),
                ("2s-AGCN bone (paper size, batch 16)", poses, "imigue_agcn_bone"),
                ("MViTv2-S (paper size, batch 2)", [*frames, "train.batch_size=2"], "imigue_mvit_v2_s"),
                ("token fusion (paper size, batch 2)", [*frames, "train.batch_size=2"], "imigue_token_fusion"),
            ],
        }
        for size, items in runs.items():
            if args.only not in (None, size):
                continue
            for name, data, config in items:
                bench(name, data, args.steps, PIPELINES / f"{config}.yaml")
            if size == "paper":  # a run's epoch is more than its steps: loader start, validation
                bench_run("2s-AGCN joint (paper size, batch 16)", poses, PIPELINES / "imigue_agcn_joint.yaml", tmp)


if __name__ == "__main__":
    main()
