"""The MiGA release reader: find videos, skeleton files and label files, build the clip table.

A release root holds split folders, each with one sub-folder per interview video (``vid`` = four
digits). Known folder names (others are recognised by the words in them, see
:func:`classify_folder`)::

    imigue_skeleton_train/{vid}/{vid}_openpose.xlsx, {vid}_light_hand.csv, {vid}_label.csv
    imigue_skeleton_validate/{vid}/...          imigue_skeleton_test/{vid}/...
    train_data/{vid}/{vid}.mp4 (+ {vid}_label.csv)
    validation_data/{vid}/...   test_data/{vid}/...   imigue_rgb_phase2/{vid}/...

Split folders may sit directly under the root or one level deeper, and the root may itself be a
split folder. Videos may be absent (skeleton-only use) and skeleton files may be absent
(video-only use); :meth:`Release.require` checks what a stage needs.

Test label files of the challenge carry dummy classes, so test clips get ``label = -1`` unless
the true labels are given: ``test_labels`` (a CSV ``clip_id,label``), or ``ROOT/test_labels.csv``
when it exists (the bundled sample writes one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mgcli.dataset.formats import read_label_csv
from mgcli.dataset.labels import DEFAULT_LABEL_MAP, LabelMap
from mgcli.errors import DataError

SPLITS = ("train", "val", "test")
CLIP_COLUMNS = ("clip_id", "video_id", "split", "start", "end", "raw_label", "label")
VIDEO_ID = re.compile(r"^\d{4}$")
TEST_LABELS_FILE = "test_labels.csv"

KNOWN_FOLDERS: dict[str, tuple[str, str]] = {
    "imigue_skeleton_train": ("train", "skeleton"),
    "imigue_skeleton_validate": ("val", "skeleton"),
    "imigue_skeleton_test": ("test", "skeleton"),
    "train_data": ("train", "rgb"),
    "validation_data": ("val", "rgb"),
    "test_data": ("test", "rgb"),
    "imigue_rgb_phase2": ("test", "rgb"),
}


def classify_folder(name: str) -> tuple[str, str] | None:
    """``(split, kind)`` of a release folder name, kind being ``skeleton`` or ``rgb``; else None."""
    low = name.lower()
    if low in KNOWN_FOLDERS:
        return KNOWN_FOLDERS[low]
    words = set(re.split(r"[^a-z0-9]+", low))
    if "train" in words or "training" in words:
        split = "train"
    elif words & {"val", "valid", "validate", "validation"}:
        split = "val"
    elif words & {"test", "testing", "phase2"}:
        split = "test"
    else:
        return None
    if not words & {"skeleton", "skeletons", "openpose", "rgb", "data", "video", "videos", "imigue"}:
        return None
    return split, "skeleton" if words & {"skeleton", "skeletons", "openpose"} else "rgb"


@dataclass
class VideoEntry:
    """Where one interview video's files are (any of them may be missing)."""

    video_id: str
    split: str
    folders: list[Path] = field(default_factory=list)
    video: Path | None = None
    openpose_xlsx: Path | None = None
    light_hand_csv: Path | None = None
    label_csv: list[Path] = field(default_factory=list)
    rgb_folder: Path | None = None

    @property
    def has_skeleton(self) -> bool:
        return self.openpose_xlsx is not None or self.light_hand_csv is not None


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    height: int
    width: int


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size from the container (no decoding)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError("cannot open video", path)
        info = VideoInfo(
            frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            fps=float(cap.get(cv2.CAP_PROP_FPS)) or 25.0,
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )
    finally:
        cap.release()
    if info.frames <= 0 or info.width <= 0:
        raise DataError("video has no readable frames", path)
    return info


def find_split_folders(root: Path) -> list[tuple[Path, str, str]]:
    found = []
    own = classify_folder(root.name)
    if own and _has_video_dirs(root):
        return [(root, *own)]
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        kind = classify_folder(child.name)
        if kind and _has_video_dirs(child):
            found.append((child, *kind))
        elif kind is None and not VIDEO_ID.match(child.name):
            for grandchild in sorted(p for p in child.iterdir() if p.is_dir()):
                kind = classify_folder(grandchild.name)
                if kind and _has_video_dirs(grandchild):
                    found.append((grandchild, *kind))
    return found


def _has_video_dirs(folder: Path) -> bool:
    return any(p.is_dir() and VIDEO_ID.match(p.name) for p in folder.iterdir())


