"""``faces.h5``: aligned 112x112 face crops sampled over whole videos (``mg extract-faces``).

Layout (schema ``mgcli.faces/1``)::

    attrs    schema, mgcli_version, created, fps (sampling rate, crops per second), size (112),
             source (what found the faces: openpose, mediapipe or both joined by "+"), quality,
             detector (MediaPipe's description when it ran), class_names (["lose", "win"])
    videos/  table: video_id (4-digit str), split (train/val/test), label (1 win, 0 lose,
             -1 unknown), source (per video), fps (of the video), num_frames (of the video)
    clips/   the per-video clip table every artifact carries (clip_id = video_id, start 0,
             end = num_frames - 1, label, split; see :func:`mgcli.io.embeddings.video_clip_table`)
    faces/{vid}/jpeg    variable-length uint8 [K]: one JPEG (RGB, quality ``quality``) per sampled
                        frame; empty where no face was found
    faces/{vid}/frame   int64 [K]: the frame number of each crop
    faces/{vid}/score   float32 [K]: the face's score (0 where none was found)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import pandas as pd

from mgcli.errors import SchemaError
from mgcli.io.embeddings import EMOTION_CLASSES, video_clip_table
from mgcli.io.h5 import SCHEMAS, H5Artifact, H5Writer, read_table, write_table

FACES_SCHEMA = SCHEMAS["faces"]
JPEG = h5py.vlen_dtype(np.uint8)
VIDEO_COLUMNS = ("video_id", "split", "label", "source", "fps", "num_frames")


def decode_crop(jpeg: np.ndarray, size: int) -> np.ndarray | None:
    """One stored crop as RGB uint8 [size, size, 3]; zeros for an empty entry (no face), None when
    the bytes are not a JPEG of that size."""
    if len(jpeg) == 0:
        return np.zeros((size, size, 3), np.uint8)
    img = cv2.imdecode(np.asarray(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != (size, size):
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FacesWriter(H5Writer):
    """Writes ``faces.h5`` under a temporary name, renamed on close (see the module doc)."""

    kind = "faces"

    def __init__(
        self,
        path: str | Path,
        fps: float,
        source: str,
        size: int = 112,
        quality: int = 90,
        overwrite: bool = False,
        **attrs: Any,
    ) -> None:
        super().__init__(path, overwrite, fps=float(fps), size=int(size), source=source, quality=int(quality), **attrs)
        self.size = int(size)
        self.f.attrs["class_names"] = json.dumps(EMOTION_CLASSES)
        self._faces = self.f.create_group("faces")

    def add_video(self, vid: str, jpegs: Sequence[np.ndarray], frames: Sequence[int], scores: Sequence[float]) -> None:
        """One video's crops: encoded JPEGs (empty arrays where no face), frame numbers, scores."""
        if not (len(jpegs) == len(frames) == len(scores)):
            raise ValueError(f"video {vid}: {len(jpegs)} crops, {len(frames)} frames, {len(scores)} scores")
        self.ensure_room(sum(int(np.asarray(j).nbytes) for j in jpegs) + 12 * len(frames))
        g = self._faces.create_group(vid)
        ds = g.create_dataset("jpeg", shape=(len(jpegs),), dtype=JPEG)
        for i, jpeg in enumerate(jpegs):
            ds[i] = np.asarray(jpeg, np.uint8).reshape(-1)
        g.create_dataset("frame", data=np.asarray(frames, np.int64).reshape(-1))
        g.create_dataset("score", data=np.asarray(scores, np.float32).reshape(-1))

    def set_videos(self, videos: pd.DataFrame) -> None:
        """The video table (:data:`VIDEO_COLUMNS`) of the videos written, and the per-video clip table."""
        missing = [c for c in VIDEO_COLUMNS if c not in videos.columns]
        if missing:
            raise ValueError(f"video table lacks columns {missing}")
        table = pd.DataFrame(
            {
                "video_id": videos["video_id"].astype(str).to_numpy(dtype=object),
                "split": videos["split"].astype(str).to_numpy(dtype=object),
                "label": videos["label"].to_numpy(np.int64),
                "source": videos["source"].astype(str).to_numpy(dtype=object),
                "fps": videos["fps"].to_numpy(np.float64),
                "num_frames": videos["num_frames"].to_numpy(np.int64),
            },
            columns=list(VIDEO_COLUMNS),
        )
        write_table(self.f.create_group("videos"), table)
        self.set_clips(video_clip_table(table))

    def finish(self) -> None:
        super().finish()
        if "videos" not in self.f:
            raise SchemaError("faces artifact written without a videos table", self.path)
        listed = set(read_table(self.f["videos"])["video_id"])
        if listed != set(self._faces):
            extra = sorted(listed ^ set(self._faces))
            raise SchemaError(f"video table and crops disagree on {len(extra)} videos, e.g. {extra[0]}", self.path)


class FacesFile(H5Artifact):
    """Reader of ``faces.h5``: ``videos`` (DataFrame, :data:`VIDEO_COLUMNS`), ``fps``, ``size``,
    ``source``, :meth:`crops`."""

    kind = "faces"

    def load(self) -> None:
        super().load()
        self.fps = float(self.f.attrs["fps"])
        self.size = int(self.f.attrs["size"])
        self.source = str(self.f.attrs["source"])
        self.videos = read_table(self.f["videos"])
        missing = [c for c in VIDEO_COLUMNS if c not in self.videos.columns]
        if missing:
            raise SchemaError(f"video table lacks columns {missing}", self.path)
        self._faces = self.f["faces"]

    @property
    def video_ids(self) -> list[str]:
        return self.videos["video_id"].astype(str).tolist()

    def _group(self, vid: str) -> h5py.Group:
        if vid not in self._faces:
            raise SchemaError(f"no crops for video {vid}", self.path)
        return self._faces[vid]

    def frames(self, vid: str) -> np.ndarray:
        return self._group(vid)["frame"][()]

    def scores(self, vid: str) -> np.ndarray:
        return self._group(vid)["score"][()]

    def crops(self, vid: str, rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(uint8 [K, size, size, 3] RGB, int64 frames [K], float32 scores [K])`` of a video (all
        crops, or those at ``rows``); frames without a face are all-zero crops with score 0."""
        g = self._group(vid)
        ds = g["jpeg"]
        idx = np.arange(ds.shape[0]) if rows is None else np.asarray(rows, np.int64)
        out = np.zeros((len(idx), self.size, self.size, 3), np.uint8)
        for k, i in enumerate(idx):
            img = decode_crop(ds[int(i)], self.size)
            if img is None:
                raise SchemaError(f"video {vid}: crop {int(i)} is not a {self.size}x{self.size} JPEG", self.path)
            out[k] = img
        return out, g["frame"][()][idx], g["score"][()][idx]
