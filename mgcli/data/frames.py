"""RGB clips from ``frames.h5`` for training and evaluation.

Train views follow mmaction2's RGB pipeline: ``UniformSampleFrames`` (train mode),
``RandomResizedCrop`` (area 0.08-1 on full frames; pyskl's RGB branch for RGBPoseConv3D crops
0.56-1 of the person box), ``Resize`` to ``train_size`` and ``Flip``. With ``compact`` every frame
is first cut to the clip's person box (PoseCompact of its keypoints: pyskl's ``MMCompact``).
Test views: ``num_clips`` fixed frame samples, then either (``test_crop: center``) the short side
resized to ``resize_short`` and a centre crop of ``test_size``, or (``test_crop: whole``) the whole
frame (the whole person box with ``compact``) resized to ``test_size x test_size``, as pyskl tests
its RGB branch; optionally each view's mirror. Only the sampled frames are decoded (each distinct
frame once), and every resize of a sample is one ``F.interpolate`` call on uint8. Samples stay
uint8 ``[3, T, H, W]``: the model normalises on its device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from mgcli.data.base import ClipDataset
from mgcli.data.transforms import (
    CompactConfig,
    compact_box,
    crop_padded,
    random_crop_box,
    resize_frames,
    short_side_size,
    uniform_sample,
)
from mgcli.errors import MgError
from mgcli.io.frames import FramesFile

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RGBViewConfig:
    """One RGB view: frames, sizes and augmentation (defaults: mmaction2's 224-px recipes)."""

    clip_len: int = 8
    num_clips: int = 1  # test clips
    resize_short: int = 256  # test (center): short side before the centre crop
    train_size: int = 224  # train: final size after the random crop
    test_size: int = 224  # test: centre crop size, or the size the whole frame / box is resized to
    test_crop: Literal["center", "whole"] = "center"
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip_ratio: float = 0.5
    test_flip: bool = False  # test: also each clip's horizontal mirror
    compact: CompactConfig | None = None  # cut every frame to the person's box first (true: the defaults)

    @property
    def num_views(self) -> int:
        """Test views per clip."""
        return self.num_clips * (2 if self.test_flip else 1)


def person_boxes(
    poses: str | Path, clips: pd.DataFrame, frame_index: dict[str, np.ndarray], cfg: CompactConfig = CompactConfig()
) -> dict[str, np.ndarray]:
    """Each clip's PoseCompact box over its frames' keypoints, as fractions ``(x0, y0, x1, y1)`` of the
    source frame (so it applies to frames stored at any size). Clips without a usable box are left out."""
    from mgcli.io.poses import PosesFile

    boxes = {}
    with PosesFile(poses) as pf:
        for vid, group in clips.groupby("video_id", sort=False):
            if str(vid) not in pf.video_ids:
                raise MgError(f"no poses for video {vid} of the frames file", poses)
            video = pf[str(vid)]
            h, w = video.img_shape
            for cid in group["clip_id"].astype(str):
                rows = np.clip(np.asarray(frame_index[cid], np.int64), 0, video.keypoint.shape[1] - 1)
                box = compact_box(video.keypoint[:, rows], (h, w), cfg)
                if box is not None:
                    boxes[cid] = np.array([box[0] / w, box[1] / h, box[2] / w, box[3] / h], np.float64)
    return boxes


class FramesClips(ClipDataset):
    """Training / evaluation samples ``{"x": clip}`` from a ``frames.h5`` clip cache.

    ``train=True``: one random view per clip, uint8 ``[3, clip_len, train_size, train_size]``.
    ``train=False``: the fixed views ``[V, 3, clip_len, test_size, test_size]`` with ``V =
    view.num_views`` (the sampled clips, then their mirrors when ``test_flip``).
    """

    num_channels = 3
    artifact = FramesFile

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: RGBViewConfig = RGBViewConfig(),
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        super().__init__(path, split, train, view, seed)
        self.boxes: dict[str, np.ndarray] = {}
        if view.compact is not None:
            if not poses:
                raise MgError("data.view.compact needs data.poses: the poses.h5 these frames were cut with", self.path)
            with FramesFile(self.path) as fr:
                frame_index = {c: fr.frame_index(c) for c in self.clip_ids}
            self.boxes = person_boxes(poses, self.table, frame_index, view.compact)

    @property
    def data_options(self) -> dict[str, Any]:
        return {"in_channels": 3}

    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return {"x": self.train_view(self.clip_ids[i], rng)}

    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.test_views(self.clip_ids[i])}

    def _decode(self, clip_id: str, inds: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The distinct frames at ``inds`` as uint8 ``[u, 3, H, W]`` (cut to the person's box with
        ``compact``) and the map ``inds -> u``."""
        uniq, inverse = np.unique(inds, return_inverse=True)
        frames = torch.from_numpy(self.open().read(clip_id, uniq)).permute(0, 3, 1, 2)  # [u, 3, H, W] RGB
        if clip_id in self.boxes:
            frames = crop_padded(frames, self.boxes[clip_id])
        return frames, inverse.reshape(-1)

    def train_view(self, clip_id: str, rng: np.random.Generator) -> torch.Tensor:
        """One random view ``[3, clip_len, train_size, train_size]`` uint8."""
        cfg = self.view
        inds = uniform_sample(self.open().num_frames(clip_id), cfg.clip_len, 1, test=False, rng=rng)
        frames, inverse = self._decode(clip_id, inds)
        h, w = frames.shape[-2:]
        x0, y0, cw, ch = random_crop_box(h, w, rng, cfg.area_range, cfg.aspect_range)
        crop = resize_frames(frames[..., y0 : y0 + ch, x0 : x0 + cw], (cfg.train_size, cfg.train_size))
        view = crop[torch.from_numpy(inverse)]  # [clip_len, 3, s, s]
        if rng.random() < cfg.flip_ratio:
            view = view.flip(-1)
        return view.permute(1, 0, 2, 3).contiguous()

    def test_views(self, clip_id: str) -> torch.Tensor:
        """The fixed views ``[V, 3, clip_len, test_size, test_size]`` uint8."""
        cfg = self.view
        inds = uniform_sample(self.open().num_frames(clip_id), cfg.clip_len, cfg.num_clips, test=True)
        frames, inverse = self._decode(clip_id, inds)
        s = cfg.test_size
        if cfg.test_crop == "whole":
            frames = resize_frames(frames, (s, s))
        else:
            frames = resize_frames(frames, short_side_size(*frames.shape[-2:], cfg.resize_short))
            h, w = frames.shape[-2:]
            top, left = (h - s) // 2, (w - s) // 2
            if top < 0 or left < 0:
                raise MgError(
                    f"test size {s} is larger than the resized frames ({h}x{w}); raise resize_short", self.path
                )
            frames = frames[..., top : top + s, left : left + s]
        views = frames[torch.from_numpy(inverse)].reshape(cfg.num_clips, cfg.clip_len, 3, s, s)
        views = views.permute(0, 2, 1, 3, 4)  # [N, 3, T, s, s]
        if cfg.test_flip:
            views = torch.cat([views, views.flip(-1)])
        return views.contiguous()
