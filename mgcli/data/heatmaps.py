"""PoseConv3D samples from a heatmaps artifact (``mg build-heatmaps``).

Test views read the stored volume: ``num_clips`` fixed frame samples, a centre crop, and the
flipped copy (mirror + left/right channel swap, PoseConv3D's "double"), so evaluation renders
nothing. Training views are random (frames, crop, flip) exactly as PoseConv3D draws them, so they
are rendered at load time from the stored keypoints with the vectorised
:func:`mgcli.heatmaps.generate` (about a millisecond per clip on one CPU thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgcli.data.base import ClipDataset
from mgcli.data.transforms import (
    center_crop,
    flip,
    random_resized_crop,
    resize,
    uniform_sample,
)
from mgcli.errors import MgError
from mgcli.heatmaps.render import BatchRender, generate, pack_keypoints
from mgcli.io.heatmaps import HeatmapsFile
from mgcli.pose.layouts import Layout, get_layout


@dataclass(frozen=True)
class PoseViewConfig:
    """One PoseConv3D view: frames, sizes and augmentation (defaults: the paper's pose branch)."""

    clip_len: int = 48
    num_clips: int = 10  # test views (each also flipped)
    resize_short: int = 64  # train: short side before the random crop
    train_size: int = 56  # train: final size after the crop
    test_size: int = 64  # test: centre crop size
    area_range: tuple[float, float] = (0.56, 1.0)
    flip_ratio: float = 0.5
    # Gaussian sigma of the rendered views, in pixels of the view (0: the heatmaps file's, 0.6 by
    # default: PoseConv3D's for 56-64 px views). Small views want wider blobs: at 32 px, 0.6 leaves
    # a joint about one pixel wide and real skeletons train far worse than with 1.2 (README, "Real
    # skeletons"). A sigma other than the file's renders the test views from the keypoints too.
    sigma: float = 0.0

    @property
    def num_views(self) -> int:
        return 2 * self.num_clips


def channels(layout: Layout, kind: str) -> tuple[int, np.ndarray]:
    """Number of heatmap channels and their permutation under a horizontal flip."""
    if kind == "joint":
        return layout.num_joints, layout.flip_index
    if kind == "limb":
        return len(layout.limbs), layout.limb_flip_index
    raise MgError(f"the heatmap kind must be joint or limb, not {kind!r}")


def train_view(
    keypoint: np.ndarray,
    score: np.ndarray,
    compact_shape: tuple[int, int],
    flip_index: np.ndarray,
    cfg: PoseViewConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """One random training view of compacted keypoints ``[M, T, V, 2]`` (all frames of a clip):
    sample ``clip_len`` frames, resize, random-resized-crop, resize to ``train_size``, maybe flip.
    Returns keypoints and scores ``[M, clip_len, V]`` in output pixels and the output size."""
    inds = uniform_sample(keypoint.shape[1], cfg.clip_len, 1, test=False, rng=rng)
    kp, sc = keypoint[:, inds], score[:, inds]
    kp, shape = resize(kp, compact_shape, (-1, cfg.resize_short))
    kp, shape = random_resized_crop(kp, shape, rng, cfg.area_range)
    kp, shape = resize(kp, shape, (cfg.train_size, cfg.train_size))
    if rng.random() < cfg.flip_ratio:
        kp, sc = flip(kp, sc, shape[1], flip_index)
    return kp, sc, shape


class HeatmapClips(ClipDataset):
    """Training / evaluation samples ``{"x": volume}`` from a heatmaps artifact.

    ``train=True``: one random view ``[C, clip_len, train_size, train_size]`` rendered from the
    stored keypoints. ``train=False``: ``2 * num_clips`` fixed views (each sampled clip and its
    flip) ``[2 * num_clips, C, clip_len, test_size, test_size]`` cut from the stored volume, or,
    when ``test_size`` differs from the stored size, rendered from the stored keypoints.
    """

    artifact = HeatmapsFile

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: PoseViewConfig = PoseViewConfig(),
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        super().__init__(path, split, train, view, seed)
        self.num_channels, self.channel_flip = channels(self.layout, self.kind)
        self.limbs = self.layout.limbs if self.kind == "limb" else None

    def read_meta(self, f: HeatmapsFile) -> None:
        self.kind, self.layout, self.stored_sigma, self.size = f.heatmap_kind, get_layout(f.layout), f.sigma, f.size
        self.sigma = self.view.sigma or f.sigma

    @property
    def data_options(self) -> dict[str, Any]:
        return {"in_channels": self.num_channels}

    def defer_rendering(self) -> None:
        if self.train:
            size = (self.view.train_size, self.view.train_size)
            self.deferred = {"x": BatchRender(size, self.sigma, self.kind, self.limbs)}

    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        kp, sc = self.open().keypoints(self.clip_ids[i])
        kp, sc, shape = train_view(kp, sc, self.size, self.layout.flip_index, self.view, rng)
        if self.deferred:  # data.render_on: cuda
            return {"x": pack_keypoints(kp, sc)}
        return {"x": generate(kp, sc, shape, self.sigma, kind=self.kind, limbs=self.limbs)}

    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.test_views(self.clip_ids[i])}

    def test_views(self, clip_id: str) -> torch.Tensor:
        cfg = self.view
        if cfg.test_size != self.size[0] or self.sigma != self.stored_sigma:
            return self.rendered_test_views(clip_id)
        vol = self.open().read(clip_id)  # [C, T, H, W]
        inds = uniform_sample(vol.shape[1], cfg.clip_len, cfg.num_clips, test=True)
        views = vol[:, inds].reshape(vol.shape[0], cfg.num_clips, cfg.clip_len, *vol.shape[2:])
        views = np.moveaxis(views, 1, 0)  # [N, C, T, H, W]
        s = cfg.test_size
        h, w = views.shape[-2:]
        top, left = (h - s) // 2, (w - s) // 2
        if top < 0 or left < 0:
            raise MgError(f"test size {s} is larger than the stored heatmaps ({h}x{w})", self.path)
        views = views[..., top : top + s, left : left + s]
        # PoseConv3D flips keypoints as x -> W - x (pixel centres on integers), so the flipped view
        # is the mirror shifted by one column: column j shows column W - j; column 0 shows what lay
        # just outside the right edge (nothing: the volume ends there).
        flipped = np.zeros_like(views)
        flipped[..., 1:] = views[..., :0:-1]
        flipped = flipped[:, self.channel_flip]
        return torch.from_numpy(np.ascontiguousarray(np.concatenate([views, flipped])))

    def rendered_test_views(self, clip_id: str) -> torch.Tensor:
        """Test views at a size other than the stored one, rendered from the stored keypoints as
        PoseConv3D does: fixed uniform sampling, short side resized to ``test_size``, centre crop,
        and each clip again with its keypoints flipped. ``[2 * num_clips, C, clip_len, S, S]``."""
        kp, sc = self.open().keypoints(clip_id)
        return render_test_views(kp, sc, self.size, self.layout, self.kind, self.sigma, self.view)


def render_test_views(
    kp: np.ndarray,
    sc: np.ndarray,
    size: tuple[int, int],
    layout: Layout,
    kind: str,
    sigma: float,
    cfg: PoseViewConfig,
) -> torch.Tensor:
    """PoseConv3D's test views of compacted keypoints ``[M, T, V, 2]`` on a ``size`` canvas:
    fixed uniform sampling, short side resized to ``test_size``, centre crop, and each clip again
    flipped. ``[2 * num_clips, C, clip_len, S, S]``."""
    inds = uniform_sample(kp.shape[1], cfg.clip_len, cfg.num_clips, test=True)
    s = cfg.test_size
    kp, shape = resize(kp[:, inds], size, (-1, s))
    kp, shape = center_crop(kp, shape, s)
    sc = sc[:, inds]
    limbs = layout.limbs if kind == "limb" else None
    out = []
    for k, c in ((kp, sc), flip(kp, sc, shape[1], layout.flip_index)):
        vol = generate(k, c, shape, sigma, kind=kind, limbs=limbs)  # [C, N * T, S, S]
        out.append(vol.reshape(vol.shape[0], cfg.num_clips, cfg.clip_len, *shape).transpose(0, 1))
    return torch.cat(out).contiguous()
