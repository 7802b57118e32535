"""Skeleton sequences for graph networks (2s-AGCN), straight from ``poses.h5``: no heatmaps.

A sample is ``{"x": [3, T, V, M]}`` float32: channels (x, y, score), ``T`` uniformly sampled
frames, ``V`` joints of the layout, ``M`` persons (padded with zeros). Coordinates are normalised
(``norm``) one of two ways; joints that were not detected stay at (0, 0) with score 0:

- ``box``: to the clip's person box (PoseCompact over all the clip's frames: padding 0.25,
  square): the box centre is 0 and its half-side 1, so a seated person fills about [-0.8, 0.8]
  whatever the camera. Where the person is in the box is kept (walking, leaning).
- ``centre`` (the default): every frame centred on the mid-point of the shoulders, divided by the
  clip's median shoulder width, so one unit is one shoulder width whatever the camera distance
  and the body's drift. On real skeletons of people who move about (dbcsp AR.data, see
  ``tests/benchmarks/real``) this is worth 6 to 10 points of top-1 over ``box``; on a layout
  without shoulders, or a clip where they are never seen, it falls back to ``box``. The bone stream (``stream: bone``)
replaces each joint by the vector from its parent on the layout's skeleton tree (score: the mean of
the two joints'), as 2s-AGCN's second stream.

Train views: random uniform sampling, a random scale and shift of the normalised coordinates, and
a horizontal flip (x -> -x, left and right joints swapped). Test views: ``num_clips`` fixed uniform
samples (and their mirrors with ``test_flip``), ``[V, 3, T, V, M]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mgcli.data.base import ClipDataset, clip_keypoints
from mgcli.data.transforms import CompactConfig, compact_box, flip, uniform_sample
from mgcli.io.poses import PosesFile, VideoPoses
from mgcli.pose.layouts import Layout, get_layout


def skeleton_tensor(kp: np.ndarray, sc: np.ndarray, layout: Layout, stream: str, num_person: int) -> np.ndarray:
    """Normalised keypoints ``[M, T, V, 2]`` and scores ``[M, T, V]`` -> ``[3, T, V, num_person]``
    (undetected joints zeroed; persons beyond ``num_person`` dropped, missing ones zero)."""
    from mgcli.models.agcn import joint_to_bone

    m, t, v = sc.shape
    x = np.zeros((num_person, t, v, 3), np.float32)
    k = min(m, num_person)
    seen = sc[:k] > 0
    x[:k, ..., :2] = np.where(seen[..., None], kp[:k], 0.0)
    x[:k, ..., 2] = np.where(seen, sc[:k], 0.0)
    if stream == "bone":
        x = joint_to_bone(x, layout)
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0))  # [3, T, V, M]


@dataclass(frozen=True)
class SkeletonViewConfig:
    """One skeleton view for a graph network."""

    clip_len: int = 64  # frames per sample
    num_clips: int = 10  # test clips
    stream: Literal["joint", "bone"] = "joint"
    layout: str = ""  # convert the poses to this keypoint layout first ("": as recorded)
    num_person: int = 1
    flip_ratio: float = 0.5
    test_flip: bool = False  # test: also each clip's mirror
    scale_range: tuple[float, float] = (0.9, 1.1)  # train: random scale of the normalised coordinates
    shift: float = 0.1  # train: random shift, up to this much of the half-box
    norm: Literal["centre", "box"] = "centre"  # coordinates: shoulder-centred and -scaled, or the clip's box
    compact: CompactConfig = field(default_factory=CompactConfig)  # norm box: the box

    @property
    def num_views(self) -> int:
        return self.num_clips * (2 if self.test_flip else 1)


def normalise(kp: np.ndarray, img_shape: tuple[int, int], cfg: CompactConfig = CompactConfig()) -> np.ndarray:
    """Pixels -> the clip's person box: centre 0, half-side 1 (the whole frame when the keypoints
    span less than ``cfg.threshold`` pixels). Undetected joints (0, 0) stay (0, 0)."""
    h, w = int(img_shape[0]), int(img_shape[1])
    box = compact_box(kp, (h, w), cfg) or (0, 0, w, h)
    x0, y0, x1, y1 = (float(b) for b in box)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    half = max(x1 - x0, y1 - y0) / 2 or 1.0
    missing = (kp == 0).all(-1, keepdims=True)
    return np.where(missing, 0.0, (kp - centre) / half).astype(np.float32)


def centre_scale(
    kp: np.ndarray, img_shape: tuple[int, int], layout: Layout, cfg: CompactConfig = CompactConfig()
) -> np.ndarray:
    """Pixels ``[M, T, V, 2]`` -> per frame and person, centred on the mid-point of the shoulders
    and divided by the person's median shoulder width over the clip. Frames where a shoulder is
    missing use the person's mean centre; a person (or layout) without both shoulders ever seen
    falls back to :func:`normalise`. Undetected joints (0, 0) stay (0, 0)."""
    names = set(layout.joints)
    if not {"left_shoulder", "right_shoulder"} <= names:
        return normalise(kp, img_shape, cfg)
    ls, rs = kp[:, :, layout.index("left_shoulder")], kp[:, :, layout.index("right_shoulder")]
    seen = (ls != 0).any(-1) & (rs != 0).any(-1)  # [M, T]
    out = normalise(kp, img_shape, cfg)
    missing = (kp == 0).all(-1, keepdims=True)
    for m in range(kp.shape[0]):
        if not seen[m].any():
            continue
        width = float(np.median(np.linalg.norm(ls[m, seen[m]] - rs[m, seen[m]], axis=-1)))
        if width < 1e-3:
            continue
        mid = (ls[m] + rs[m]) / 2  # [T, 2]
        mid[~seen[m]] = mid[seen[m]].mean(0)
        out[m] = np.where(missing[m], 0.0, (kp[m] - mid[:, None]) / width)
    return out.astype(np.float32)


def mirror(kp: np.ndarray, sc: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip of normalised keypoints: x -> -x (PoseConv3D's flip about a zero-width
    image), left and right joints swapped."""
    return flip(kp, sc, 0, layout.flip_index)


