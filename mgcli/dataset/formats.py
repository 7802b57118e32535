"""Readers and writers for the files of the MiGA release, byte-compatible with the originals.

- ``{vid}_label.csv``: no header, one row per clip, ``class,start_frame,end_frame`` (0-based,
  inclusive). Row k (0-based) is clip ``{vid}_{k}``.
- ``{vid}_openpose.xlsx``: one sheet, no header, row i = frame i, 137 OpenPose points
  (BODY_25, 70 face, 21 left hand, 21 right hand) as 411 columns x0, y0, c0, x1, ... in pixels.
  Empty cells (no detection) read as 0.
- ``{vid}_light_hand.csv``: column 0 the frame index, then 35 joints x (x, y, c): BODY_25 then
  the five fingertips (thumb, index, middle, ring, pinky) of the left hand, then of the right
  hand. With or without a header row. Frames without a detection may be absent.

The xlsx writer emits a minimal, standard SpreadsheetML package (what spreadsheet programs,
openpyxl and calamine read) directly from numpy: writing a long video's 400-column sheet through a
general spreadsheet library takes seconds, this takes a fraction of one.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.errors import DataError

OPENPOSE_POINTS = 137
LIGHT_HAND_POINTS = 35
# Fingertip indices inside a 21-point OpenPose hand: thumb, index, middle, ring, pinky.
FINGERTIPS = (4, 8, 12, 16, 20)
# Where each of the 35 light_hand joints sits in the 137-point layout.
LIGHT_HAND_FROM_OPENPOSE = tuple(range(25)) + tuple(95 + t for t in FINGERTIPS) + tuple(116 + t for t in FINGERTIPS)


# --------------------------------------------------------------------------- label files


def read_label_csv(path: str | Path) -> list[tuple[int, int, int]]:
    """Rows ``(raw_class, start, end)`` of a ``{vid}_label.csv``, validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read label file ({e.strerror})", path) from None
    rows: list[tuple[int, int, int]] = []
    for i, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise DataError(f"row {i}: expected 3 fields class,start,end, got {len(row)}", path)
        try:
            raw, start, end = (_whole_number(v) for v in row)
        except ValueError:
            raise DataError(f"row {i}: class, start and end must be integers: {','.join(row)}", path) from None
        if start < 0:
            raise DataError(f"row {i}: start frame {start} is negative", path)
        if end < start:
            raise DataError(f"row {i}: end frame {end} is before start frame {start}", path)
        rows.append((raw, start, end))
    if not rows:
        raise DataError("label file has no rows", path)
    return rows


MAX_CELL = 2**31 - 1  # frame numbers and class ids beyond this are typos, not data


def _whole_number(cell: str) -> int:
    """A label cell as an int: ``23`` or a spreadsheet's ``23.0``; not ``23.7``, ``inf`` or
    numbers beyond :data:`MAX_CELL` (ValueError)."""
    text = cell.strip()
    try:
        value = int(text)
    except ValueError:
        f = float(text)  # ValueError for text
        if not math.isfinite(f) or f != round(f):
            raise ValueError(cell) from None
        value = int(f)
    if abs(value) > MAX_CELL:
        raise ValueError(cell)
    return value


def write_label_csv(path: str | Path, rows: Sequence[tuple[int, int, int]]) -> None:
    with Path(path).open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


# --------------------------------------------------------------------------- openpose xlsx


