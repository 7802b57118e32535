"""Evaluation metrics and plots shared by training, ``mg evaluate`` and ``mg ensemble``.

Rows whose label is negative (unknown test labels) are ignored by every metric. Ranks break ties
by class index, as ``argmax`` does, so top-1 always agrees with the confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgcli.errors import MgError


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs), np.asarray(labels).astype(np.int64).reshape(-1)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"scores {probs.shape} do not match labels {labels.shape}")
    if (labels >= probs.shape[1]).any():
        raise MgError(f"label {labels.max()} is outside the {probs.shape[1]} classes of the scores")
    return probs, labels


def true_class_rank(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each row's true class (ties: lower class index first); labels must be >= 0."""
    true = np.take_along_axis(probs, labels[:, None], axis=1)
    idx = np.arange(probs.shape[1])[None, :]
    return ((probs > true) | ((probs == true) & (idx < labels[:, None]))).sum(1)


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of labelled rows whose true class is among the ``k`` highest scores (NaN if none)."""
    probs, labels = _check(probs, labels)
    keep = labels >= 0
    if not keep.any():
        return math.nan
    return float((true_class_rank(probs[keep], labels[keep]) < k).mean())


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` int64 counts, rows = true class, columns = predicted (unlabelled rows ignored)."""
    labels, preds = np.asarray(labels, np.int64).reshape(-1), np.asarray(preds, np.int64).reshape(-1)
    if labels.shape != preds.shape:
        raise ValueError(f"{labels.size} labels for {preds.size} predictions")
    keep = labels >= 0
    labels, preds = labels[keep], preds[keep]
    if (labels >= num_classes).any() or (preds < 0).any() or (preds >= num_classes).any():
        raise MgError(f"labels or predictions outside the {num_classes} classes")
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal / row sum); NaN for classes without samples."""
    cm = np.asarray(cm)
    total = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.diag(cm) / np.maximum(total, 1), np.nan)


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summarize(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Top-1/top-5, mean class accuracy, per-class accuracy and the confusion matrix (JSON-ready:
    undefined values are ``None``)."""
    probs, labels = _check(probs, labels)
    num_classes = probs.shape[1]
    if len(class_names) != num_classes:
        raise MgError(f"{len(class_names)} class names for scores of {num_classes} classes")
    keep = labels >= 0
    cm = confusion_matrix(labels[keep], probs[keep].argmax(1), num_classes)
    acc = per_class_accuracy(cm)
    mean_class = float(np.nanmean(acc)) if np.isfinite(acc).any() else math.nan
    return {
        "n": int(keep.sum()),
        "top1": _num(topk_accuracy(probs, labels, 1)),
        "top5": _num(topk_accuracy(probs, labels, min(5, num_classes))),
        "mean_class_accuracy": _num(mean_class),
        "per_class": {str(name): _num(a) for name, a in zip(class_names, acc, strict=True)},
        "confusion": cm.tolist(),
    }


def _save(fig: Any, out_png: str | Path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    from mgcli.io.atomic import atomic_output

    out_png = Path(out_png)
    try:
        with atomic_output(out_png, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return out_png


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], out_png: str | Path, title: str = "") -> Path:
    """Confusion matrix as a PNG: colours normalised per true class (row), counts written in the
    cells while they stay legible (up to 20 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    k = cm.shape[0]
    if cm.shape != (k, k) or len(class_names) != k:
        raise ValueError(f"confusion matrix {cm.shape} for {len(class_names)} classes")
    rows = cm.sum(1, keepdims=True)
    norm = cm / np.maximum(rows, 1)
    side = max(4.0, 2.5 + 0.28 * k)
    font = 8 if k <= 12 else 7 if k <= 24 else 6
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ticks = np.arange(k)
    ax.set_xticks(ticks, [str(n) for n in class_names], rotation=90, fontsize=font)
    ax.set_yticks(ticks, [f"{n} ({int(r)})" for n, r in zip(class_names, rows[:, 0], strict=True)], fontsize=font)
    ax.set_xlabel("predicted", fontsize=font + 2)
    ax.set_ylabel("true (samples)", fontsize=font + 2)
    if k <= 20:
        for t, p in zip(*np.nonzero(cm), strict=True):
            ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=font,
                    color="white" if norm[t, p] > 0.5 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=font)
    if title:
        ax.set_title(title, fontsize=font + 3)
    fig.tight_layout()
    return _save(fig, out_png, dpi=120)


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(h["epoch"], h[key]) for h in history if h.get(key) is not None and math.isfinite(h[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(history: Sequence[dict[str, Any]], out_png: str | Path) -> Path:
    """Training curves as a PNG: loss (train, and val when present), val top-1 (when present), lr."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise MgError("no epochs to plot", out_png)
    panels = ["loss"] + (["top1"] if _series(history, "val_top1")[0] else []) + ["lr"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "loss":
            for key, label in (("train_loss", "train"), ("val_loss", "val")):
                x, y = _series(history, key)
                if x:
                    ax.plot(x, y, marker="." if len(x) < 30 else None, label=label)
            ax.set_title("loss")
            ax.legend(fontsize=8)
        elif panel == "top1":
            x, y = _series(history, "val_top1")
            ax.plot(x, y, marker="." if len(x) < 30 else None, color="tab:green")
            best = int(np.argmax(y))
            ax.scatter([x[best]], [y[best]], color="tab:red", zorder=3, label=f"best {y[best]:.4f} (epoch {x[best]})")
            ax.set_title("val top-1")
            ax.legend(fontsize=8)
        else:
            x, y = _series(history, "lr")
            ax.plot(x, y, color="tab:purple")
            ax.set_title("learning rate")
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out_png, dpi=100)