class SkeletonClips(ClipDataset):
    """Skeleton samples of one split of ``poses.h5`` (the clip table's frames of each video).

    The clips' keypoints are read (and converted to the view's layout) once, when the dataset is
    made; samples are cut from them in memory."""

    artifact = PosesFile
    num_channels = 3

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: SkeletonViewConfig = SkeletonViewConfig(),
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        super().__init__(path, split, train, view, seed)
        self.keypoints: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # normalised [M, T, V, 2], scores [M, T, V]
        with PosesFile(self.path) as pf:
            self.layout = get_layout(view.layout or pf.layout)
            for vid, group in self.table.groupby("video_id", sort=False):
                video = pf[str(vid)]
                for c in group.itertuples():
                    cid = str(c.clip_id)
                    self.keypoints[cid] = clip_skeleton(
                        video, c.start, c.end, pf.layout, self.layout, view, cid, self.path
                    )

    @property
    def data_options(self) -> dict[str, Any]:
        return {"in_channels": 3, "layout": self.layout.name, "num_person": self.view.num_person}

    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        kp, sc = self.keypoints[self.clip_ids[i]]
        cfg = self.view
        inds = uniform_sample(kp.shape[1], cfg.clip_len, 1, test=False, rng=rng)
        k, s = kp[:, inds], sc[:, inds]
        scale = rng.uniform(*cfg.scale_range)
        shift = rng.uniform(-cfg.shift, cfg.shift, size=2).astype(np.float32)
        k = np.where((s > 0)[..., None], k * scale + shift, 0.0).astype(np.float32)
        if rng.random() < cfg.flip_ratio:
            k, s = mirror(k, s, self.layout)
        return {"x": torch.from_numpy(skeleton_tensor(k, s, self.layout, cfg.stream, cfg.num_person))}

    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        kp, sc = self.keypoints[self.clip_ids[i]]
        return {"x": skeleton_test_views(kp, sc, self.layout, self.view)}


def clip_skeleton(
    video: VideoPoses,
    start: int,
    end: int,
    src_layout: str,
    layout: Layout,
    view: SkeletonViewConfig,
    clip_id: str,
    where: str | Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``start..end`` (inclusive) of ``video`` in ``layout``, normalised as the view says:
    keypoints ``[M, T, V, 2]`` and scores ``[M, T, V]`` (a clip of a release, or a window of
    ``mg detect``)."""
    kp, sc = clip_keypoints(video, slice(start, end + 1), src_layout, layout, clip_id, where)
    if view.norm == "centre":
        kp = centre_scale(kp, video.img_shape, layout, view.compact)
    else:
        kp = normalise(kp, video.img_shape, view.compact)
    return kp, sc


def skeleton_test_views(kp: np.ndarray, sc: np.ndarray, layout: Layout, cfg: SkeletonViewConfig) -> torch.Tensor:
    """The fixed test views of a normalised clip: ``num_clips`` uniform samples (and their mirror
    images with ``test_flip``), ``[N, C, T, V, M]``."""
    inds = uniform_sample(kp.shape[1], cfg.clip_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
    views = []
    for flipped in (False, True) if cfg.test_flip else (False,):
        for row in inds:
            k, s = kp[:, row], sc[:, row]
            if flipped:
                k, s = mirror(k, s, layout)
            views.append(skeleton_tensor(k, s, layout, cfg.stream, cfg.num_person))
    return torch.from_numpy(np.stack(views))
