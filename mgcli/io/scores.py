"""Scores CSV: the one shape every model, the ensemble and the report read and write.

Header ``clip_id,label,<one column per class, named by class id>``; one row per clip holding
probabilities (softmax, averaged over test views); ``label`` empty when unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.errors import DataError
from mgcli.io.atomic import atomic_output


@dataclass
class Scores:
    clip_ids: list[str]
    labels: np.ndarray  # int64 [N], -1 where unknown
    probs: np.ndarray  # float64 [N, K]
    classes: list[int]  # class id of each column

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def write_scores(
    path: str | Path,
    clip_ids: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    classes: Sequence[int] | None = None,
    overwrite: bool = True,
) -> Path:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or probs.shape[0] != len(clip_ids) or labels.shape != (len(clip_ids),):
        raise ValueError(f"{len(clip_ids)} clip ids, labels {labels.shape}, probabilities {probs.shape}")
    classes = list(range(probs.shape[1])) if classes is None else list(classes)
    df = pd.DataFrame(probs, columns=[str(c) for c in classes])
    df.insert(0, "label", pd.array([int(v) if v >= 0 else None for v in labels], dtype="Int64"))
    df.insert(0, "clip_id", list(clip_ids))
    with atomic_output(path, overwrite) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return Path(path)


def read_scores(path: str | Path) -> Scores:
    """Read and validate a scores CSV (structure only; see :func:`check_probabilities`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("scores file not found", path)
    try:
        df = pd.read_csv(path, dtype={"clip_id": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"not a readable CSV ({str(e).strip()})", path) from None
    if list(df.columns[:2]) != ["clip_id", "label"]:
        raise DataError("header must start with clip_id,label", path)
    class_cols = list(df.columns[2:])
    if not class_cols:
        raise DataError("no class columns after clip_id,label", path)
    try:
        classes = [int(c) for c in class_cols]
    except ValueError:
        raise DataError(f"class columns must be named by class id, got {class_cols[:3]}...", path) from None
    if len(set(classes)) != len(classes):
        raise DataError("duplicated class column", path)
    if df["clip_id"].isna().any():
        raise DataError(f"row {int(df['clip_id'].isna().to_numpy().argmax()) + 2}: empty clip id", path)
    dup = df["clip_id"].duplicated()
    if dup.any():
        raise DataError(f"duplicated clip id {df.loc[dup, 'clip_id'].iloc[0]}", path)
    probs = df[class_cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    if not np.isfinite(probs).all():
        r, c = np.argwhere(~np.isfinite(probs))[0]
        raise DataError(f"row {r + 2}: class {class_cols[c]} is empty, NaN or not a number", path)
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = df["label"].notna() & (labels.isna() | ~labels.isin(classes))
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"row {r + 2}: label {df['label'].iloc[r]} is not one of the class columns", path)
    return Scores(
        clip_ids=df["clip_id"].tolist(),
        labels=labels.fillna(-1).to_numpy(np.int64),
        probs=probs,
        classes=classes,
    )


def check_probabilities(scores: Scores, path: str | Path, atol: float = 1e-3) -> None:
    """Rows must be non-negative and sum to 1 (within ``atol``)."""
    if (scores.probs < 0).any():
        r = int(np.argwhere(scores.probs < 0)[0][0])
        raise DataError(f"row {r + 2}: negative probability (pass --logits if these are logits)", path)
    sums = scores.probs.sum(axis=1)
    off = np.abs(sums - 1.0) > atol
    if off.any():
        r = int(np.flatnonzero(off)[0])
        raise DataError(
            f"row {r + 2}: probabilities sum to {sums[r]:.4f}, not 1 (pass --logits if these are logits)", path
        )
