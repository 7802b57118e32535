"""Emotion labels of the MiGA 2025 Track 3 (one win / lose label per interview video) and its splits.

Convention for the whole project: **label 1 = win = positive, 0 = lose = negative**; video ids are
the release's 4-digit ``vid`` strings (``"0007"``).

Label files (:func:`read_emotion_labels`): CSV rows ``video_id,label``, an optional header row
(recognised when its label cell is not a label value, e.g. ``video_id,label``), labels written as
``1``/``0``, ``1.0``/``0.0``, ``win``/``lose`` or ``positive``/``negative`` (any case, surrounding
whitespace ignored), ids as integers (``7``, ``0007``, a spreadsheet's ``7.0``) normalised to four
digits. Blank lines are skipped.

The release ships ``train_label.csv`` and ``validation_label.csv`` (:data:`LABEL_FILES`) at its
root or beside its split folders (in the folder that holds ``imigue_skeleton_train/`` etc.);
``test_label.csv`` is read as well when present (the challenge does not publish test labels; the
bundled sample writes one with the true ones). The file name only says where a video's label comes
from: a video's split is always that of its release folder, or of the protocol when one is named.

Protocols (:data:`EMOTION_PROTOCOLS`): ``imigue2021``, the original iMiGUE emotion split (102
training videos, 51 win / 51 lose; 100 test videos, 50 / 50). It lists ids only, no labels.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.dataset.release import SPLITS, Release
from mgcli.errors import DataError, MgError

WIN, LOSE = 1, 0
CLASS_NAMES = ("lose", "win")  # indexed by label
LABEL_FILES = {"train": "train_label.csv", "val": "validation_label.csv", "test": "test_label.csv"}
EMOTION_COLUMNS = ("video_id", "split", "label")

_LABEL_WORDS = {"1": WIN, "win": WIN, "positive": WIN, "0": LOSE, "lose": LOSE, "negative": LOSE}


def _expand(spec: str) -> list[str]:
    """``"1,7,102-106"`` as sorted 4-digit ids."""
    ids: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        ids += range(int(first), int(last or first) + 1)
    return [f"{i:04d}" for i in sorted(ids)]


# The original iMiGUE emotion protocol (ids from the iMiGUE paper's split, see DESIGN.md).
_IMIGUE2021_TRAIN = (
    "1,7,8,11,26,27,46,47,48,53,55,57,63,66,67,74,77,84,85,86,91,96,102-106,108,109,112,114,117,124,132,134,"
    "140,148,157,161-164,167,169,170,172,176,186,196,216,233,236,237,239-243,249,252,266,290,297,300,306,310,"
    "314,318-320,324,334,339,359,360,365,369,377,381,385,392,402,407,410,411,413-415,420,429,433,435,436,440,"
    "441,445,448-453"
)
_IMIGUE2021_TEST = (
    "9,10,12,16,28,35,43,49-52,54,56,60,71,72,83,89,95,100,107,110,111,121,131,136,144,145,165,166,168,171,174,"
    "179,185,191,193,212,220,223,230-232,234,235,238,244,246,254,258,262,263,268,270,276,280,282,303,304,"
    "311-313,315-317,322,323,325,327-329,333,337,341,343,344,363,374,400,401,403-406,408,416,417,419,421,428,"
    "430,431,437-439,442-444,446,447"
)
EMOTION_PROTOCOLS: dict[str, dict[str, list[str]]] = {
    "imigue2021": {"train": _expand(_IMIGUE2021_TRAIN), "test": _expand(_IMIGUE2021_TEST)},
}


# --------------------------------------------------------------------------- label files


def normalise_video_id(cell: str) -> str:
    """``7``, ``0007`` or ``7.0`` as ``"0007"``; ValueError for anything else (empty, text,
    negative, fractional, more than four digits)."""
    text = cell.strip()
    if text.isdigit():
        value = int(text)
    else:
        f = float(text)  # ValueError for text and empty cells
        if not math.isfinite(f) or f != round(f):
            raise ValueError(text)
        value = int(f)
    if not 0 <= value <= 9999:
        raise ValueError(text)
    return f"{value:04d}"


def parse_emotion_label(cell: str) -> int:
    """``1/0``, ``1.0/0.0``, ``win/lose``, ``positive/negative`` (any case) as 1 / 0; else ValueError."""
    text = cell.strip().lower()
    if text in _LABEL_WORDS:
        return _LABEL_WORDS[text]
    f = float(text)  # ValueError for other words
    if f not in (0.0, 1.0):
        raise ValueError(text)
    return int(f)


def _is_header(row: list[str]) -> bool:
    if len(row) != 2:
        return False
    try:
        normalise_video_id(row[0])
        return False
    except ValueError:
        pass
    try:
        parse_emotion_label(row[1])
        return False
    except ValueError:
        return True


def read_emotion_labels(path: str | Path) -> dict[str, int]:
    """``{video_id: label}`` of a ``video_id,label`` CSV (see the module docstring), validated:
    one :class:`DataError` naming the file and the row for a wrong column count, an empty or
    non-numeric id, a label that is not one of the accepted values, a duplicated id, or a file
    without rows."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read emotion labels ({getattr(e, 'strerror', None) or e})", path) from None
    labels: dict[str, int] = {}
    first_row: dict[str, int] = {}
    seen_any = False
    for i, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if not seen_any:
            seen_any = True
            if _is_header(row):
                continue
        if len(row) != 2:
            raise DataError(f"row {i}: expected 2 fields video_id,label, got {len(row)}", path)
        cell_id, cell_label = row
        if not cell_id.strip():
            raise DataError(f"row {i}: empty video id", path)
        try:
            vid = normalise_video_id(cell_id)
        except ValueError:
            raise DataError(
                f"row {i}: video id {cell_id.strip()!r} is not a number of at most 4 digits", path
            ) from None
        try:
            label = parse_emotion_label(cell_label)
        except ValueError:
            raise DataError(
                f"row {i}: label {cell_label.strip()!r} is not 1/0, win/lose or positive/negative", path
            ) from None
        if vid in labels:
            raise DataError(f"row {i}: video {vid} is listed twice (first on row {first_row[vid]})", path)
        labels[vid] = label
        first_row[vid] = i
    if not labels:
        raise DataError("emotion label file has no rows", path)
    return labels


