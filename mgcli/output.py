"""What the commands print: metrics lines and tables, built in one place.

Every function returns a rich renderable (a markup string or a :class:`~rich.table.Table`) and
prints nothing itself, so ``mg`` prints them on its console and tests render them to text. The
numbers come from the library (:mod:`mgcli.report`, :mod:`mgcli.ensemble`, the training loop's
metrics); here they are only laid out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:  # mgcli.ensemble reads CSVs with pandas: not needed to lay out its rows
    from mgcli.ensemble import EnsembleRow
    from mgcli.pose.extract import ExtractReport


def metrics_line(metrics: Mapping[str, Any], split: str | None = None) -> str:
    """``split: top-1 X  top-5 Y  mean class acc Z  (N clips)`` from ``top1``, ``top5``,
    ``mean_class_accuracy`` and ``n`` (``split: no labels, scores only`` when ``n`` is 0)."""
    prefix = f"{split}: " if split else ""
    if not metrics["n"]:
        return f"{prefix}no labels, scores only"
    binary = metrics.get("binary")
    if binary:  # two classes (the emotion track): the challenge's accuracy and the binary metrics

        def num(key: str) -> str:
            return "n/a" if binary.get(key) is None else f"{binary[key]:.4f}"

        return (
            f"{prefix}accuracy [bold]{num('accuracy')}[/]  balanced acc {num('balanced_accuracy')}  "
            f"F1 {num('f1')}  ROC-AUC {num('roc_auc')}  ({metrics['n']} videos)"
        )
    return (
        f"{prefix}top-1 [bold]{metrics['top1']:.4f}[/]  top-5 {metrics['top5']:.4f}  "
        f"mean class acc {metrics['mean_class_accuracy']:.4f}  ({metrics['n']} clips)"
    )


def wrote(paths: Iterable[str | Path], detail: str = "") -> str:
    """``wrote a, b (detail)``."""
    return f"[green]wrote[/] {', '.join(map(str, paths))}" + (f" ({detail})" if detail else "")


def fusion_table(splits: Mapping[str, Mapping[str, Any]]) -> Table | None:
    """The late-fusion table of a two-pathway run (each modality alone and the fused ratios,
    top-1 / top-5 per split), or ``None`` when no split has one."""
    tables = {split: s["late_fusion"] for split, s in splits.items() if s.get("late_fusion")}
    if not tables:
        return None
    table = Table(title="late fusion (rgb:pose), top-1 / top-5")
    table.add_column("scores")
    for split in tables:
        table.add_column(split, justify="right")
    for row in next(iter(tables.values())):
        table.add_row(row, *(f"{t[row]['top1']:.4f} / {t[row]['top5']:.4f}" for t in tables.values()))
    return table


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def ensemble_table(rows: Sequence[EnsembleRow], show_val: bool) -> Table:
    """Weight, (val top-1,) test top-1 and top-5 of every input and of the ensemble (bold)."""
    table = Table(title="ensemble")
    cols = ("scores", "weight", *(("val top-1",) if show_val else ()), "test top-1", "test top-5")
    for col in cols:
        table.add_column(col, justify="left" if col == "scores" else "right", overflow="fold")
    for r in rows:
        name = f"[bold]{r.name}[/]" if r.fused else r.name
        val = (_acc(r.val_top1),) if show_val else ()
        table.add_row(name, f"{r.weight:.3f}", *val, _acc(r.test_top1), _acc(r.test_top5))
    return table


def report_tables(report: Mapping[str, Any], top: int = 10) -> list[Table]:
    """``mg report``'s per-class table (classes present or predicted) and, when there are any,
    its ``top`` most confused pairs."""
    table = Table(title="per class")
    for col in ("class", "name", "precision", "recall", "support"):
        table.add_column(col, justify="left" if col == "name" else "right")

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for name, r in report["per_class"].items():
        if r["support"] or r["precision"] is not None:
            table.add_row(str(r["class"]), name, fmt(r["precision"]), fmt(r["recall"]), str(r["support"]))
    tables = [table]
    if report["confused_pairs"]:
        pairs = Table(title="most confused (true -> predicted)")
        for col in ("true", "predicted", "clips"):
            pairs.add_column(col, justify="right" if col == "clips" else "left")
        for c in report["confused_pairs"][:top]:
            pairs.add_row(c["true"], c["predicted"], str(c["count"]))
        tables.append(pairs)
    return tables


def extract_table(report: ExtractReport) -> Table:
    """``mg extract-pose``'s summary: one row per video (status, frames, model frames, clips, time)."""
    table = Table(title=f"extract-pose: {report.source} -> {report.layout}", title_justify="left")
    for col in ("video", "status", "frames", "model frames", "clips", "seconds"):
        table.add_column(col, justify="left" if col in ("video", "status") else "right")
    for o in report.outcomes:
        status = "[dim]done earlier[/]" if o.skipped else "[green]ok[/]" if o.ok else f"[red]failed[/]: {o.message}"
        model = f"{o.processed:,}" if o.processed else "-"
        table.add_row(o.video_id, status, f"{o.frames:,}", model, str(o.clips), f"{o.seconds:.1f}")
    return table


def models_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """``mg models``: name, input kind, parameters, input per sample and description of each model."""
    table = Table("model", "reads", "parameters", "input per sample", "description")
    table.columns[0].no_wrap = table.columns[2].no_wrap = True
    for row in rows:
        table.add_row(row["name"], row["input_kind"], f"{row['params'] / 1e6:.2f} M", row["input"], row["description"])
    return table


def online_tables(report: Any, split: str, iou: float) -> list[Table]:
    """The tables of ``mg evaluate-online`` (an :class:`mgcli.online.evaluate.OnlineReport`): F1,
    precision and recall of each matching, then per class (strict matching)."""
    cols = ("F1", "precision", "recall", "hits", "detections", "ground truth")
    overall = Table(title=f"{split}: {report.videos} videos, overlap > {iou:g}")
    per_class = Table(title="per class (strict)")
    for table, first in ((overall, "matching"), (per_class, "class")):
        table.add_column(first)
        for col in cols:
            table.add_column(col, justify="right")
    for name, s in report.scores.items():
        overall.add_row(name, *_online_cells(s.f1, s.precision, s.recall, s.hits, s.predictions, s.ground_truth, 4))
    names = report.class_names
    for c, v in report.scores["strict"].per_class.items():
        cells = _online_cells(v["f1"], v["precision"], v["recall"], v["hits"], v["predictions"], v["ground_truth"], 3)
        per_class.add_row(names[c] if c < len(names) else str(c), *cells)
    return [overall, per_class]


def _online_cells(f1: float, p: float, r: float, hits: int, preds: int, gt: int, digits: int) -> list[str]:
    return [f"{f1:.{digits}f}", f"{p:.{digits}f}", f"{r:.{digits}f}", str(hits), str(preds), str(gt)]


def segments_table(segments: Any, title: str, limit: int = 40) -> Table:
    """The micro-gestures ``mg predict`` found: times in seconds, class, score (the first ``limit``)."""
    table = Table(title=f"{title}: {len(segments)} micro-gesture(s)")
    for name in ("start (s)", "end (s)", "class", "score"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for r in segments.head(limit).to_dict("records"):
        table.add_row(f"{r['start_s']:.2f}", f"{r['end_s']:.2f}", str(r["class"]), f"{r['score']:.3f}")
    if len(segments) > limit:
        table.add_row("...", "", f"{len(segments) - limit} more in segments.csv", "")
    return table
