"""The optimiser and the learning-rate schedule of a run."""

from __future__ import annotations

import math

import torch

from mgcli.train.config import RunConfig


def lr_at(cfg: RunConfig, epoch: float) -> float:
    """The learning rate at fractional ``epoch`` (warm-up, then cosine or multistep), per iteration."""
    base, s = cfg.optim.lr, cfg.schedule
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