def label_file_folders(release: Release) -> list[Path]:
    """Where the release's emotion label files may be: its root, then the folders holding its
    split folders (the root itself when it is a split folder: then its parent)."""
    folders = [release.root]
    for folder, _, _ in release.split_folders:
        if folder.parent not in folders:
            folders.append(folder.parent)
    return folders


def find_emotion_label_files(release: Release) -> dict[str, list[Path]]:
    """``{split: [label files]}`` of the release (:data:`LABEL_FILES`), splits without one left out.

    When the root is itself a split folder, the files beside it (outside the root) serve the
    other splits too: only those of the root's own split(s) are taken from there.
    """
    own = {split for _, split, _ in release.split_folders}
    found: dict[str, list[Path]] = {}
    for split, name in LABEL_FILES.items():
        paths = [
            d / name
            for d in label_file_folders(release)
            if (d / name).is_file() and (split in own or d == release.root or release.root in d.parents)
        ]
        if paths:
            found[split] = paths
    return found


def release_emotion_labels(release: Release) -> dict[str, tuple[int, Path]]:
    """``{video_id: (label, file)}`` from the release's label files (empty when it has none).

    A video labelled in several files (or in copies of one file) must have the same label in each.
    """
    labels: dict[str, tuple[int, Path]] = {}
    for paths in find_emotion_label_files(release).values():
        for path in paths:
            for vid, label in read_emotion_labels(path).items():
                if vid in labels and labels[vid][0] != label:
                    before, where = labels[vid]
                    raise DataError(
                        f"video {vid} is {CLASS_NAMES[label]} here but {CLASS_NAMES[before]} in {where}", path
                    )
                labels.setdefault(vid, (label, path))
    return labels


# --------------------------------------------------------------------------- the video table


def emotion_splits(release: Release, protocol: str | None = None) -> tuple[dict[str, str], list[str]]:
    """``{video_id: split}`` of the release's videos that have a video or a skeleton file, and
    warnings. With ``protocol``, splits come from it: release videos it does not list are left
    out, and its videos missing from the release are counted in a warning."""
    present = {vid: e.split for vid, e in release.videos.items() if e.video is not None or e.has_skeleton}
    if protocol is None:
        return present, []
    if protocol not in EMOTION_PROTOCOLS:
        raise MgError(f"unknown emotion protocol {protocol!r} (known: {', '.join(EMOTION_PROTOCOLS)})")
    splits: dict[str, str] = {}
    absent: list[str] = []
    for split, ids in EMOTION_PROTOCOLS[protocol].items():
        for vid in ids:
            if vid in present:
                splits[vid] = split
            else:
                absent.append(vid)
    warnings = []
    if absent:
        warnings.append(
            f"{len(absent)} of the {protocol} protocol's videos are not in this release (e.g. {', '.join(absent[:5])})"
        )
    return splits, warnings


def emotion_videos(
    release: Release, labels_file: str | Path | None = None, protocol: str | None = None
) -> pd.DataFrame:
    """One row per video of the release with a video or a skeleton file: columns
    :data:`EMOTION_COLUMNS` (``label`` -1 where unknown), sorted by video id.

    Splits come from the release's folders, or from ``protocol`` (see :func:`emotion_splits`).
    Labels come from ``labels_file`` when given (the release's label files are then not read),
    else from the release's files (:func:`release_emotion_labels`). A label for a video the
    release does not have is a :class:`DataError` naming the file and the first ids. Warnings
    (protocol videos absent from the release) are in ``table.attrs["warnings"]`` (a list of str).
    """
    splits, warnings = emotion_splits(release, protocol)
    if labels_file is not None:
        labels_file = Path(labels_file)
        labels = {vid: (label, labels_file) for vid, label in read_emotion_labels(labels_file).items()}
    else:
        labels = release_emotion_labels(release)
    unknown: dict[Path, list[str]] = {}
    for vid, (_, path) in sorted(labels.items()):
        if vid not in release.videos:
            unknown.setdefault(path, []).append(vid)
    if unknown:
        path, ids = next(iter(unknown.items()))
        total = sum(len(v) for v in unknown.values())
        raise DataError(
            f"{total} labelled videos are not in the release at {release.root} (e.g. {', '.join(ids[:5])})", path
        )
    vids = sorted(splits)
    table = pd.DataFrame(
        {
            "video_id": pd.Series(vids, dtype=object),
            "split": pd.Series([splits[v] for v in vids], dtype=object),
            "label": np.array([labels[v][0] if v in labels else -1 for v in vids], dtype=np.int64),
        },
        columns=list(EMOTION_COLUMNS),
    )
    table.attrs["warnings"] = warnings
    return table


def emotion_counts(table: pd.DataFrame) -> list[tuple[str, int, int, int]]:
    """``(split, win, lose, unlabelled)`` per split present in an :func:`emotion_videos` table."""
    rows = []
    for split in SPLITS:
        part = table[table["split"] == split]
        if len(part):
            win = int((part["label"] == WIN).sum())
            lose = int((part["label"] == LOSE).sum())
            rows.append((split, win, lose, len(part) - win - lose))
    return rows
