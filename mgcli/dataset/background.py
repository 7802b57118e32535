"""Background windows: "no gesture" clips drawn from the gaps between a video's labelled clips.

A detector slid over a whole video (online recognition, MiGA Track 2) must be able to say that no
micro-gesture is going on. ``mg extract-pose --background N`` adds, to every training and
validation video, up to ``N`` windows of ``--background-window`` frames that lie entirely in the
gaps between labelled clips (no frame shared with any clip), as clips of one more class,
:data:`BACKGROUND` (the last class index; raw label 0, which no iMiGUE class uses). Every
artifact built from that ``poses.h5`` (heatmaps, the RGB frame cache) carries them, so any clip
model trains for detection through the same loop, with ``K + 1`` classes.

Only gaps between two labelled clips are used (the video's length need not be known, and the
stretches before the first and after the last gesture of an interview are often not interview).
Windows are drawn uniformly over every admissible start (a gap of length ``g`` offers
``g - window + 1`` of them), without two windows of a video overlapping, from a random stream
seeded by the seed and the video id, so the draw does not depend on the other videos.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from mgcli.dataset.release import CLIP_COLUMNS

BACKGROUND = "background"
BACKGROUND_RAW = 0  # raw label of the background class (iMiGUE's classes are 1..32)
SPLITS_WITH_BACKGROUND = ("train", "val")


def gaps(starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """The frames ``(first, last)`` strictly between labelled clips (inclusive ``[start, end]``
    ranges, possibly overlapping), in order."""
    order = np.argsort(starts, kind="stable")
    out, reach = [], None
    for s, e in zip(starts[order], ends[order], strict=True):
        if reach is not None and s > reach + 1:
            out.append((int(reach) + 1, int(s) - 1))
        reach = e if reach is None else max(reach, e)
    return out


def draw_windows(free: list[tuple[int, int]], window: int, count: int, rng: np.random.Generator) -> list[int]:
    """Up to ``count`` start frames of non-overlapping windows of ``window`` frames inside the
    ``free`` ranges, each start uniform over the admissible ones left (sorted)."""
    spans = [(a, b) for a, b in free if b - a + 1 >= window]
    chosen: list[int] = []
    for _ in range(count):
        room = np.array([b - a - window + 2 for a, b in spans], np.int64)
        if not len(spans) or room.sum() <= 0:
            break
        k = int(rng.choice(len(spans), p=room / room.sum()))
        a, b = spans[k]
        start = a + int(rng.integers(room[k]))
        chosen.append(start)
        # what is left of that range on either side of the new window
        rest = [(a, start - 1), (start + window, b)]
        spans[k : k + 1] = [(x, y) for x, y in rest if y - x + 1 >= window]
    return sorted(chosen)


def background_clips(table: pd.DataFrame, per_video: int, window: int, num_classes: int, seed: int = 0) -> pd.DataFrame:
    """Background rows (:data:`~mgcli.dataset.release.CLIP_COLUMNS`, clip ids ``{vid}_bg{k}``, label
    ``num_classes``) for the training and validation videos of the clip table ``table``."""
    rows = []
    for vid, g in table[table["split"].isin(SPLITS_WITH_BACKGROUND)].groupby("video_id", sort=True):
        rng = np.random.default_rng([seed, zlib.crc32(str(vid).encode())])
        free = gaps(g["start"].to_numpy(np.int64), g["end"].to_numpy(np.int64))
        for k, s in enumerate(draw_windows(free, window, per_video, rng)):
            rows.append((f"{vid}_bg{k}", vid, g["split"].iloc[0], s, s + window - 1, BACKGROUND_RAW, num_classes))
    return pd.DataFrame.from_records(rows, columns=list(CLIP_COLUMNS))


def with_background(table: pd.DataFrame, num_classes: int, per_video: int, window: int, seed: int = 0) -> pd.DataFrame:
    """``table`` and its background rows (label ``num_classes``), each video's rows by start frame."""
    extra = background_clips(table, per_video, window, num_classes, seed)
    if extra.empty:
        return table
    out = pd.concat([table, extra.astype(table[list(CLIP_COLUMNS)].dtypes.to_dict())], ignore_index=True)
    return out.sort_values(["video_id", "start"], kind="stable").reset_index(drop=True)
