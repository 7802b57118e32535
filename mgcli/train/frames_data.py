"""RGB clips from ``frames.h5`` for training and evaluation: the RGB twin of :class:`HeatmapClips`.

Train views follow mmaction2's RGB pipeline: ``UniformSampleFrames`` (train mode),
``RandomResizedCrop`` (area 0.08-1, aspect 3/4-4/3, 10 attempts, else a centre square),
``Resize`` to ``train_size`` and ``Flip``. Test views: ``num_clips`` fixed frame samples, short side
resized to ``resize_short``, a centre crop of ``test_size`` and optionally each view's mirror.
Only the sampled frames are decoded (each distinct frame once), and every resize of a sample is
one ``F.interpolate`` call on uint8. Samples stay uint8 ``[3, T, H, W]``: the model normalises on
its device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from mgcli.errors import MgError
from mgcli.heatmaps.pipeline import uniform_sample
from mgcli.io.frames import FramesFile
from mgcli.io.h5 import ProcessLocalArtifact

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RGBViewConfig:
    """One RGB view: frames, sizes and augmentation (defaults: mmaction2's 224-px recipes)."""

    clip_len: int = 8
    num_clips: int = 1  # test clips
    resize_short: int = 256  # test: short side before the centre crop
    train_size: int = 224  # train: final size after the random crop
    test_size: int = 224  # test: centre crop size
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip_ratio: float = 0.5
    test_flip: bool = False  # test: also each clip's horizontal mirror
    compact: bool = False  # crop every frame to the person's box first (RGBPoseConv3D's MMCompact)
    compact_padding: float = 0.25  # box growth around the clip's keypoints (square, image padding allowed)

    @property
    def num_views(self) -> int:
        """Test views per clip."""
        return self.num_clips * (2 if self.test_flip else 1)


def random_crop_box(
    h: int,
    w: int,
    rng: np.random.Generator,
    area_range: tuple[float, float] = (0.08, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
    max_attempts: int = 10,
) -> tuple[int, int, int, int]:
    """mmaction2's RandomResizedCrop box ``(x0, y0, crop_w, crop_h)`` in an ``h x w`` image: up to
    ``max_attempts`` draws of area fraction and log-uniform aspect ratio, else a centre square."""
    ratios = np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1]), max_attempts))
    areas = rng.uniform(*area_range, max_attempts) * h * w
    crop_w = np.round(np.sqrt(areas * ratios)).astype(np.int64)
    crop_h = np.round(np.sqrt(areas / ratios)).astype(np.int64)
    for cw, ch in zip(crop_w, crop_h, strict=True):
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), int(cw), int(ch)
    side = min(h, w)
    return (w - side) // 2, (h - side) // 2, side, side


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of uint8 ``[t, 3, H, W]`` to ``size = (h, w)`` (antialiased when shrinking)."""
    h, w = frames.shape[-2:]
    if (h, w) == tuple(size):
        return frames
    shrink = size[0] < h or size[1] < w
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """``(h, w)`` with the short side scaled to ``short``, aspect kept (mmaction2 rounding)."""
    f = short / min(h, w)
    return int(h * f + 0.5), int(w * f + 0.5)


def person_boxes(
    poses: str | Path, clips: pd.DataFrame, frame_index: dict[str, np.ndarray], padding: float = 0.25
) -> dict[str, np.ndarray]:
    """Each clip's PoseCompact box over its frames' keypoints, as fractions ``(x0, y0, x1, y1)`` of the
    source frame (so it applies to frames stored at any size). Clips without a usable box are left out."""
    from mgcli.heatmaps.pipeline import compact_box
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
                box = compact_box(video.keypoint[:, rows], (h, w), padding, 10, 1.0, True)
                if box is not None:
                    boxes[cid] = np.array([box[0] / w, box[1] / h, box[2] / w, box[3] / h], np.float64)
    return boxes


def crop_padded(frames: torch.Tensor, box: np.ndarray) -> torch.Tensor:
    """``frames [u, 3, H, W]`` cut to ``box`` (fractions of the frame), zero-padded where the box
    reaches outside the frame."""
    h, w = frames.shape[-2:]
    x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    pad = (max(0, -x0), max(0, x1 - w), max(0, -y0), max(0, y1 - h))
    if any(pad):
        frames = F.pad(frames, pad)
        x0, x1, y0, y1 = x0 + pad[0], x1 + pad[0], y0 + pad[2], y1 + pad[2]
    return frames[..., y0:y1, x0:x1]


class FramesClips(ProcessLocalArtifact, torch.utils.data.Dataset):
    """Training / evaluation samples from a ``frames.h5`` clip cache.

    ``train=True``: one random view per clip, uint8 ``[3, clip_len, train_size, train_size]``,
    drawn only from ``np.random.default_rng([seed, epoch, i])``. ``train=False``: the fixed views
    ``[V, 3, clip_len, test_size, test_size]`` with ``V = cfg.num_views`` (the sampled clips, then
    their mirrors when ``test_flip``). Each DataLoader worker opens its own HDF5 handle.
    """

    num_channels = 3
    artifact = FramesFile

    def __init__(
        self, path: str | Path, split: str, train: bool, cfg: RGBViewConfig = RGBViewConfig(), seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:  # fmt: skip
        super().__init__(path)
        with FramesFile(self.path) as fr:
            table = fr.clips[fr.clips["split"] == split].reset_index(drop=True)
            self.class_names: list[str] = list(fr.class_names)
            frame_index = {c: fr.frame_index(c) for c in table["clip_id"].astype(str)} if cfg.compact else {}
        if table.empty:
            raise MgError(f"no {split} clips", self.path)
        self.clip_ids: list[str] = table["clip_id"].astype(str).tolist()
        self.labels = table["label"].to_numpy(np.int64)
        self.train, self.cfg, self.seed = train, cfg, seed
        self.boxes: dict[str, np.ndarray] = {}
        if cfg.compact:
            if not poses:
                raise MgError("data.view.compact needs data.poses: the poses.h5 these frames were cut with", self.path)
            self.boxes = person_boxes(poses, table, frame_index, cfg.compact_padding)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        cid = self.clip_ids[i]
        if self.train:
            return self.train_view(cid, np.random.default_rng([self.seed, self._epoch, i])), int(self.labels[i])
        return self.test_views(cid), int(self.labels[i])

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
        cfg = self.cfg
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
        cfg = self.cfg
        inds = uniform_sample(self.open().num_frames(clip_id), cfg.clip_len, cfg.num_clips, test=True)
        frames, inverse = self._decode(clip_id, inds)
        frames = resize_frames(frames, short_side_size(*frames.shape[-2:], cfg.resize_short))
        s = cfg.test_size
        h, w = frames.shape[-2:]
        top, left = (h - s) // 2, (w - s) // 2
        if top < 0 or left < 0:
            raise MgError(f"test size {s} is larger than the resized frames ({h}x{w}); raise resize_short", self.path)
        frames = frames[..., top : top + s, left : left + s]
        views = frames[torch.from_numpy(inverse)].reshape(cfg.num_clips, cfg.clip_len, 3, s, s)
        views = views.permute(0, 2, 1, 3, 4)  # [N, 3, T, s, s]
        if cfg.test_flip:
            views = torch.cat([views, views.flip(-1)])
        return views.contiguous()
