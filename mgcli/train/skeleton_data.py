"""Skeleton sequences for graph networks (2s-AGCN), straight from ``poses.h5``: no heatmaps.

A sample is ``[3, T, V, M]`` float32: channels (x, y, score), ``T`` uniformly sampled frames,
``V`` joints of the layout, ``M`` persons (padded with zeros). Coordinates are normalised to the
clip's person box (PoseCompact over all the clip's frames: padding 0.25, square): the box centre
is 0 and its half-side 1, so a seated person fills about [-0.8, 0.8] whatever the camera; joints
that were not detected stay at (0, 0) with score 0. The bone stream (``stream: bone``) replaces
each joint by the vector from its parent on the layout's skeleton tree (score: the mean of the
two joints'), as 2s-AGCN's second stream.

Train views (seeded per (seed, epoch, clip), as every dataset here): random uniform sampling,
a random scale and shift of the normalised coordinates, and a horizontal flip (x -> -x, left and
right joints swapped). Test views: ``num_clips`` fixed uniform samples (and their mirrors with
``test_flip``), ``[V, 3, T, V, M]``.

:class:`RGBSkeletonClips` pairs these with RGB clips for the token-fusion model: the frames and
keypoints share the crop of :class:`mgcli.train.rgbpose_data.RGBPoseClips`, and the skeleton is
normalised to that crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.heatmaps.pipeline import compact_box, flip, uniform_sample
from mgcli.io.h5 import ProcessLocalArtifact
from mgcli.io.poses import PosesFile
from mgcli.pose.layouts import Layout, convert, get_layout
from mgcli.train.rgbpose_data import PairedViewConfig, RGBPoseClips

STREAMS = ("joint", "bone")


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
    stream: str = "joint"  # joint | bone
    layout: str = ""  # convert the poses to this keypoint layout first ("": as recorded)
    num_person: int = 1
    flip_ratio: float = 0.5
    test_flip: bool = False  # test: also each clip's mirror
    scale_range: tuple[float, float] = (0.9, 1.1)  # train: random scale of the normalised coordinates
    shift: float = 0.1  # train: random shift, up to this much of the half-box
    padding: float = 0.25  # PoseCompact box used for the normalisation
    threshold: int = 10
    hw_ratio: float = 1.0

    @property
    def num_views(self) -> int:
        return self.num_clips * (2 if self.test_flip else 1)


def _check_stream(stream: str, where: Path) -> None:
    if stream not in STREAMS:
        raise MgError(f"data.view.stream must be joint or bone, not {stream!r}", where)


class SkeletonClips(ProcessLocalArtifact, torch.utils.data.Dataset):
    """Skeleton samples of one split of ``poses.h5`` (the clip table's frames of each video).

    The clips' keypoints are read (and converted to the view's layout) once, when the dataset is
    made; samples are cut from them in memory."""

    artifact = PosesFile

    def __init__(self, path: str | Path, split: str, train: bool, cfg: SkeletonViewConfig = SkeletonViewConfig(),
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(path)
        _check_stream(cfg.stream, self.path)
        if cfg.clip_len < 1 or cfg.num_clips < 1 or cfg.num_person < 1:
            raise MgError("data.view: clip_len, num_clips and num_person must be at least 1", self.path)
        self.train, self.cfg, self.seed = train, cfg, seed
        self.keypoints: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # normalised [M, T, V, 2], scores [M, T, V]
        with PosesFile(self.path) as pf:
            table = pf.clips[pf.clips["split"] == split].reset_index(drop=True)
            if table.empty:
                raise MgError(f"no {split} clips", self.path)
            self.class_names: list[str] = list(pf.class_names)
            src = pf.layout
            self.layout = get_layout(cfg.layout or src)
            for vid, group in table.groupby("video_id", sort=False):
                video = pf[str(vid)]
                for c in group.itertuples():
                    kp = video.keypoint[:, c.start : c.end + 1]
                    sc = video.keypoint_score[:, c.start : c.end + 1]
                    if kp.shape[1] != c.end - c.start + 1 or kp.shape[1] == 0:
                        raise MgError(f"clip {c.clip_id} runs past the end of video {vid}'s skeleton", self.path)
                    if self.layout.name != src:
                        kp, sc = convert(kp, sc, src, self.layout)
                    kp = np.nan_to_num(np.asarray(kp, np.float32))
                    self.keypoints[str(c.clip_id)] = (normalise(kp, video.img_shape, cfg), np.asarray(sc, np.float32))
        self.clip_ids: list[str] = table["clip_id"].astype(str).tolist()
        self.labels = table["label"].to_numpy(np.int64)
        self.num_channels = 3

    @property
    def graph(self) -> dict[str, object]:
        """What the graph network must be built for: the layout and the persons per sample."""
        return {"layout": self.layout.name, "num_person": self.cfg.num_person}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        cid = self.clip_ids[i]
        kp, sc = self.keypoints[cid]
        cfg = self.cfg
        n = kp.shape[1]
        if self.train:
            rng = np.random.default_rng([self.seed, self._epoch, i])
            inds = uniform_sample(n, cfg.clip_len, 1, test=False, rng=rng)
            k, s = kp[:, inds], sc[:, inds]
            scale = rng.uniform(*cfg.scale_range)
            shift = rng.uniform(-cfg.shift, cfg.shift, size=2).astype(np.float32)
            k = np.where((s > 0)[..., None], k * scale + shift, 0.0).astype(np.float32)
            if rng.random() < cfg.flip_ratio:
                k, s = mirror(k, s, self.layout)
            return torch.from_numpy(skeleton_tensor(k, s, self.layout, cfg.stream, cfg.num_person)), int(self.labels[i])
        inds = uniform_sample(n, cfg.clip_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
        views = []
        for flipped in (False, True) if cfg.test_flip else (False,):
            for row in inds:
                k, s = kp[:, row], sc[:, row]
                if flipped:
                    k, s = mirror(k, s, self.layout)
                views.append(skeleton_tensor(k, s, self.layout, cfg.stream, cfg.num_person))
        return torch.from_numpy(np.stack(views)), int(self.labels[i])


def normalise(kp: np.ndarray, img_shape: tuple[int, int], cfg: SkeletonViewConfig) -> np.ndarray:
    """Pixels -> the clip's person box: centre 0, half-side 1 (the whole frame when the keypoints
    span less than ``threshold`` pixels). Undetected joints (0, 0) stay (0, 0)."""
    h, w = int(img_shape[0]), int(img_shape[1])
    box = compact_box(kp, (h, w), cfg.padding, cfg.threshold, cfg.hw_ratio, True) or (0, 0, w, h)
    x0, y0, x1, y1 = (float(b) for b in box)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    half = max(x1 - x0, y1 - y0) / 2 or 1.0
    missing = (kp == 0).all(-1, keepdims=True)
    return np.where(missing, 0.0, (kp - centre) / half).astype(np.float32)


def mirror(kp: np.ndarray, sc: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip of normalised keypoints: x -> -x (PoseConv3D's flip about a zero-width
    image), left and right joints swapped."""
    return flip(kp, sc, 0, layout.flip_index)


