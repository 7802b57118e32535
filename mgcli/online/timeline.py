"""A timeline PNG of one video: detected segments against the ground truth, class by colour."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgcli.io.atomic import atomic_output


def plot_timeline(
    pred: pd.DataFrame,
    gt: pd.DataFrame | None,
    class_names: Sequence[str],
    out_png: str | Path,
    fps: float | None = None,
    title: str = "",
    overwrite: bool = True,
) -> Path:
    """Two rows: the ground truth (``video_id, label, start, end[, hit]``; a segment with
    ``hit < 0`` is drawn with a red dashed edge, a missed gesture) and the predictions (``label,
    start, end, score``; opacity follows the score). The x axis is seconds when ``fps`` is given,
    else frames. Written to a temporary file, then renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1.0 / fps if fps else 1.0
    rows = [("detections", pred)] + ([("ground truth", gt)] if gt is not None else [])
    ends = [float(df["end"].max()) + 1 for _, df in rows if len(df)]
    span = (max(ends) if ends else 1.0) * scale
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.9 * len(rows)))
    for y, (name, df) in enumerate(rows):
        draw_segments(ax, df, y, class_names, scale, span, by_score=name == "detections", missed=name != "detections")
    ax.set_xlim(0, span)
    ax.set_ylim(0, len(rows))
    ax.set_yticks(np.arange(len(rows)) + 0.5, [name for name, _ in rows])
    ax.set_xlabel("seconds" if fps else "frame")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(out_png, overwrite) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(out_png)


def draw_segments(
    ax: Any,
    df: pd.DataFrame,
    y: float,
    class_names: Sequence[str],
    scale: float,
    span: float,
    by_score: bool = False,
    missed: bool = False,
) -> None:
    """One row of segments (``label, start, end``) at height ``y``, coloured by class and named
    where wide enough: opacity by ``score`` with ``by_score``, a red dashed edge where ``hit < 0``
    with ``missed``. ``scale``: x units per frame; ``span``: the axis length in those units."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab20")
    for r in df.itertuples():
        x0, width = r.start * scale, (r.end - r.start + 1) * scale
        alpha = float(np.clip(getattr(r, "score", 1.0), 0.15, 1.0)) if by_score else 0.9
        lost = missed and getattr(r, "hit", 0) < 0
        ax.add_patch(
            plt.Rectangle(
                (x0, y + 0.1), width, 0.8, facecolor=cmap(int(r.label) % 20), alpha=alpha,
                edgecolor="red" if lost else "black", linestyle="--" if lost else "-",
                linewidth=1.2 if lost else 0.4,
            )
        )  # fmt: skip
        if width > span / 40:
            label = class_names[int(r.label)] if 0 <= int(r.label) < len(class_names) else str(r.label)
            ax.text(x0 + width / 2, y + 0.5, label, ha="center", va="center", fontsize=6, clip_on=True)
