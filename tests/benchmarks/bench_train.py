"""Benchmark: training steps of the paper-size branches on this CPU, fed by the real data loaders.

- pose branch: PoseConv3D SlowOnly (base 32, stages 4-6-3), batch 8, 32 x 56 x 56 joint heatmaps;
- RGB branch: SlowOnly ResNet-50, batch 2, 8 x 224 x 224 frames;

each with 2 DataLoader workers, as in a run. Reported per step (the first step, which pays for
starting the workers, is left out): step time, samples/s, and the fraction of the step spent
waiting for the next batch. Data: the default synthetic sample (frames cached at 128 px).

    .venv/bin/python tests/benchmarks/bench_train.py [--steps 4]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mgcli.data import data_kind, open_split
from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.heatmaps.build import BuildOptions, build_heatmaps
from mgcli.pose.extract import ExtractOptions, extract_pose
from mgcli.train.build import build_for_data
from mgcli.train.config import RunConfig, load_config
from mgcli.train.distributed import Context
from mgcli.train.loop import Run, train_step
from mgcli.train.optim import budget, make_optimizer
from mgcli.train.plan import RunPlan
from mgcli.train.progress import Reporter


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (the loader workers are other processes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def step_run(cfg: RunConfig, model: torch.nn.Module, plan: RunPlan, channels_last: bool = False) -> Run:
    """The state :func:`~mgcli.train.loop.train_step` needs, on the CPU, without AMP."""
    return Run(
        cfg,
        Context(),
        plan,
        model,
        model,
        make_optimizer(cfg, model),
        torch.amp.GradScaler("cuda", enabled=False),
        Reporter(),
        amp=False,
        channels_last=channels_last,
    )


def bench(name: str, overrides: list[str], steps: int, config: Path | None = None) -> None:
    """Time ``steps`` training steps of a run config (the first, which starts the workers, left out)."""
    cfg = load_config(config, [*overrides, "data.workers=2", "train.amp=false"])
    ds = open_split(cfg, "train", train=True)
    kind = data_kind(cfg)
    model = build_for_data(cfg, len(ds.class_names), kind, ds.data_options, load_pretrained=False)  # random init
    run = step_run(cfg, model, RunPlan(kind, ds.data_options, list(ds.class_names), frozenset({"train"}), 0))
    n = cfg.train.batch_size * (steps + 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, list(range(min(n, len(ds))))),
        batch_size=cfg.train.batch_size,
        num_workers=cfg.data.workers,
        shuffle=False,
    )
    model.train()
    waits, totals = [], []
    it = iter(loader)
    t_end = time.perf_counter()
    for _ in range(steps + 1):
        x, y = next(it)
        t_data = time.perf_counter()
        train_step(run, x, y, cfg.optim.lr)
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
        f"of step time, peak RSS so far {peak_rss_gb():.2f} GB (2 workers, {torch.get_num_threads()} compute "
        "threads)",
        flush=True,
    )


def bench_run(name: str, overrides: list[str], config: Path, out: Path, epochs: int = 2) -> None:
    """What a run does, not only its steps: ``epochs`` epochs of the real training loop (a new
    loader and its workers every epoch, validation after each, then the test split), timed from
    the run's own ``metrics.json``: seconds per step inside the epochs, per epoch, per validation
    pass, and the whole run's wall time."""
    from mgcli.train.launch import launch

    cfg = load_config(
        config,
        [*overrides, f"train.epochs={epochs}", "train.min_steps=0", "train.val_every=1", "data.workers=2"]
        + [f"out_dir={out}", "name=bench_run", "train.amp=false"],
    )
    t0 = time.perf_counter()
    metrics = launch(cfg, overwrite=True, quiet=True)
    wall = time.perf_counter() - t0
    hist = metrics["history"]
    steps = budget(cfg, len(open_split(cfg, cfg.data.train_split, train=True))).steps
    train_s = statistics.median(r["seconds"] for r in hist)
    val_s = statistics.median(r.get("val_seconds", 0.0) for r in hist)
    print(
        f"{name}, a {epochs}-epoch run: {steps} steps per epoch, {train_s / steps:.2f} s/step inside an epoch "
        f"({train_s:.1f} s per epoch with the loader start), validation {val_s:.1f} s per epoch, whole run "
        f"{wall:.0f} s (test split and start-up included)",
        flush=True,
    )


def sample_artifacts(tmp: Path) -> None:
    """The default sample in ``tmp/s``, its coco17 ``poses.h5`` and a 128-px ``frames.h5``."""
    generate_sample(tmp / "s", SampleConfig(), workers=2)
    extract_pose(
        tmp / "s",
        tmp / "poses.h5",
        ExtractOptions(layout="coco17", frames_out=tmp / "frames.h5", frame_size=128, workers=2),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sample_artifacts(tmp)
        build_heatmaps(tmp / "poses.h5", tmp / "heatmaps-joint.h5", BuildOptions(kind="joint"))
        pose = [
            "model.name=posec3d_slowonly",
            f"data.path={tmp / 'heatmaps-joint.h5'}",
            "data.view.clip_len=32",
            "train.batch_size=8",
            "optim.lr=0.01",
        ]
        bench("pose branch (paper size)", pose, args.steps)
        rgb = [
            "model.name=rgb_slowonly",
            f"data.path={tmp / 'frames.h5'}",
            "data.view.clip_len=8",
            "data.view.train_size=224",
            "train.batch_size=2",
            "optim.lr=0.01",
        ]
        bench("RGB branch (paper size)", rgb, args.steps)


if __name__ == "__main__":
    main()
