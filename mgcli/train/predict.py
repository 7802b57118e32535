"""Prediction: multi-view softmax scores for every clip of a split, the late fusion of two-modality
models, the scores CSVs and metrics a run writes, and ``mg evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.io.atomic import check_output
from mgcli.io.checkpoint import load_checkpoint
from mgcli.train import distributed as dist_
from mgcli.train.distributed import Context
from mgcli.train.progress import Reporter, RichReporter

FUSION_RATIOS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0))  # rgb:pose late-fusion ratios reported


@dataclass
class Predictions:
    clip_ids: list[str]
    labels: np.ndarray  # int64 [N], -1 unknown
    probs: np.ndarray  # float64 [N, K] (multi-modal models: the late fusion of ``parts``)
    parts: dict[str, np.ndarray] | None = None  # multi-modal models: each modality's probabilities

    @property
    def loss(self) -> float | None:
        known = self.labels >= 0
        if not known.any():
            return None
        p = self.probs[known, self.labels[known]]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())


def autocast(ctx: Context, enabled: bool) -> Any:
    return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=enabled and ctx.cuda)


def channels_last_3d(model: torch.nn.Module) -> torch.nn.Module:
    """The model's 5-D weights (3D convolutions) in the channels_last_3d memory format; models
    that mix in 2-D convolutions (graph networks) keep those as they are, which
    ``Module.to(memory_format=...)`` refuses to do."""
    for t in (*model.parameters(), *model.buffers()):
        if t.dim() == 5:
            t.data = t.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def to_device(
    batch: dict[str, torch.Tensor],
    ctx: Context,
    channels_last: bool,
    finish: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """A batch of named inputs on the run's device, completed there by ``finish`` (a dataset's
    :meth:`~mgcli.data.base.ClipDataset.device_batch`: heatmaps rendered with data.render_on: cuda),
    5-D ones then channels_last_3d when asked."""
    out = {k: x.to(ctx.device, non_blocking=True) for k, x in batch.items()}
    if finish is not None:
        out = finish(out)
    if channels_last:
        out = {k: x.contiguous(memory_format=torch.channels_last_3d) if x.dim() == 5 else x for k, x in out.items()}
    return out


def late_fusion(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of per-modality probabilities (rows still sum to 1)."""
    total = sum(weights[k] for k in parts)
    return sum(weights[k] * p for k, p in parts.items()) / total


def fusion_weights(late_fusion_cfg: tuple[float, float]) -> dict[str, float]:
    return dict(zip(("rgb", "pose"), late_fusion_cfg, strict=True))


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Any,
    ctx: Context,
    batch_size: int = 2,
    workers: int = 0,
    amp: bool = True,
    channels_last: bool = True,
    reporter: Reporter | None = None,
    split: str = "",
    fusion: dict[str, float] | None = None,
) -> Predictions:
    """Softmax probabilities averaged over each clip's test views, for every clip of ``dataset``.

    A multi-modal model (a dict of logits out) gets each modality's averaged probabilities in
    ``parts`` and their late fusion with ``fusion`` weights (default equal) in ``probs``. Each
    process takes clips ``rank, rank + world, ...`` (no padding), and the results are gathered in
    clip order on every process."""
    reporter = reporter or Reporter()
    was_training = model.training
    model.eval()
    mine = list(range(ctx.rank, len(dataset), ctx.world))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, mine),
        batch_size=1 if getattr(dataset, "variable_views", False) else batch_size,  # views differ per clip
        shuffle=False,
        num_workers=workers,
        pin_memory=ctx.cuda,
    )
    reporter.eval_start(split, len(mine))
    chunks: dict[str, list[np.ndarray]] = {}
    for x, _ in loader:
        b, v = next(iter(x.values())).shape[:2]
        with autocast(ctx, amp):
            out = model(**to_device({k: t.flatten(0, 1) for k, t in x.items()}, ctx, channels_last))
        if not isinstance(out, dict):  # one prediction (a single-input model, or a fusion into one head)
            out = {"": out}
        for key, logits in out.items():
            probs = logits.float().softmax(-1).view(b, v, -1).mean(1)
            chunks.setdefault(key, []).append(probs.cpu().double().numpy())
        reporter.eval_step(b)
    reporter.eval_end()
    model.train(was_training)
    mine_probs = {k: np.concatenate(c) for k, c in chunks.items()}
    gathered = dist_.all_gather_objects(ctx, (mine, mine_probs))
    order = np.argsort(np.concatenate([np.asarray(idx, np.int64) for idx, _ in gathered]))
    keys = next((list(p) for _, p in gathered if p), [""])
    parts = {k: np.concatenate([p[k] for _, p in gathered if p])[order] for k in keys}
    if any(len(p) != len(dataset) for p in parts.values()):
        raise RuntimeError(f"gathered {len(next(iter(parts.values())))} predictions for {len(dataset)} clips")
    labels = np.asarray(dataset.labels, np.int64)
    if "" in parts:
        return Predictions(list(dataset.clip_ids), labels, parts[""])
    weights = {k: 1.0 for k in parts} if fusion is None else fusion
    return Predictions(list(dataset.clip_ids), labels, late_fusion(parts, weights), parts)


