"""The one training loop: every model trains here, on one path.

A run writes ``runs/NAME/``:

- ``config.yaml``      the resolved config (file + overrides);
- ``last.pt``          everything needed to continue (weights, optimizer, scaler, epoch, RNG states,
                       history, best score), rewritten atomically after every epoch; ``--resume``
                       continues from it and gives the same weights as an uninterrupted run;
- ``model.pt``         the best weights by validation top-1 (the last ones without a validation
                       split), without training-only parts (``model.inference_state()``);
- ``scores-val.csv``, ``scores-test.csv``   softmax probabilities averaged over the test views
                       (two-modality models: the late fusion of the modalities, ``train.late_fusion``,
                       1:1 by default; ``scores-{split}-rgb.csv`` / ``-pose.csv`` hold each modality);
- ``metrics.json``     history per epoch, top-1/top-5/per-class accuracy, timings;
- ``curves.png``, ``confusion-{split}.png``.

A batch is a dict of named inputs; the model gets them as keywords with the labels and its
``loss`` gives the named terms to sum (the contract of :mod:`mgcli.models.base`). Each process
draws its own shard of every epoch's permutation; evaluation shards the clips without padding and
gathers them, so the scores hold every clip exactly once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.io.atomic import atomic_output
from mgcli.io.checkpoint import load_checkpoint, save_checkpoint
from mgcli.train import distributed as dist_
from mgcli.train import state as run_state
from mgcli.train.config import RunConfig, dump_config
from mgcli.train.distributed import Context
from mgcli.train.optim import Budget, budget, lr_at, make_optimizer
from mgcli.train.plan import RunPlan, prepare
from mgcli.train.predict import (
    Predictions,
    autocast,
    channels_last_3d,
    fusion_weights,
    predict,
    to_device,
    write_predictions,
)
from mgcli.train.progress import Reporter


@dataclass
class Run:
    """One process's view of a run: config, process context, what :func:`prepare` found, the model
    (``net``: the same, DDP-wrapped when distributed), its optimiser and the progress so far."""

    cfg: RunConfig
    ctx: Context
    plan: RunPlan
    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    reporter: Reporter
    amp: bool
    channels_last: bool
    budget: Budget | None = None  # set by train() once the training split is open
    # completes a training batch on the device (the training dataset's device_batch; set by train())
    finish_batch: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "val_top1": None})
    best_val: Predictions | None = None  # the best weights' validation predictions on the test views, when made here
    t_start: float = field(default_factory=time.perf_counter)
    cpu_start: float = field(default_factory=run_state.cpu_seconds)

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    def predict(self, dataset: Any, split: str) -> Predictions:
        return predict(
            self.model,
            dataset,
            self.ctx,
            self.cfg.train.eval_batch_size,
            self.cfg.data.workers,
            self.amp,
            self.channels_last,
            self.reporter,
            split,
            fusion_weights(self.cfg.train.late_fusion),
        )

    def save_model(self, **extra: Any) -> None:
        # the options the training data fixed (in_channels, a skeleton's layout): what a model
        # applied to other data (mg detect, mg predict) must be rebuilt for
        extra.setdefault("data_options", dict(self.plan.data_options))
        save_checkpoint(
            self.run_dir / "model.pt", self.model.inference_state(), self.cfg.to_dict(), self.plan.class_names, **extra
        )


def start(cfg: RunConfig, ctx: Context, resume: bool, overwrite: bool, reporter: Reporter, plan: RunPlan | None) -> Run:
    """The run folder prepared, the model built (initialised from branches, or resumed), on its device."""
    from mgcli.train.build import build_for_data
    from mgcli.train.init import init_from_branches

    plan = plan or prepare(cfg, resume, overwrite, check_outputs=ctx.main)
    if ctx.main:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for f in run_state.RUN_FILES:
                (cfg.run_dir / f).unlink(missing_ok=True)
        with atomic_output(cfg.run_dir / "config.yaml", True) as tmp:
            Path(tmp).write_text(dump_config(cfg))
    dist_.barrier(ctx)
    run_state.set_determinism(cfg.deterministic, ctx)
    torch.manual_seed(cfg.seed)
    model = build_for_data(
        cfg,
        len(plan.class_names),
        plan.kind,
        plan.data_options,
        Path(cfg.data.path),
        load_pretrained=not resume and not cfg.init_from,
        training_classes=plan.class_names,
    )
    for text in plan.load_reports:
        reporter.message(text)
    if cfg.init_from and not resume:
        reporter.message(init_from_branches(cfg, model, plan.class_names).describe())
    model = model.to(ctx.device)
    if cfg.train.channels_last:
        model = channels_last_3d(model)
    amp = cfg.train.amp and ctx.cuda
    optimizer = make_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    run = Run(cfg, ctx, plan, model, model, optimizer, scaler, reporter, amp, cfg.train.channels_last)
    torch.manual_seed(cfg.seed * 7919 + ctx.rank)  # dropout masks differ between processes
    if resume:
        saved = load_checkpoint(cfg.run_dir / "last.pt", map_location=ctx.device)
        model.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        run.start_epoch, run.history, run.best = int(saved["epoch"]), list(saved["history"]), dict(saved["best"])
        if len(saved["rng"]) == ctx.world:
            run_state.set_rng_state(ctx, saved["rng"][ctx.rank])
        reporter.message(f"resuming {cfg.run_dir} after epoch {run.start_epoch}")
    if ctx.distributed:
        run.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.cuda else None)
    return run


def train(
    cfg: RunConfig, ctx: Context, resume: bool, overwrite: bool, reporter: Reporter, plan: RunPlan | None = None
) -> dict[str, Any]:
    """Train, keep the best weights by validation top-1, evaluate them, write the run folder."""
    from mgcli.data import open_split
    from mgcli.report import topk_accuracy

    run = start(cfg, ctx, resume, overwrite, reporter, plan)
    train_ds = open_split(cfg, cfg.data.train_split, train=True)
    val_ds = None
    if cfg.data.val_split in run.plan.splits:
        val_ds = open_split(cfg, cfg.data.val_split, train=False, num_clips=cfg.train.val_clips)
    run.budget = budget(cfg, len(train_ds), ctx.world)
    run.finish_batch = train_ds.device_batch
    reporter.message(
        f"{cfg.name}: {cfg.model['name']} ({run.plan.params / 1e6:.2f} M parameters) on {len(train_ds)} "
        f"{cfg.data.train_split} clips, {ctx.world} process(es) on {ctx.device.type}, "
        f"batch {cfg.train.batch_size} per process; {run.budget.describe(cfg)}"
    )
    epochs, val_every = run.budget.epochs, run.budget.val_every(cfg)
    test_views = not cfg.train.val_clips  # the epochs validate on the test views: their scores are the final ones
    for epoch in range(run.start_epoch, epochs):
        row = train_epoch(run, train_ds, epoch)
        last = epoch + 1 == epochs
        if val_ds is not None and val_every > 0 and ((epoch + 1) % val_every == 0 or last):
            t_val = time.perf_counter()
            preds = run.predict(val_ds, "val")
            top1 = topk_accuracy(preds.probs, preds.labels, 1)
            row["val_top1"], row["val_loss"] = top1, preds.loss
            row["val_seconds"] = time.perf_counter() - t_val
            if run.best["val_top1"] is None or top1 > run.best["val_top1"]:
                run.best, run.best_val = {"epoch": epoch + 1, "val_top1": top1}, preds if test_views else None
                if ctx.main:
                    run.save_model(epoch=epoch + 1, val_top1=top1)
        run.history.append(row)
        reporter.epoch_end(row)
        rng = dist_.all_gather_objects(ctx, run_state.rng_state(ctx))
        if ctx.main:
            run_state.save_state(
                run.run_dir / "last.pt",
                run.model,
                run.optimizer,
                run.scaler,
                cfg,
                run.plan.class_names,
                epoch + 1,
                rng,
                run.history,
                run.best,
            )
            run_state.write_json(
                run.run_dir / "metrics.json",
                {"name": cfg.name, "finished": False, "history": run.history, "best": run.best},
            )
        dist_.barrier(ctx)
    return finish(run, val_ds if test_views else None)


def train_step(
    run: Run, x: dict[str, torch.Tensor], y: torch.Tensor, lr: float, parts: dict[str, float] | None = None
) -> float:
    """One optimiser step on a batch at learning rate ``lr``; the batch's loss. The model's loss
    terms are summed; their values are added to ``parts`` (times the batch size) when given."""
    cfg, model = run.cfg, run.model
    x, y = to_device(x, run.ctx, run.channels_last, run.finish_batch), y.to(run.ctx.device, non_blocking=True)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    with autocast(run.ctx, run.amp):
        terms = model.loss(run.net(**x, labels=y), y, cfg.train.label_smoothing)
        loss = sum(terms.values())
    if parts is not None:  # one device-to-host copy for all terms
        for k, t in zip(terms, torch.stack([t.detach().float() for t in terms.values()]).tolist(), strict=True):
            parts[k] = parts.get(k, 0.0) + t * len(y)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if cfg.train.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return float(loss.detach())


def train_epoch(run: Run, dataset: Any, epoch: int) -> dict[str, Any]:
    """One epoch over this process's shard; the epoch's row of the history."""
    cfg, ctx = run.cfg, run.ctx
    dataset.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        sampler=run_state.epoch_indices(len(dataset), cfg.seed, epoch, ctx),
        num_workers=cfg.data.workers,
        pin_memory=ctx.cuda,
        drop_last=False,
        collate_fn=dataset.collate,
    )
    iters = len(loader)
    run.net.train()
    plan = run.budget or budget(cfg, len(dataset), ctx.world)
    run.reporter.epoch_start(epoch, plan.epochs, iters)
    t0 = time.perf_counter()
    wait = loss_sum = 0.0
    seen = 0
    parts: dict[str, float] = {}
    lr = lr_at(cfg, epoch, plan)
    it = iter(loader)
    for step in range(iters):
        t_wait = time.perf_counter()
        x, y = next(it)
        wait += time.perf_counter() - t_wait
        lr = lr_at(cfg, epoch + step / iters, plan)
        value = train_step(run, x, y, lr, parts)
        if not math.isfinite(value):
            raise MgError(f"epoch {epoch + 1}, step {step + 1}: the loss is {value} (lower optim.lr?)")
        loss_sum += value * len(y)
        seen += len(y)
        run.reporter.step(value, lr)
    seconds = time.perf_counter() - t0
    row = {
        "epoch": epoch + 1,
        "train_loss": dist_.mean_across(ctx, loss_sum / max(seen, 1), seen),
        "lr": lr,
        "seconds": seconds,
        "data_wait": dist_.mean_across(ctx, wait / max(seconds, 1e-9)),
        "samples_per_s": dist_.mean_across(ctx, seen / max(seconds, 1e-9)) * ctx.world,
    }
    for key, total in parts.items():
        row[f"loss_{key}"] = dist_.mean_across(ctx, total / max(seen, 1), seen)
    return row


def finish(run: Run, val_ds: Any) -> dict[str, Any]:
    """Evaluate the best weights (or the last ones) on the validation and test splits; write the
    outputs and ``metrics.json``. ``val_ds``: the validation set with the test views, if open."""
    from mgcli.data import open_split
    from mgcli.report import plot_curves

    cfg, ctx, plan = run.cfg, run.ctx, run.plan
    if run.best["epoch"] is not None:
        run.model.load_inference_state(load_checkpoint(run.run_dir / "model.pt", map_location=ctx.device)["state_dict"])
    elif ctx.main:
        run.save_model(epoch=run.budget.epochs if run.budget else cfg.train.epochs)
    splits: dict[str, Any] = {}
    for key, split in (("val", cfg.data.val_split), ("test", cfg.data.test_split)):
        if split not in plan.splits:
            continue
        if key == "val" and run.best_val is not None and run.best["epoch"] is not None:
            preds = run.best_val
        else:
            preds = run.predict(
                val_ds if key == "val" and val_ds is not None else open_split(cfg, split, train=False), split
            )
        if ctx.main:
            splits[key] = write_predictions(preds, run.run_dir, key, plan.class_names)
    metrics: dict[str, Any] = {}
    if ctx.main:
        plot_curves(run.history, run.run_dir / "curves.png")
        waits = [r["data_wait"] for r in run.history]
        metrics = {
            "name": cfg.name,
            "finished": True,
            "model": cfg.model["name"],
            "params": plan.params,
            "processes": ctx.world,
            "device": ctx.device.type,
            "best": run.best,
            "splits": splits,
            "history": run.history,
            "seconds": time.perf_counter() - run.t_start,
            "cpu_seconds": run_state.cpu_seconds() - run.cpu_start,
            "data_wait": float(np.mean(waits)) if waits else None,
        }
        run_state.write_json(run.run_dir / "metrics.json", metrics)
    dist_.barrier(ctx)
    return metrics
