"""What ``extract-pose`` works on: the videos of a release (or a plain folder) and their clips."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.dataset.formats import dense_light_hand, read_light_hand_csv, read_openpose_xlsx
from mgcli.dataset.labels import LabelMap
from mgcli.dataset.release import CLIP_COLUMNS, Release, find_split_folders, probe_video
from mgcli.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
STANDARD_SHAPES = ((720, 1280), (1080, 1920), (2160, 3840))


@dataclass
class VideoJob:
    video_id: str
    split: str
    video: Path | None
    openpose_xlsx: Path | None
    light_hand_csv: Path | None
    clips: pd.DataFrame  # this video's rows of the clip table
    error: str = ""  # why this video cannot be processed (a malformed label file), found by plan()

    def skeleton_file(self, prefer: str) -> tuple[str, Path] | None:
        """``(native layout, path)`` of the released skeleton to read (xlsx, light_hand or auto)."""
        if prefer in ("auto", "xlsx") and self.openpose_xlsx is not None:
            return "openpose137", self.openpose_xlsx
        if prefer in ("auto", "light_hand") and self.light_hand_csv is not None:
            return "openpose35", self.light_hand_csv
        return None


def _plain_video_id(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)


def find_videos(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix.lower() in VIDEO_SUFFIXES else []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def read_clips_csv(path: Path, video_ids: set[str]) -> pd.DataFrame:
    """A user clip table ``clip_id,video_id,start,end[,label][,split]`` for plain videos."""
    try:
        df = pd.read_csv(path, dtype={"clip_id": str, "video_id": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"cannot read clip table ({e})", path) from None
    need = {"clip_id", "video_id", "start", "end"}
    if not need <= set(df.columns):
        raise DataError(f"clip table needs columns {sorted(need)}, has {list(df.columns)}", path)
    unknown = sorted(set(df["video_id"]) - video_ids)
    if unknown:
        raise DataError(f"clip table names videos that are not there, e.g. {unknown[0]}", path)
    if df["clip_id"].duplicated().any():
        raise DataError(f"duplicated clip id {df.loc[df['clip_id'].duplicated(), 'clip_id'].iloc[0]}", path)
    bad = (df["end"] < df["start"]) | (df["start"] < 0)
    if bad.any():
        raise DataError(f"row {int(np.flatnonzero(bad.to_numpy())[0]) + 2}: start/end out of order or negative", path)
    df["label"] = df["label"].fillna(-1).astype(np.int64) if "label" in df else -1
    df["split"] = df["split"].fillna("test") if "split" in df else "test"
    df["raw_label"] = -1
    return df[list(CLIP_COLUMNS)].astype({"start": np.int64, "end": np.int64})


def plan(
    root: Path,
    label_map: LabelMap,
    clips_csv: Path | None = None,
    test_labels: Path | None = None,
    check_frames: bool = True,
) -> tuple[list[VideoJob], pd.DataFrame]:
    """Jobs (one per video) and the clip table, from a MiGA release or a plain folder of videos."""
    if not root.exists():
        raise DataError("not found", root)
    is_release = root.is_dir() and bool(find_split_folders(root))
    if is_release:
        release = Release(root, label_map, test_labels)
        errors: dict[str, str] = {}
        table = release.clips(check_frames=check_frames, errors=errors)
        jobs = [
            VideoJob(
                vid,
                e.split,
                e.video,
                e.openpose_xlsx,
                e.light_hand_csv,
                table[table["video_id"] == vid],
                errors.get(vid, ""),
            )
            for vid, e in sorted(release.videos.items())
        ]
        return jobs, table
    videos = find_videos(root)
    if not videos:
        raise DataError("no MiGA release folders and no videos found", root)
    ids = [_plain_video_id(p) for p in videos]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"two videos share the name {dup!r}; give them distinct names", root)
    if clips_csv is not None:
        table = read_clips_csv(clips_csv, set(ids))
    else:
        # One clip per video, the whole of it. A video that cannot be read keeps a row (its length
        # unknown) so that extract-pose reports it with the others and goes on.
        rows = [
            (f"{vid}_0", vid, "test", 0, _frames_or_zero(p) - 1, -1, -1) for vid, p in zip(ids, videos, strict=True)
        ]
        table = pd.DataFrame.from_records(rows, columns=list(CLIP_COLUMNS))
    jobs = [
        VideoJob(vid, "test", p, None, None, table[table["video_id"] == vid])
        for vid, p in zip(ids, videos, strict=True)
        if (table["video_id"] == vid).any()
    ]
    return jobs, table


def _frames_or_zero(video: Path) -> int:
    try:
        return probe_video(video).frames
    except DataError:
        return 1  # probed again, and reported, when the video is processed


def missing_skeleton(job: VideoJob, prefer: str) -> DataError:
    wanted = {"auto": "openpose.xlsx or light_hand.csv", "xlsx": "openpose.xlsx", "light_hand": "light_hand.csv"}[
        prefer
    ]
    return DataError(
        f"no {job.video_id}_{wanted} for video {job.video_id} (or use --source video)", job.video or job.video_id
    )


def load_release_skeleton(job: VideoJob, prefer: str) -> tuple[str, np.ndarray, np.ndarray]:
    """``(native layout, keypoint [T, V, 2], score [T, V])`` from the video's released skeleton."""
    found = job.skeleton_file(prefer)
    if found is None:
        raise missing_skeleton(job, prefer)
    layout, path = found
    if layout == "openpose137":
        data = read_openpose_xlsx(path)
    else:
        frames, sparse = read_light_hand_csv(path)
        data = dense_light_hand(frames, sparse, int(frames.max()) + 1 if len(frames) else 0)
    keypoint, score = data[..., :2].copy(), data[..., 2].copy()
    return layout, keypoint, scores_or_presence(keypoint, score)


def scores_or_presence(keypoint: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The confidences of a skeleton file, or, when the file has none (every score 0 while points
    are there: skeletons converted from a data set without confidences), 1 for every point that is
    not (0, 0). Without this, every joint would count as undetected."""
    present = (keypoint != 0).any(-1)
    if present.any() and not (score > 0).any():
        return present.astype(np.float32)
    return score


def infer_img_shape(keypoint: np.ndarray, score: np.ndarray) -> tuple[int, int]:
    """The smallest standard frame size holding every detected point (skeleton-only releases)."""
    ok = score > 0
    if not ok.any():
        return STANDARD_SHAPES[0]
    max_x, max_y = float(keypoint[..., 0][ok].max()), float(keypoint[..., 1][ok].max())
    for h, w in STANDARD_SHAPES:
        if max_x < w and max_y < h:
            return h, w
    return int(np.ceil(max_y + 1)), int(np.ceil(max_x + 1))