def fusion_table(parts: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Top-1/top-5 of each modality alone and of the 1:1, 2:1 and 1:2 late fusions (labelled clips)."""
    from mgcli.report import topk_accuracy

    rows = dict(parts)
    if set(parts) == {"rgb", "pose"}:
        for a, b in FUSION_RATIOS:
            rows[f"{a:g}:{b:g}"] = late_fusion(parts, {"rgb": a, "pose": b})
    return {k: {"top1": topk_accuracy(p, labels, 1), "top5": topk_accuracy(p, labels, 5)} for k, p in rows.items()}


def write_scores_and_summary(preds: Predictions, out: Path, class_names: list[str]) -> dict[str, Any]:
    """``out`` (+ ``{stem}-{modality}.csv`` beside it for multi-modal models); the metrics summary,
    with the late-fusion table when labelled."""
    from mgcli.io.scores import write_scores
    from mgcli.report import summarize

    write_scores(out, preds.clip_ids, preds.labels, preds.probs)
    for key, probs in (preds.parts or {}).items():
        write_scores(out.with_name(f"{out.stem}-{key}{out.suffix}"), preds.clip_ids, preds.labels, probs)
    summary = summarize(preds.probs, preds.labels, class_names)
    if preds.parts and summary["n"]:
        summary["late_fusion"] = fusion_table(preds.parts, preds.labels)
    return summary


def write_predictions(preds: Predictions, run_dir: Path, split: str, class_names: list[str]) -> dict[str, Any]:
    """``scores-{split}.csv`` (+ ``scores-{split}-{modality}.csv`` for multi-modal models,
    ``confusion-{split}.png`` when labelled); the metrics summary (with the late-fusion table)."""
    from mgcli.report import plot_confusion

    summary = write_scores_and_summary(preds, run_dir / f"scores-{split}.csv", class_names)
    if summary["n"]:
        cm = np.asarray(summary["confusion"])
        plot_confusion(cm, class_names, run_dir / f"confusion-{split}.png", title=f"{run_dir.name}: {split}")
    return summary


def evaluate_checkpoint(
    checkpoint: str | Path,
    split: str = "test",
    data: str | Path | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    use_cuda: bool = True,
    quiet: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Re-run the multi-view evaluation of a saved model on one split; write its scores CSV."""
    from mgcli.data import data_kind, open_split
    from mgcli.train.build import build_for_data
    from mgcli.train.config import config_from_dict

    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"], checkpoint)
    class_names = list(state["class_names"])
    path = Path(data) if data is not None else Path(cfg.data.path)
    names = {"val": cfg.data.val_split, "test": cfg.data.test_split, "train": cfg.data.train_split}
    split_name = names.get(split, split)
    out = Path(out) if out is not None else checkpoint.parent / f"scores-{split}.csv"
    check_output(out, overwrite, inputs=(checkpoint, path))
    ds = open_split(cfg, split_name, train=False, path=path)  # one line for a missing split
    if list(ds.class_names) != class_names:
        raise MgError(f"the classes differ from the checkpoint's ({len(ds.class_names)} vs {len(class_names)})", path)
    ctx = Context(device=torch.device("cuda") if use_cuda and torch.cuda.is_available() else torch.device("cpu"))
    model = build_for_data(
        cfg, len(class_names), data_kind(cfg, path), ds.data_options, checkpoint, load_pretrained=False
    )
    try:
        model.load_inference_state(state["state_dict"])
    except MgError as e:
        raise MgError(e.message, checkpoint) from None
    model.to(ctx.device)
    channels_last = cfg.train.channels_last
    if channels_last:
        model = channels_last_3d(model)
    preds = predict(
        model,
        ds,
        ctx,
        batch_size or cfg.train.eval_batch_size,
        cfg.data.workers if workers is None else workers,
        cfg.train.amp,
        channels_last,
        RichReporter(quiet),
        split_name,
        fusion_weights(cfg.train.late_fusion),
    )
    return out, write_scores_and_summary(preds, out, class_names)
