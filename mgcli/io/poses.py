"""``poses.h5``: skeletons per video plus the clip table.

Layout (schema ``mgcli.poses/1``)::

    attrs    schema, mgcli_version, created, layout (keypoint layout name), source,
             class_names (JSON list)
    /videos/{vid}/keypoint        float32 [M, T, V, 2]  pixels, M persons, T frames, V joints
    /videos/{vid}/keypoint_score  float32 [M, T, V]
              attrs img_shape (H, W), fps, total_frames, path
    /clips    table: clip_id, video_id, start, end (inclusive), label (-1 unknown), split, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgcli.errors import SchemaError
from mgcli.io.h5 import H5Artifact, H5Writer


@dataclass
class VideoPoses:
    video_id: str
    keypoint: np.ndarray  # [M, T, V, 2] float32
    keypoint_score: np.ndarray  # [M, T, V] float32
    img_shape: tuple[int, int]
    fps: float
    total_frames: int
    path: str = ""

    def __post_init__(self) -> None:
        kp, sc = self.keypoint, self.keypoint_score
        if kp.ndim != 4 or kp.shape[-1] != 2:
            raise ValueError(f"keypoint must be [M, T, V, 2], got {kp.shape}")
        if sc.shape != kp.shape[:3]:
            raise ValueError(f"keypoint_score must be {kp.shape[:3]}, got {sc.shape}")


class PosesWriter(H5Writer):
    """``with PosesWriter(path, layout, source, class_names) as w: w.add_video(...); w.set_clips(df)``."""

    kind = "poses"

    def __init__(
        self, path: str | Path, layout: str, source: str, class_names: list[str], overwrite: bool = False
    ) -> None:
        super().__init__(path, overwrite, layout=layout, source=source, class_names=list(class_names))
        self._videos = self.f.create_group("videos")

    def add_video(self, poses: VideoPoses) -> None:
        self.ensure_room(poses.keypoint.nbytes + poses.keypoint_score.nbytes)
        g = self._videos.create_group(poses.video_id)
        m, t, v, _ = poses.keypoint.shape
        chunk_t = max(1, min(t, 1024))
        g.create_dataset(
            "keypoint", data=poses.keypoint.astype(np.float32), chunks=(m, chunk_t, v, 2), compression="lzf"
        )
        g.create_dataset(
            "keypoint_score", data=poses.keypoint_score.astype(np.float32), chunks=(m, chunk_t, v), compression="lzf"
        )
        g.attrs["img_shape"] = np.asarray(poses.img_shape, np.int64)
        g.attrs["fps"] = float(poses.fps)
        g.attrs["total_frames"] = int(poses.total_frames)
        g.attrs["path"] = poses.path


class PosesFile(H5Artifact):
    """Read a ``poses.h5`` (schema checked on open)."""

    kind = "poses"

    def load(self) -> None:
        self.layout = str(self.f.attrs["layout"])
        self.source = str(self.f.attrs["source"])
        super().load()
        self.f["videos"]  # noqa: B018 - presence check, raises KeyError

    @property
    def video_ids(self) -> list[str]:
        return sorted(self.f["videos"].keys())

    def __getitem__(self, vid: str) -> VideoPoses:
        if vid not in self.f["videos"]:
            raise SchemaError(f"no video {vid}", self.path)
        g = self.f["videos"][vid]
        return VideoPoses(
            video_id=vid,
            keypoint=g["keypoint"][()],
            keypoint_score=g["keypoint_score"][()],
            img_shape=tuple(int(x) for x in g.attrs["img_shape"]),
            fps=float(g.attrs["fps"]),
            total_frames=int(g.attrs["total_frames"]),
            path=str(g.attrs.get("path", "")),
        )

    def video_shape(self, vid: str) -> tuple[int, ...]:
        return tuple(self.f["videos"][vid]["keypoint"].shape)
