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
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


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
    out = {
        "n": int(keep.sum()),
        "top1": _num(topk_accuracy(probs, labels, 1)),
        "top5": _num(topk_accuracy(probs, labels, min(5, num_classes))),
        "mean_class_accuracy": _num(mean_class),
        "per_class": {str(name): _num(a) for name, a in zip(class_names, acc, strict=True)},
        "confusion": cm.tolist(),
    }
    if num_classes == 2:
        out["binary"] = binary_metrics(probs[keep, 1], labels[keep])
    return out


def binary_metrics(p_positive: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Two classes (1 the positive one, e.g. win): accuracy, balanced accuracy, F1 of class 1 and
    ROC-AUC (the rank statistic, ties counted half; None with one class only)."""
    p, y = np.asarray(p_positive, np.float64), np.asarray(labels, np.int64)
    if y.size == 0:
        return {"accuracy": None, "balanced_accuracy": None, "f1": None, "roc_auc": None}
    pred = (p >= 0.5).astype(np.int64)
    tp, fp = int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum())
    fn, tn = int(((pred == 0) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    recalls = [tp / (tp + fn) if tp + fn else math.nan, tn / (tn + fp) if tn + fp else math.nan]
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    pos, neg = p[y == 1], p[y == 0]
    auc = math.nan
    if pos.size and neg.size:
        order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
        allp = np.concatenate([pos, neg])[order]
        ranks = np.empty(allp.size)
        ranks[order] = _average_ranks(allp)
        auc = (ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size)
    return {
        "accuracy": _num(float((pred == y).mean())),
        "balanced_accuracy": _num(float(np.nanmean(recalls)) if np.isfinite(recalls).any() else math.nan),
        "f1": _num(f1),
        "roc_auc": _num(auc),
    }


def _average_ranks(sorted_values: np.ndarray) -> np.ndarray:
    """1-based ranks of sorted values, tied values sharing their mean rank."""
    n = sorted_values.size
    ranks = np.arange(1, n + 1, dtype=np.float64)
    _, start, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        if c > 1:
            ranks[s : s + c] = s + (c + 1) / 2
    return ranks


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
            ax.text(
                p,
                t,
                str(cm[t, p]),
                ha="center",
                va="center",
                fontsize=font,
                color="white" if norm[t, p] > 0.5 else "black",
            )
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


# ------------------------------------------------------------------------------------ mg report


def precision_recall(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (column-wise) and recall (row-wise) of a confusion matrix; NaN where
    a class was never predicted / never present."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), np.nan)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), np.nan)
    return precision, recall


def confused_pairs(cm: np.ndarray, top: int = 10) -> list[tuple[int, int, int]]:
    """The ``top`` largest off-diagonal cells ``(true, predicted, count)``, largest first."""
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    cells = [(int(t), int(p), int(off[t, p])) for t, p in zip(*np.nonzero(off), strict=True)]
    return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))[:top]


def score_report(scores: Any, class_names: Sequence[str] | None = None, top_pairs: int = 10) -> dict[str, Any]:
    """Everything ``mg report`` shows for a scores CSV with labels: top-1/top-5, mean class
    accuracy, per-class precision/recall/support, the confusion matrix and the most confused
    pairs (JSON-ready). ``class_names``: one per column (default: the iMiGUE names of the ids)."""
    from mgcli.dataset.labels import DEFAULT_LABEL_MAP

    col = {c: i for i, c in enumerate(scores.classes)}
    labels = np.array([col[int(v)] if v >= 0 else -1 for v in scores.labels], np.int64)
    if class_names is None:
        names = DEFAULT_LABEL_MAP.names
        class_names = [names[c] if 0 <= c < len(names) else f"class {c}" for c in scores.classes]
    summary = summarize(scores.probs, labels, class_names)
    if not summary["n"]:
        raise MgError("the scores carry no labels: nothing to report (test scores need the true labels)")
    cm = np.asarray(summary["confusion"])
    precision, recall = precision_recall(cm)
    summary["per_class"] = {
        str(name): {"class": int(c), "precision": _num(p), "recall": _num(r), "support": int(n)}
        for name, c, p, r, n in zip(class_names, scores.classes, precision, recall, cm.sum(1), strict=True)
    }
    summary["confused_pairs"] = [
        {"true": str(class_names[t]), "predicted": str(class_names[p]), "count": n}
        for t, p, n in confused_pairs(cm, top_pairs)
    ]
    summary["class_names"] = [str(n) for n in class_names]
    return summary


def write_report(
    scores: Any,
    out_prefix: str | Path,
    class_names: Sequence[str] | None = None,
    title: str = "",
    overwrite: bool = True,
    inputs: Sequence[str | Path] = (),
) -> tuple[dict[str, Any], list[Path]]:
    """``{prefix}-report.json`` and ``{prefix}-confusion.png`` for a labelled scores file
    (existing ones are refused unless ``overwrite``, and so are ``inputs``)."""
    import json

    from mgcli.io.atomic import atomic_output, check_output

    report = score_report(scores, class_names)
    out_prefix = Path(out_prefix)
    js = out_prefix.with_name(out_prefix.name + "-report.json")
    png = out_prefix.with_name(out_prefix.name + "-confusion.png")
    for path in (js, png):
        check_output(path, overwrite, inputs)
    with atomic_output(js, True) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, allow_nan=False))
    plot_confusion(np.asarray(report["confusion"]), report["class_names"], png, title=title)
    return report, [js, png]