def read_openpose_xlsx(path: str | Path) -> np.ndarray:
    """``[T, 137, 3]`` float32 (x, y, confidence) from a ``{vid}_openpose.xlsx``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("skeleton file not found", path)
    try:
        df = pd.read_excel(path, header=None, engine="calamine")
    except Exception as e:  # calamine raises its own types for corrupt zips/xml
        raise DataError(f"not a readable xlsx file ({e})", path) from None
    if df.shape[1] != 3 * OPENPOSE_POINTS:
        raise DataError(f"expected {3 * OPENPOSE_POINTS} columns (137 points x, y, conf), got {df.shape[1]}", path)
    try:
        values = df.to_numpy(dtype=np.float32, na_value=0.0)
    except (ValueError, TypeError):
        raise DataError("non-numeric cells in skeleton sheet", path) from None
    return values.reshape(len(df), OPENPOSE_POINTS, 3)


def _col_letters(n: int) -> list[str]:
    out = []
    for i in range(n):
        s, i = "", i + 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(65 + r) + s
        out.append(s)
    return out


_XLSX_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
}


def write_openpose_xlsx(path: str | Path, keypoints: np.ndarray, decimals: int = 3) -> None:
    """Write ``[T, 137, 3]`` keypoints as the release's headerless 411-column sheet."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (OPENPOSE_POINTS, 3):
        raise ValueError(f"keypoints must be [T, 137, 3], got {kp.shape}")
    flat = np.round(kp.reshape(len(kp), -1), decimals)
    ncol = flat.shape[1]
    letters = _col_letters(ncol)
    # One format string per row with the cell references baked in; fill it with the numbers.
    cells = "".join(f'<c r="{c}{{r}}"><v>{{}}</v></c>' for c in letters)
    row_fmt = '<row r="{r}">' + cells + "</row>"
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:{letters[-1]}{max(len(flat), 1)}"/><sheetData>'
    ]
    for i, values in enumerate(flat.tolist(), start=1):
        parts.append(row_fmt.replace("{r}", str(i)).format(*values))
    parts.append("</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, text in _XLSX_STATIC.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", "".join(parts))


# --------------------------------------------------------------------------- light_hand csv


def read_light_hand_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(frame_index [T] int64, keypoints [T, 35, 3] float32)`` from a ``{vid}_light_hand.csv``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("skeleton file not found", path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            first = f.readline()
    except OSError as e:
        raise DataError(f"cannot read skeleton file ({e.strerror})", path) from None
    first_cell = first.split(",", 1)[0].strip()
    has_header = bool(first_cell) and not _is_number(first_cell)
    try:
        df = pd.read_csv(path, header=0 if has_header else None, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"not a readable CSV ({str(e).strip()})", path) from None
    expected = 1 + 3 * LIGHT_HAND_POINTS
    if df.shape[1] != expected:
        raise DataError(f"expected {expected} columns (frame index + 35 joints x, y, c), got {df.shape[1]}", path)
    if len(df) and df.iloc[-1].isna().any():
        have = int(df.iloc[-1].notna().sum())
        raise DataError(f"the last row has {have} of {expected} cells: the file is truncated", path)
    try:
        values = df.to_numpy(dtype=np.float64, na_value=0.0)
    except (ValueError, TypeError):
        raise DataError("non-numeric cells in skeleton CSV", path) from None
    frames = values[:, 0]
    if np.any(frames < 0) or np.any(frames != np.round(frames)):
        raise DataError("frame index column must hold non-negative integers", path)
    if np.any(np.diff(frames) <= 0):
        raise DataError("frame indices must be strictly increasing", path)
    kp = values[:, 1:].astype(np.float32).reshape(len(df), LIGHT_HAND_POINTS, 3)
    return frames.astype(np.int64), kp


def dense_light_hand(frames: np.ndarray, keypoints: np.ndarray, total_frames: int) -> np.ndarray:
    """Scatter sparse light_hand rows into ``[total_frames, 35, 3]`` (missing frames are zeros)."""
    out = np.zeros((total_frames, LIGHT_HAND_POINTS, 3), np.float32)
    keep = frames < total_frames
    out[frames[keep]] = keypoints[keep]
    return out


def write_light_hand_csv(
    path: str | Path, keypoints: np.ndarray, frames: np.ndarray | None = None, header: bool = True
) -> None:
    """Write ``[T, 35, 3]`` keypoints (or ``[T, 137, 3]``, reduced) as a light_hand CSV."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape[1:] == (OPENPOSE_POINTS, 3):
        kp = kp[:, LIGHT_HAND_FROM_OPENPOSE]
    if kp.ndim != 3 or kp.shape[1:] != (LIGHT_HAND_POINTS, 3):
        raise ValueError(f"keypoints must be [T, 35, 3] or [T, 137, 3], got {kp.shape}")
    idx = np.arange(len(kp)) if frames is None else np.asarray(frames)
    table = np.concatenate([idx[:, None].astype(np.float64), kp.reshape(len(kp), -1)], axis=1)
    fmt = ["%d"] + ["%.3f"] * (table.shape[1] - 1)
    names = ["frame"] + [f"{a}{j}" for j in range(LIGHT_HAND_POINTS) for a in ("x", "y", "c")]
    np.savetxt(path, table, fmt=fmt, delimiter=",", header=",".join(names) if header else "", comments="")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
