"""Detections CSV: the segments an online (Track 2) detector found in whole videos.

Header ``video_id,label,start,end[,score]``, one row per segment: the 4-digit video id, the class
as the class index of the label map (like the scores CSV's columns), the first and last frame
(0-based, inclusive, as in the release's label files) and an optional confidence. ``mg
evaluate-online`` reads it; ``mg submit --format online2023`` turns it into the challenge's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.errors import DataError
from mgcli.io.atomic import atomic_output

DETECTION_COLUMNS = ("video_id", "label", "start", "end", "score")


@dataclass
class Detections:
    """Segments as a table with :data:`DETECTION_COLUMNS` (score 1.0 where the file gave none)."""

    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @property
    def video_ids(self) -> list[str]:
        return sorted(self.table["video_id"].unique())


def read_detections(path: str | Path, num_classes: int | None = None) -> Detections:
    """Read and check a detections CSV; one :class:`DataError` naming the file and the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataError("detections file not found", path)
    try:
        df = pd.read_csv(path, dtype={"video_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"not a readable CSV ({str(e).splitlines()[0]})", path) from None
    missing = [c for c in DETECTION_COLUMNS[:4] if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} (header: video_id,label,start,end[,score])", path)
    if "score" not in df.columns:
        df["score"] = 1.0
    df = df[list(DETECTION_COLUMNS)]
    for col in ("label", "start", "end"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"row {row + 2}: {col} must be an integer, got {df[col].iloc[row]!r}", path)
        df[col] = values.astype(np.int64)
    score = pd.to_numeric(df["score"], errors="coerce")
    checks = (
        (df["video_id"].isna() | ~df["video_id"].astype(str).str.fullmatch(r"\d{4}"), "video_id must be 4 digits"),
        (score.isna(), "score must be a number"),
        (df["start"] < 0, "start must be 0 or more"),
        (df["end"] < df["start"], "end is before start"),
        (df["label"] < 0, "label must be 0 or more"),
    )
    if num_classes is not None:
        checks += ((df["label"] >= num_classes, f"label must be below {num_classes} (class indices)"),)
    for bad, message in checks:
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"row {row + 2}: {message}", path)
    df["score"] = score.astype(np.float64)
    return Detections(df.reset_index(drop=True))


def write_detections(path: str | Path, table: pd.DataFrame, overwrite: bool = True) -> Path:
    """Write :data:`DETECTION_COLUMNS` of ``table`` (temporary file, then renamed)."""
    df = table[list(DETECTION_COLUMNS)].copy()
    df["video_id"] = df["video_id"].astype(str)
    with atomic_output(path, overwrite) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)
