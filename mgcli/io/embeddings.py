"""``embeddings.h5``: per video, a sequence of embedding vectors with their frame numbers.

Written by ``mg embed`` (one stream per file: ``face`` from SwinFace on ``faces.h5``, ``context``
from MViTv2-S on whole-video windows, ``gesture`` from a micro-gesture classifier's per-clip
probabilities) and read by the emotion models (``mg train-fused --model interfusion``)::

    attrs: schema mgcli.embeddings/1, stream, model, dim, weights (what was loaded), class_names
    clips/                  one row per video: clip_id = video_id, split, start 0, end (last
                            frame), label (1 win, 0 lose, -1 unknown), raw_label
    videos/                 video_id, fps (of the video: frame numbers -> seconds), num_frames
    vectors/{vid}           float16 [T, dim]
    frames/{vid}            int64 [T]: the frame each vector stands for (a window's centre)
    valid/{vid}             bool [T]: False where there was nothing to embed (no face found)

The clip table is the per-video one every artifact carries, so the one training loop, its scores
CSV (one row per video) and ``mg submit --task emotion`` need nothing special.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgcli.errors import SchemaError
from mgcli.io.h5 import H5Artifact, H5Writer, json_attr, read_table, write_table

EMOTION_CLASSES = ["lose", "win"]  # label 0 = lose (negative), 1 = win (positive)
STREAMS = ("face", "context", "gesture")


@dataclass
class VideoEmbeddings:
    video_id: str
    vectors: np.ndarray  # [T, D]
    frames: np.ndarray  # int64 [T]
    valid: np.ndarray  # bool [T]


def video_clip_table(videos: pd.DataFrame) -> pd.DataFrame:
    """The per-video clip table (``video_id, split, label, num_frames`` in) of an embeddings file."""
    n = videos["num_frames"].to_numpy(np.int64)
    label = videos["label"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "clip_id": videos["video_id"].astype(str).to_numpy(),
            "video_id": videos["video_id"].astype(str).to_numpy(),
            "split": videos["split"].astype(str).to_numpy(),
            "start": np.zeros(len(videos), np.int64),
            "end": np.maximum(n - 1, 0),
            "raw_label": label,
            "label": label,
        }
    )


class EmbeddingsWriter(H5Writer):
    """Writes one stream's ``embeddings.h5`` (temporary file, renamed on close)."""

    kind = "embeddings"

    def __init__(
        self, path: str | Path, stream: str, model: str, dim: int, overwrite: bool = False, **attrs: Any
    ) -> None:
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        super().__init__(path, overwrite, stream=stream, model=model, dim=int(dim), **attrs)
        self.dim = int(dim)
        self.f.attrs["class_names"] = json.dumps(EMOTION_CLASSES)
        self._done: list[str] = []

    def add_video(self, emb: VideoEmbeddings) -> None:
        vectors = np.asarray(emb.vectors, np.float16).reshape(-1, self.dim)
        frames = np.asarray(emb.frames, np.int64).reshape(-1)
        valid = np.asarray(emb.valid, bool).reshape(-1)
        if not (len(vectors) == len(frames) == len(valid)):
            raise ValueError(f"video {emb.video_id}: {len(vectors)} vectors, {len(frames)} frames, {len(valid)} flags")
        self.ensure_room(vectors.nbytes + frames.nbytes + valid.nbytes)
        self.f.create_dataset(f"vectors/{emb.video_id}", data=vectors)
        self.f.create_dataset(f"frames/{emb.video_id}", data=frames)
        self.f.create_dataset(f"valid/{emb.video_id}", data=valid)
        self._done.append(emb.video_id)

    def set_videos(self, videos: pd.DataFrame) -> None:
        """``videos``: video_id, split, label, fps, num_frames of the videos written (any order)."""
        videos = videos[videos["video_id"].astype(str).isin(self._done)].reset_index(drop=True)
        write_table(
            self.f.create_group("videos"),
            pd.DataFrame(
                {
                    "video_id": videos["video_id"].astype(str).to_numpy(),
                    "fps": videos["fps"].to_numpy(np.float64),
                    "num_frames": videos["num_frames"].to_numpy(np.int64),
                }
            ),
        )
        self.set_clips(video_clip_table(videos))

    def finish(self) -> None:
        super().finish()
        if "videos" not in self.f:
            raise SchemaError("embeddings artifact written without a videos table", self.path)


class EmbeddingsFile(H5Artifact):
    """Reader: ``stream``, ``dim``, ``clips`` (per video), ``fps`` by video, :meth:`video`."""

    kind = "embeddings"

    def load(self) -> None:
        super().load()
        self.stream = str(self.f.attrs["stream"])
        self.model = str(self.f.attrs.get("model", ""))
        self.dim = int(self.f.attrs["dim"])
        self.weights = str(self.f.attrs.get("weights", ""))
        videos = read_table(self.f["videos"])
        self.fps = dict(zip(videos["video_id"].astype(str), videos["fps"].astype(float), strict=True))
        self.num_frames = dict(zip(videos["video_id"].astype(str), videos["num_frames"].astype(int), strict=True))
        self.class_names = json_attr(self.f, "class_names", EMOTION_CLASSES)

    @property
    def video_ids(self) -> list[str]:
        return self.clips["video_id"].astype(str).tolist()

    def frames(self, vid: str) -> np.ndarray:
        return self.f[f"frames/{vid}"][()]

    def valid(self, vid: str) -> np.ndarray:
        return self.f[f"valid/{vid}"][()].astype(bool)

    def vectors(self, vid: str, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        ds = self.f[f"vectors/{vid}"]
        if isinstance(rows, slice):
            return ds[rows].astype(np.float32)
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            return np.zeros((0, self.dim), np.float32)
        lo, hi = int(rows.min()), int(rows.max()) + 1  # one contiguous read, then pick
        return ds[lo:hi].astype(np.float32)[rows - lo]

    def video(self, vid: str) -> VideoEmbeddings:
        return VideoEmbeddings(vid, self.vectors(vid), self.frames(vid), self.valid(vid))
