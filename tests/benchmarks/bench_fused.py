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
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.pose.extract import ExtractOptions, extract_pose
from mgcli.train.config import load_config
from mgcli.train.data import data_kind, open_split
from mgcli.train.distributed import Context
from mgcli.train.loop import build_for_data, make_optimizer, train_step

REPO = Path(__file__).resolve().parents[2]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def bench(name: str, overrides: list[str], steps: int) -> None:
    cfg = load_config(REPO / "pipelines/imigue_rgbpose.yaml", [*overrides, "data.workers=2", "train.amp=false"])
    ds = open_split(cfg, "train", train=True)
    model = build_for_data(cfg, len(ds.class_names), ds.num_channels, data_kind(cfg))
    optimizer = make_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    ctx = Context()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, list(range(cfg.train.batch_size * (steps + 1)))),
        batch_size=cfg.train.batch_size, num_workers=cfg.data.workers, shuffle=False,
    )  # fmt: skip
    model.train()
    waits, totals = [], []
    it = iter(loader)
    t_end = time.perf_counter()
    for _ in range(steps + 1):
        x, y = next(it)
        t_data = time.perf_counter()
        train_step(cfg, ctx, model, model, optimizer, scaler, x, y, cfg.optim.lr, False, False)
        t_step = time.perf_counter()
        waits.append(t_data - t_end)
        totals.append(t_step - t_end)
        t_end = t_step
    waits, totals = waits[1:], totals[1:]
    step = statistics.median(totals)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items())
    print(
        f"{name}: {params:.2f} M parameters, input {shapes}: {step:.2f} s/step (median of {steps}), "
        f"{cfg.train.batch_size / step:.2f} samples/s, waiting for data {100 * sum(waits) / sum(totals):.1f} % "
        f"of step time, peak RSS so far {peak_rss_gb():.2f} GB ({torch.get_num_threads()} compute threads)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate_sample(tmp / "s", SampleConfig(), workers=2)
        extract_pose(tmp / "s", tmp / "poses.h5",
                     ExtractOptions(layout="coco17", frames_out=tmp / "frames.h5", frame_size=128, workers=2))  # fmt: skip
        data = [f"data.path={tmp / 'frames.h5'}", f"data.poses={tmp / 'poses.h5'}", "train.batch_size=2"]
        # the full model first, so that the peak memory it reports is its own
        bench("RGBPoseConv3D + CMF + PRM (paper size, batch 2)", data, args.steps)
        bench("  without PRM", [*data, "model.prm=false"], args.steps)
        bench("  without CMF and PRM (plain RGBPoseConv3D)", [*data, "model.prm=false", "model.cmf=false"], args.steps)


if __name__ == "__main__":
    main()
