"""The optimiser and the learning-rate schedule of a run."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mgcli.train.config import RunConfig


@dataclass(frozen=True)
class Budget:
    """A run's length and peak lr once its data is known: ``epochs`` (stretched from
    ``train.epochs`` to reach ``train.min_steps``), ``steps`` per epoch and ``lr`` (``optim.lr``
    scaled to the global batch when ``optim.lr_batch`` is set)."""

    epochs: int
    steps: int
    lr: float
    stretch: float  # epochs / train.epochs: the schedule's time axis is stretched by this

    def describe(self, cfg: RunConfig) -> str:
        text = f"{self.epochs} epochs of {self.steps} steps"
        if self.epochs != cfg.train.epochs:
            text += f" (train.epochs {cfg.train.epochs} stretched to train.min_steps {cfg.train.min_steps})"
        text += f", peak lr {self.lr:.3g}"
        if cfg.optim.lr_batch:
            text += f" (optim.lr {cfg.optim.lr:g} for a batch of {cfg.optim.lr_batch})"
        return text

    def val_every(self, cfg: RunConfig) -> int:
        return max(1, round(cfg.train.val_every * self.stretch)) if cfg.train.val_every > 0 else 0


def budget(cfg: RunConfig, num_clips: int, world: int = 1) -> Budget:
    """The :class:`Budget` of a run on ``num_clips`` training clips over ``world`` processes."""
    per_process = math.ceil(num_clips / max(world, 1))
    steps = max(1, math.ceil(per_process / cfg.train.batch_size))
    epochs = max(cfg.train.epochs, math.ceil(cfg.train.min_steps / steps))
    lr = cfg.optim.lr
    if cfg.optim.lr_batch:
        lr *= cfg.train.batch_size * max(world, 1) / cfg.optim.lr_batch
    return Budget(epochs, steps, lr, epochs / cfg.train.epochs)


def lr_at(cfg: RunConfig, epoch: float, plan: Budget | None = None) -> float:
    """The learning rate at fractional ``epoch`` (warm-up, then cosine or multistep), per iteration;
    with a :class:`Budget`, on its stretched time axis and at its peak lr."""
    base, s = cfg.optim.lr, cfg.schedule
    if plan is not None:
        base, epoch = plan.lr, epoch / plan.stretch
    if s.warmup_epochs > 0 and epoch < s.warmup_epochs:
        return base * (s.warmup_ratio + (1.0 - s.warmup_ratio) * epoch / s.warmup_epochs)
    if s.kind == "multistep":
        return base * s.gamma ** sum(epoch >= m for m in s.milestones)
    span = max(cfg.train.epochs - s.warmup_epochs, 1e-9)
    t = min(max((epoch - s.warmup_epochs) / span, 0.0), 1.0)
    return s.min_lr + (base - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_optimizer(cfg: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over the trainable parameters, at ``optim.lr``
    (the schedule sets the lr of every step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optim.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    return torch.optim.SGD(
        params,
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
        nesterov=cfg.optim.nesterov and cfg.optim.momentum > 0,
    )