@dataclass(frozen=True)
class RGBSkeletonViewConfig(PairedViewConfig):
    """A paired view with the pose as a skeleton sequence (the token-fusion model). Defaults: the
    MViTv2-S input (16 frames at 224 x 224, train and test alike: MViT takes one input size) and
    64 skeleton frames."""

    rgb_len: int = 16
    test_size: int = 224
    num_clips: int = 5
    stream: str = "joint"  # joint | bone
    num_person: int = 1


class RGBSkeletonClips(RGBPoseClips):
    """Paired RGB + skeleton samples: ``{"rgb": uint8 [3, T, S, S], "skeleton": [3, T_s, V, M],
    "present": [2]}`` (test: each with a leading view axis). ``present`` flags each modality: the
    skeleton is absent when no joint of the sampled frames was detected."""

    modalities = ("rgb", "skeleton")

    def check_view(self, cfg: RGBSkeletonViewConfig) -> None:  # type: ignore[override]
        _check_stream(cfg.stream, self.path)
        if cfg.num_person < 1:
            raise MgError("data.view.num_person must be at least 1", self.path)

    def setup_pose(self) -> None:
        self.num_channels = {"rgb": 3, "skeleton": 3}

    @property
    def graph(self) -> dict[str, object]:
        return {"layout": self.layout.name, "num_person": self.cfg.num_person}

    def pose_views(self, kp: np.ndarray, sc: np.ndarray, size: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Skeletons ``[C, 3, T_pose, V, M]``, normalised to the view (centre 0, half-side 1)."""
        half = size / 2
        norm = np.where((kp == 0).all(-1, keepdims=True), 0.0, (kp - half) / half).astype(np.float32)
        m, _, v, _ = kp.shape
        norm = norm.reshape(m, *shape, v, 2)
        scores = sc.reshape(m, *shape, v)
        cfg = self.cfg
        return torch.from_numpy(np.stack([
            skeleton_tensor(norm[:, c], scores[:, c], self.layout, cfg.stream, cfg.num_person) for c in range(shape[0])
        ]))  # fmt: skip

    def _with_presence(self, views: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        skel = views.pop("pose")
        seen = (skel[..., 2, :, :, :] > 0).flatten(-3).any(-1)  # per view: any joint detected
        present = torch.stack([torch.ones_like(seen), seen], dim=-1)
        return {"rgb": views["rgb"], "skeleton": skel, "present": present}

    def train_view(self, cid: str, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return self._with_presence(super().train_view(cid, rng))

    def test_views(self, cid: str) -> dict[str, torch.Tensor]:
        return self._with_presence(super().test_views(cid))
