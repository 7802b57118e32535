"""Starting a run: in this process, in N spawned CPU / CUDA processes, or as one rank of torchrun."""

from __future__ import annotations

import json
from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.train import distributed as dist_
from mgcli.train.config import RunConfig
from mgcli.train.plan import RunPlan, prepare
from mgcli.train.progress import Reporter, RichReporter


def launch(
    cfg: RunConfig,
    gpus: int = 0,
    procs: int = 1,
    cpu: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run training in this process, in ``gpus`` CUDA processes or ``procs`` CPU processes, or as one
    process of a ``torchrun`` job. Returns the run's metrics (read from ``metrics.json``)."""
    if dist_.under_torchrun():
        return train_process(cfg, resume, overwrite, use_cuda=not cpu, quiet=quiet)
    if gpus:
        if not torch.cuda.is_available():
            raise MgError(
                f"--gpus {gpus} needs CUDA, and this machine has no CUDA device (--procs N runs CPU processes)"
            )
        if gpus > torch.cuda.device_count():
            raise MgError(f"--gpus {gpus}: only {torch.cuda.device_count()} CUDA devices are visible")
    nprocs = gpus or procs
    if nprocs < 1:
        raise MgError("--procs must be at least 1")
    use_cuda = not cpu and (gpus > 0 or (procs == 1 and torch.cuda.is_available()))
    plan = prepare(cfg, resume, overwrite)  # fail here, with one line, rather than in N processes
    if nprocs == 1:
        return train_process(cfg, resume, overwrite, use_cuda, quiet, plan)
    import torch.multiprocessing as mp

    try:
        dist_.spawn(nprocs, _spawned_train, cfg, resume, overwrite, use_cuda, quiet, plan)
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1]
        raise MgError(f"a training process failed: {last}") from None
    except mp.ProcessExitedException as e:
        raise MgError(f"a training process died ({str(e).strip().splitlines()[0]}); the others were stopped") from None
    return json.loads((cfg.run_dir / "metrics.json").read_text())


def _spawned_train(cfg: RunConfig, resume: bool, overwrite: bool, use_cuda: bool, quiet: bool, plan: RunPlan) -> None:
    train_process(cfg, resume, overwrite, use_cuda, quiet, plan)


def train_process(
    cfg: RunConfig,
    resume: bool = False,
    overwrite: bool = False,
    use_cuda: bool = True,
    quiet: bool = True,
    plan: RunPlan | None = None,
) -> dict[str, Any]:
    """One process of a run (all of it without a process group): train, evaluate, write the run folder.
    ``plan``: what :func:`~mgcli.train.plan.prepare` found, when the launcher has checked already."""
    from mgcli.train.loop import train

    ctx = dist_.init(use_cuda)
    reporter: Reporter = RichReporter(quiet) if ctx.main else Reporter()
    try:
        metrics = train(cfg, ctx, resume, overwrite, reporter, plan)
    except BaseException:
        dist_.shutdown(ok=False)
        raise
    dist_.shutdown()
    return metrics
