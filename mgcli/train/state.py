"""A run's state on disk and in the process: its files, resume and the config-change check, RNG
states, determinism, the epoch permutation, JSON outputs."""

from __future__ import annotations

import json
import math
import os
import resource
from pathlib import Path
from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.io.atomic import atomic_output
from mgcli.io.checkpoint import save_checkpoint
from mgcli.train.config import RunConfig
from mgcli.train.distributed import Context

RUN_FILES = (
    "last.pt",
    "model.pt",
    "config.yaml",
    "metrics.json",
    "scores-val.csv",
    "scores-test.csv",
    "scores-val-rgb.csv",
    "scores-val-pose.csv",
    "scores-test-rgb.csv",
    "scores-test-pose.csv",
    "curves.png",
    "confusion-val.png",
    "confusion-test.png",
)
# Keys that may differ when a run is resumed (they change how, not what, is computed) -- and epochs,
# to extend a finished run.
RESUMABLE_CHANGES = {"train.epochs", "data.workers", "train.eval_batch_size", "out_dir"}


def check_config_change(saved: dict[str, Any], now: dict[str, Any], where: Path, prefix: str = "") -> None:
    """Refuse to resume a run with a config that changes what is computed."""
    for key in sorted(set(saved) | set(now)):
        path = f"{prefix}{key}"
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            check_config_change(a, b, where, f"{path}.")
        elif a != b and path not in RESUMABLE_CHANGES:
            raise MgError(
                f"the config differs from the run's at {path} (run: {a!r}, now: {b!r}); resume with the "
                "same config, or --overwrite to start again",
                where,
            )


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def set_determinism(deterministic: bool, ctx: Context) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = ctx.cuda


def epoch_indices(n: int, seed: int, epoch: int, ctx: Context) -> list[int]:
    """This process's shard of the epoch's permutation (padded so every process gets as many)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    per = math.ceil(n / ctx.world)
    perm += perm[: per * ctx.world - n]
    return perm[ctx.rank :: ctx.world]


def rng_state(ctx: Context) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if ctx.cuda:
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def set_rng_state(ctx: Context, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if ctx.cuda and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


def save_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    cfg: RunConfig,
    class_names: list[str],
    epoch: int,
    rng: list[dict[str, Any]],
    history: list[dict[str, Any]],
    best: dict[str, Any],
) -> None:
    """``last.pt``: everything needed to continue the run exactly."""
    save_checkpoint(
        path,
        model.state_dict(),
        cfg.to_dict(),
        class_names,
        optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict(),
        epoch=epoch,
        rng=rng,
        history=history,
        best=best,
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_output(path, True) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, allow_nan=False))