class Release:
    """A MiGA release (or the bundled sample) on disk: its videos and its clip table."""

    def __init__(
        self,
        root: str | Path,
        label_map: LabelMap = DEFAULT_LABEL_MAP,
        test_labels: str | Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.label_map = label_map
        if not self.root.exists():
            raise DataError("release root not found", self.root)
        if not self.root.is_dir():
            raise DataError("release root is not a folder", self.root)
        self.videos: dict[str, VideoEntry] = {}
        self._infos: dict[str, VideoInfo] = {}
        self.split_folders = find_split_folders(self.root)
        if not self.split_folders:
            raise DataError(
                "no release folders found (expected e.g. imigue_skeleton_train/{vid}/ or train_data/{vid}/)",
                self.root,
            )
        for folder, split, kind in self.split_folders:
            for vdir in sorted(p for p in folder.iterdir() if p.is_dir() and VIDEO_ID.match(p.name)):
                self._add(vdir, split, kind)
        default_test = self.root / TEST_LABELS_FILE
        self.test_labels_path = (
            Path(test_labels) if test_labels is not None else default_test if default_test.is_file() else None
        )

    def _add(self, vdir: Path, split: str, kind: str) -> None:
        vid = vdir.name
        entry = self.videos.setdefault(vid, VideoEntry(vid, split))
        if entry.split != split:
            raise DataError(f"video {vid} is in both the {entry.split} and the {split} split", vdir)
        entry.folders.append(vdir)
        label = vdir / f"{vid}_label.csv"
        if label.is_file():
            entry.label_csv.append(label)
        if kind == "rgb":
            entry.rgb_folder = vdir
            mp4 = vdir / f"{vid}.mp4"
            if mp4.is_file():
                entry.video = mp4
        else:
            xlsx, lh = vdir / f"{vid}_openpose.xlsx", vdir / f"{vid}_light_hand.csv"
            entry.openpose_xlsx = xlsx if xlsx.is_file() else entry.openpose_xlsx
            entry.light_hand_csv = lh if lh.is_file() else entry.light_hand_csv

    # ------------------------------------------------------------------ clip table

    def video_info(self, vid: str) -> VideoInfo | None:
        entry = self.videos[vid]
        if entry.video is None:
            return None
        if vid not in self._infos:
            self._infos[vid] = probe_video(entry.video)
        return self._infos[vid]

    def label_rows(self, vid: str) -> list[tuple[int, int, int]]:
        entry = self.videos[vid]
        if not entry.label_csv:
            raise DataError(f"no {vid}_label.csv for video {vid}", entry.folders[0])
        rows = read_label_csv(entry.label_csv[0])
        for other in entry.label_csv[1:]:
            if read_label_csv(other) != rows:
                raise DataError(f"label file disagrees with {entry.label_csv[0]}", other)
        return rows

    def clips(self, check_frames: bool = True, errors: dict[str, str] | None = None) -> pd.DataFrame:
        """The clip table, one row per labelled clip, columns :data:`CLIP_COLUMNS`.

        With ``check_frames``, every clip must end inside its video (frame count from the mp4).
        With ``errors``, a video whose label file is malformed is left out and its problem is
        recorded there (``{video_id: message}``) instead of raised, so the others go on.
        """
        records = []
        for vid in sorted(self.videos):
            try:
                records += self._video_clips(vid, check_frames)
            except DataError as e:
                if errors is None:
                    raise
                errors[vid] = str(e)
        table = pd.DataFrame.from_records(records, columns=list(CLIP_COLUMNS))
        if self.test_labels_path is not None:
            table = self._apply_test_labels(table)
        return table.astype({"start": np.int64, "end": np.int64, "raw_label": np.int64, "label": np.int64})

    def _video_clips(self, vid: str, check_frames: bool) -> list[tuple]:
        entry = self.videos[vid]
        rows = self.label_rows(vid)
        info = self.video_info(vid) if check_frames else None
        records = []
        for k, (raw, start, end) in enumerate(rows):
            label = self.label_map.to_label(raw, entry.label_csv[0], k + 1)
            if info is not None and end >= info.frames:
                raise DataError(
                    f"row {k + 1}: clip ends at frame {end} but the video has {info.frames} frames",
                    entry.label_csv[0],
                )
            if entry.split == "test":
                label, raw = -1, -1
            records.append((f"{vid}_{k}", vid, entry.split, start, end, raw, label))
        return records

    def _apply_test_labels(self, table: pd.DataFrame) -> pd.DataFrame:
        path = self.test_labels_path
        assert path is not None
        if not path.is_file():
            raise DataError("test labels file not found", path)
        truth = read_clip_labels(path, self.label_map.num_classes)
        test = table["split"] == "test"
        unknown = sorted(set(truth) - set(table.loc[test, "clip_id"]))
        if unknown:
            raise DataError(f"{len(unknown)} ids are not test clips of this release, e.g. {unknown[0]}", path)
        mapped = table.loc[test, "clip_id"].map(truth)
        table.loc[test, "label"] = mapped.fillna(-1).astype(np.int64)
        table.loc[test & (table["label"] >= 0), "raw_label"] = [
            self.label_map.to_raw(int(v)) for v in table.loc[test & (table["label"] >= 0), "label"]
        ]
        return table

    def require(self, what: str, video_ids: list[str] | None = None) -> None:
        """Fail with a clear message unless every (selected) video has ``video`` or ``skeleton`` files."""
        for vid in video_ids or sorted(self.videos):
            entry = self.videos[vid]
            if what == "video" and entry.video is None:
                where = entry.rgb_folder or entry.folders[0]
                raise DataError(f"missing video {vid}.mp4", where)
            if what == "skeleton" and not entry.has_skeleton:
                raise DataError(f"missing skeleton file {vid}_openpose.xlsx or {vid}_light_hand.csv", entry.folders[0])


def read_clip_labels(path: str | Path, num_classes: int) -> dict[str, int]:
    """A ``clip_id,label`` CSV (header required) as a dict, labels checked against the class range."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"clip_id": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read clip labels ({e})", path) from None
    if not {"clip_id", "label"} <= set(df.columns):
        raise DataError("expected a header with columns clip_id,label", path)
    if df["clip_id"].duplicated().any():
        raise DataError(f"duplicated clip id {df.loc[df['clip_id'].duplicated(), 'clip_id'].iloc[0]}", path)
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = labels.isna() | (labels < 0) | (labels >= num_classes) | (labels != labels.round())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"row {i + 2}: label {df['label'].iloc[i]} is not a class id 0..{num_classes - 1}", path)
    return dict(zip(df["clip_id"], labels.astype(int), strict=True))
