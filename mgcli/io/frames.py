"""``frames.h5``: the RGB clip cache, so training never seeks inside long interview mp4s.

Layout (schema ``mgcli.frames/1``)::

    attrs    schema, mgcli_version, created, short_side, quality, class_names (JSON)
    /frames/{clip_id}   variable-length uint8 [T]: one JPEG per frame of the clip, resized so the
                        short side is ``short_side`` (smaller videos are kept at their size);
                        attrs frame_index (source frame numbers)
    /clips              table: clip_id, video_id, start, end, label, split
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import h5py
import numpy as np

from mgcli.errors import SchemaError
from mgcli.io.h5 import H5Artifact, H5Writer, ensure_room, read_table

JPEG = h5py.vlen_dtype(np.uint8)


def resize_short_side(frame: np.ndarray, short_side: int, upscale: bool = False) -> np.ndarray:
    """Resize so the short side is ``short_side`` (smaller frames stay as they are unless ``upscale``)."""
    h, w = frame.shape[:2]
    scale = short_side / min(h, w)
    if abs(scale - 1.0) < 1e-6 or (scale > 1 and not upscale):
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def encode_jpeg(frame_bgr: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.reshape(-1)


def write_clip_jpegs(group: h5py.Group, clip_id: str, jpegs: Sequence[np.ndarray], frame_index: Sequence[int]) -> None:
    """One clip's JPEG frames as a variable-length dataset with its source frame numbers."""
    if len(jpegs) != len(frame_index) or not len(jpegs):
        raise ValueError(f"clip {clip_id}: {len(jpegs)} frames for {len(frame_index)} indices")
    file = Path(group.file.filename)
    ensure_room(file.parent, sum(int(j.nbytes) for j in jpegs), file)
    ds = group.create_dataset(clip_id, shape=(len(jpegs),), dtype=JPEG)
    for i, jpeg in enumerate(jpegs):
        ds[i] = jpeg
    ds.attrs["frame_index"] = np.asarray(frame_index, np.int64)


class FramesWriter(H5Writer):
    kind = "frames"

    def __init__(
        self,
        path: str | Path,
        short_side: int = 256,
        quality: int = 90,
        class_names: Sequence[str] = (),
        overwrite: bool = False,
    ) -> None:
        super().__init__(
            path, overwrite, short_side=int(short_side), quality=int(quality), class_names=list(class_names)
        )
        self.short_side, self.quality = int(short_side), int(quality)
        self._frames = self.f.create_group("frames")

    def add_clip(self, clip_id: str, frames_bgr: Sequence[np.ndarray], frame_index: Sequence[int]) -> None:
        """Store one clip's frames (BGR uint8, any size: resized to the short side here)."""
        jpegs = [encode_jpeg(resize_short_side(f, self.short_side), self.quality) for f in frames_bgr]
        self.add_encoded(clip_id, jpegs, frame_index)

    def add_encoded(self, clip_id: str, jpegs: Sequence[np.ndarray], frame_index: Sequence[int]) -> None:
        """Store one clip's already encoded JPEG frames (uint8 byte arrays)."""
        write_clip_jpegs(self._frames, clip_id, jpegs, frame_index)

    def finish(self) -> None:
        super().finish()
        missing = sorted(set(read_table(self.f["clips"])["clip_id"]) - set(self._frames))
        if missing:
            raise SchemaError(f"{len(missing)} clips of the table have no frames, e.g. {missing[0]}", self.path)


class FramesFile(H5Artifact):
    kind = "frames"

    def load(self) -> None:
        super().load()
        self.short_side = int(self.f.attrs["short_side"])
        self.quality = int(self.f.attrs["quality"])
        self._frames = self.f["frames"]

    def num_frames(self, clip_id: str) -> int:
        return int(self._dataset(clip_id).shape[0])

    def frame_index(self, clip_id: str) -> np.ndarray:
        return self._dataset(clip_id).attrs["frame_index"]

    def read(self, clip_id: str, indices: Sequence[int] | None = None) -> np.ndarray:
        """Decoded RGB frames ``[t, H, W, 3]`` uint8 (all frames, or those at ``indices``)."""
        ds = self._dataset(clip_id)
        idx = range(ds.shape[0]) if indices is None else indices
        out = []
        for i in idx:
            img = cv2.imdecode(ds[int(i)], cv2.IMREAD_COLOR)
            if img is None:
                raise SchemaError(f"clip {clip_id}: frame {i} is not a valid JPEG", self.path)
            out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        return np.stack(out)

    def _dataset(self, clip_id: str) -> h5py.Dataset:
        if clip_id not in self._frames:
            raise SchemaError(f"no clip {clip_id}", self.path)
        return self._frames[clip_id]
