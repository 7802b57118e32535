"""``heatmaps-*.h5``: PoseConv3D joint or limb heatmap volumes, one per clip.

Layout (schema ``mgcli.heatmaps/1``)::

    attrs    schema, mgcli_version, created, kind (joint | limb), layout, sigma, size (H, W),
             sampling (JSON: how frames were chosen), dtype (uint8 | float16), class_names (JSON)
    /heatmaps/{clip_id}   [C, T, H, W], one chunk per clip, gzip-compressed
    /keypoints/{clip_id}  float32 [M, T, V, 2]: the clip's keypoints after PoseCompact, in the pixels
                          of the stored size x size canvas (all frames, all persons; lzf)
    /scores/{clip_id}     float32 [M, T, V]: their confidences (lzf)
    /clips                table: clip_id, video_id, start, end, label, split

The volume of every clip frame is stored for the fixed test views; random training views are
rendered at load time from ``/keypoints`` and ``/scores`` (``mgcli.data.heatmaps``).

Values lie in [0, 1]. ``uint8`` stores ``round(255 v)``: the error after reading is at most
1/510 ~ 0.002 per voxel; ``float16`` keeps about three significant digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgcli.errors import SchemaError
from mgcli.io.h5 import H5Artifact, H5Writer, json_attr

KINDS = ("joint", "limb")
DTYPES = ("uint8", "float16")


def quantise(volume: np.ndarray, dtype: str) -> np.ndarray:
    v = np.clip(np.asarray(volume, np.float32), 0.0, 1.0)
    return np.rint(v * 255.0).astype(np.uint8) if dtype == "uint8" else v.astype(np.float16)


def dequantise(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / 255.0 if stored.dtype == np.uint8 else stored.astype(np.float32)


class HeatmapsWriter(H5Writer):
    kind = "heatmaps"

    def __init__(
        self,
        path: str | Path,
        kind: str,
        layout: str,
        sigma: float,
        size: tuple[int, int],
        sampling: dict[str, Any],
        dtype: str = "uint8",
        class_names: Sequence[str] = (),
        overwrite: bool = False,
    ) -> None:
        if kind not in KINDS or dtype not in DTYPES:
            raise ValueError(f"kind must be one of {KINDS} and dtype one of {DTYPES}")
        super().__init__(
            path,
            overwrite,
            kind=kind,
            layout=layout,
            sigma=float(sigma),
            size=np.asarray(size, np.int64),
            sampling=sampling,
            dtype=dtype,
            class_names=list(class_names),
        )
        self.dtype = dtype
        self._maps = self.f.create_group("heatmaps")

    def add(
        self, clip_id: str, volume: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, label: int, split: str
    ) -> None:
        """One clip: its volume ``[C, T, H, W]`` and the keypoints ``[M, T, V, 2]`` / scores
        ``[M, T, V]`` it was rendered from (canvas pixels)."""
        if volume.ndim != 4:
            raise ValueError(f"clip {clip_id}: volume must be [C, T, H, W], got {volume.shape}")
        if keypoints.shape[:-1] != scores.shape or keypoints.shape[1] != volume.shape[1]:
            raise ValueError(
                f"clip {clip_id}: keypoints {keypoints.shape} and scores {scores.shape} do not fit "
                f"a volume of {volume.shape[1]} frames"
            )
        data = quantise(volume, self.dtype)
        self.ensure_room(data.nbytes + keypoints.nbytes + scores.nbytes)
        ds = self._maps.create_dataset(clip_id, data=data, chunks=data.shape, compression="gzip", compression_opts=4)
        ds.attrs["label"], ds.attrs["split"] = int(label), split
        self.f.create_dataset(f"keypoints/{clip_id}", data=np.asarray(keypoints, np.float32), compression="lzf")
        self.f.create_dataset(f"scores/{clip_id}", data=np.asarray(scores, np.float32), compression="lzf")


class HeatmapsFile(H5Artifact):
    kind = "heatmaps"

    def load(self) -> None:
        super().load()
        a = self.f.attrs
        self.heatmap_kind = str(a["kind"])
        self.layout = str(a["layout"])
        self.sigma = float(a["sigma"])
        self.size = tuple(int(x) for x in a["size"])
        self.sampling: dict[str, Any] = json_attr(self.f, "sampling", {})
        self.dtype = str(a["dtype"])
        if self.heatmap_kind not in KINDS:
            raise SchemaError(f"unknown heatmap kind {self.heatmap_kind!r}", self.path)
        self._maps = self.f["heatmaps"]

    def read(self, clip_id: str) -> np.ndarray:
        """The clip's volume ``[C, T, H, W]`` as float32 in [0, 1]."""
        if clip_id not in self._maps:
            raise SchemaError(f"no clip {clip_id}", self.path)
        return dequantise(self._maps[clip_id][()])

    def keypoints(self, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The clip's stored keypoints ``[M, T, V, 2]`` (canvas pixels) and scores ``[M, T, V]``."""
        if clip_id not in self._maps:
            raise SchemaError(f"no clip {clip_id}", self.path)
        return self.f[f"keypoints/{clip_id}"][()], self.f[f"scores/{clip_id}"][()]

    def shape(self, clip_id: str) -> tuple[int, ...]:
        return tuple(self._maps[clip_id].shape)
