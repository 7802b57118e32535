"""Processes, devices and collectives for the training loop.

``mg train-branch --gpus N`` starts N processes itself (one per GPU, NCCL); ``--procs N`` starts N
CPU processes (gloo), which is how the multi-process path is tested here. Under ``torchrun`` the
same code reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` from the environment and
runs unchanged on several nodes. Batch sizes in the configs are per process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(use_cuda: bool) -> Context:
    """Join the process group described by the environment (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda and torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    if device.type == "cpu" and world > 1:
        # share the cores between the processes on this machine
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Context(rank=rank, world=world, local_rank=local_rank, device=device)


def shutdown(ok: bool = True) -> None:
    """Leave the process group. After a failure there is no barrier (the other processes may be
    waiting in a collective that will never complete): this process just leaves, and its launcher
    stops the others."""
    if dist.is_initialized() and ok:
        dist.barrier()
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def all_gather_objects(ctx: Context, obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (a one-element list without a process group)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def mean_across(ctx: Context, value: float, weight: float = 1.0) -> float:
    """The weighted mean of a scalar over processes."""
    if not ctx.distributed:
        return value
    t = torch.tensor([value * weight, weight], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t[0] / t[1]) if t[1] > 0 else float("nan")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned(local_rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    fn(*args)


def spawn(nprocs: int, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` in ``nprocs`` fresh processes on this machine, joined in one process group.

    A failing process stops the others; its exception is raised here."""
    import signal

    import torch.multiprocessing as mp

    ctx = mp.start_processes(
        _spawned, args=(nprocs, free_port(), fn, args), nprocs=nprocs, start_method="spawn", join=False
    )

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # `kill mg` takes the processes down with it
    try:
        while not ctx.join(timeout=1.0):  # raises as soon as one process fails (and stops the rest)
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
        for p in ctx.processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
