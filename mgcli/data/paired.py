"""Paired RGB + pose samples for two-modality models: one frame cache, one skeleton file, one geometry.

The two pathways of RGBPoseConv3D are joined by lateral connections that concatenate feature maps
position by position, so both inputs must show the same piece of the image; the token-fusion
model likewise reads the skeleton in the frame of its RGB clip. :class:`PairedClips` follows
pyskl's RGBPoseConv3D pipeline and draws every geometric choice once for both modalities:

- ``MMUniformSampleFrames``: ``rgb_len`` RGB frames and ``speed_ratio * rgb_len`` pose frames,
  sampled independently and uniformly from the same clip (test mode: ``num_clips`` fixed clips);
- ``MMCompact``: the PoseCompact box of the clip's keypoints (``compact``: padding 0.25, square,
  image padding allowed), computed over all frames of the clip so it does not depend on the
  sampled frames;
- train: ``Resize`` of the box to ``resize x resize`` (aspect not kept), ``RandomResizedCrop``
  (area 0.56-1), ``Resize`` to ``train_size`` and ``Flip`` (RGB mirrored, keypoints ``x -> W - x``
  with left/right swapped), the *same* crop and flip for both modalities;
- test: the box resized to ``test_size x test_size`` (pyskl tests on the whole 256 x 256 box).

Frames come from ``frames.h5`` (``mg extract-pose --frames-out``), keypoints from the ``poses.h5``
they were extracted with (``frame_index`` links the two). The crop is computed once as a pixel
rectangle of the stored frames, and the keypoints go through exactly that rectangle, so a joint
lands where it is in the RGB clip. What the keypoints become is the subclass's choice:

- :class:`RGBPoseClips` (RGBPoseConv3D): ``GeneratePoseTarget`` heatmaps at ``scaling`` (0.25) of
  the RGB size, sigma 0.7: ``{"rgb": uint8 [3, T, S, S], "pose": float [K, speed_ratio * T, S/4, S/4]}``;
- :class:`RGBSkeletonClips` (token fusion): skeleton sequences normalised to the view,
  ``{"rgb": ..., "skeleton": [3, T_s, V, M], "present": [2]}``.

Test samples carry a leading view axis on every tensor.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mgcli.data.base import ClipDataset, clip_keypoints
from mgcli.data.skeleton import skeleton_tensor
from mgcli.data.transforms import (
    CompactConfig,
    compact_box,
    crop_padded,
    flip,
    random_crop_box,
    resize_frames,
    uniform_sample,
)
from mgcli.errors import MgError
from mgcli.heatmaps.render import BatchRender, generate, pack_keypoints
from mgcli.io.frames import FramesFile
from mgcli.pose.layouts import get_layout


@dataclass(frozen=True)
class PairedViewConfig:
    """The geometry of one paired RGB + pose view (defaults: pyskl's RGBPoseConv3D pipeline)."""

    rgb_len: int = 8  # RGB frames per clip
    speed_ratio: int = 4  # pose frames per RGB frame
    num_clips: int = 10  # test clips
    resize: int = 256  # train: the person box is resized to resize x resize before the random crop
    train_size: int = 224  # train: final RGB size
    test_size: int = 256  # test: RGB size (the whole box)
    area_range: tuple[float, float] = (0.56, 1.0)
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip_ratio: float = 0.5
    test_flip: bool = False  # test: also each clip's mirror
    layout: str = ""  # convert the poses to this keypoint layout first ("": as recorded)
    compact: CompactConfig = field(default_factory=CompactConfig)

    @property
    def pose_len(self) -> int:
        return self.rgb_len * self.speed_ratio

    @property
    def num_views(self) -> int:
        return self.num_clips * (2 if self.test_flip else 1)


def map_keypoints(kp: np.ndarray, rect: tuple[int, int, int, int], scale: tuple[float, float], size: int) -> np.ndarray:
    """Keypoints ``[..., 2]`` in source pixels -> pixels of a ``size x size`` output cut from the
    stored frames at ``rect = (x0, y0, x1, y1)`` (stored pixels; stored = source x ``scale``).
    Undetected keypoints (0, 0) stay at (0, 0)."""
    missing = (kp == 0).all(-1, keepdims=True)
    x0, y0, x1, y1 = rect
    out = np.empty_like(kp, dtype=np.float32)
    out[..., 0] = (kp[..., 0] * scale[0] - x0) * (size / (x1 - x0))
    out[..., 1] = (kp[..., 1] * scale[1] - y0) * (size / (y1 - y0))
    return np.where(missing, 0.0, out).astype(np.float32)


class PairedClips(ClipDataset):
    """Paired samples from ``frames.h5`` (RGB) and ``poses.h5`` (keypoints), one geometry for both.

    Subclasses say what the keypoints become: :meth:`pose_views` and :meth:`pack`."""

    artifact = FramesFile

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: PairedViewConfig,
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        from mgcli.io.poses import PosesFile

        if not poses or not Path(poses).is_file():
            raise MgError("a paired RGB + pose run needs data.poses: the poses.h5 these frames were cut with", path)
        super().__init__(path, split, train, view, seed)
        self.poses_path = Path(poses)
        # The clips' keypoints (small: frames x joints) and source frame sizes, read once.
        self.keypoints: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.img_shape: dict[str, tuple[int, int]] = {}
        self.boxes: dict[str, np.ndarray] = {}  # PoseCompact box (x0, y0, x1, y1), source pixels
        with PosesFile(self.poses_path) as pf:
            self.layout = get_layout(view.layout or pf.layout)
            for vid, group in self.table.groupby("video_id", sort=False):
                if str(vid) not in pf.video_ids:
                    raise MgError(f"no poses for video {vid} of the frames file", self.poses_path)
                video = pf[str(vid)]
                for cid in group["clip_id"].astype(str):
                    kp, sc = clip_keypoints(video, self.frame_index[cid], pf.layout, self.layout, cid, self.poses_path)
                    self.keypoints[cid] = (kp, sc)
                    h, w = self.img_shape[cid] = (int(video.img_shape[0]), int(video.img_shape[1]))
                    box = compact_box(kp, (h, w), view.compact)
                    self.boxes[cid] = np.asarray(box if box is not None else (0, 0, w, h), np.float64)
        del self.frame_index

    def read_meta(self, f: FramesFile) -> None:
        self.frame_index = {c: np.asarray(f.frame_index(c), np.int64) for c in self.table["clip_id"].astype(str)}

    # ------------------------------------------------------------------------------ geometry

    def _box(self, cid: str, frame_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
        """The clip's person box ``(x0, y0, x1, y1)`` in stored-frame pixels (float) and the
        source -> stored scale ``(sx, sy)``."""
        h, w = self.img_shape[cid]
        sx, sy = frame_hw[1] / w, frame_hw[0] / h
        return self.boxes[cid] * np.array([sx, sy, sx, sy]), (sx, sy)

    def views(
        self,
        cid: str,
        rgb_inds: np.ndarray,
        pose_inds: np.ndarray,
        crop: tuple[float, float, float, float],
        size: int,
        flips: tuple[bool, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of one clip that share a crop: RGB ``[V, 3, T, size, size]`` uint8 and the pose
        input of :meth:`pose_views`, for the clips ``rgb_inds [C, T]`` / ``pose_inds [C, T_pose]``
        and each flag of ``flips`` (``V = len(flips) * C``, all unflipped ones first).

        ``crop = (fx0, fy0, fx1, fy1)`` is the part of the person box to keep, in fractions of it."""
        uniq, inverse = np.unique(rgb_inds.reshape(-1), return_inverse=True)
        frames = torch.from_numpy(self.open().read(cid, uniq)).permute(0, 3, 1, 2)  # [u, 3, H, W]
        box, scale = self._box(cid, (int(frames.shape[-2]), int(frames.shape[-1])))
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0, y0 = int(round(box[0] + crop[0] * bw)), int(round(box[1] + crop[1] * bh))
        x1, y1 = int(round(box[0] + crop[2] * bw)), int(round(box[1] + crop[3] * bh))
        rect = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        h, w = frames.shape[-2:]
        cut = crop_padded(frames, np.array([rect[0] / w, rect[1] / h, rect[2] / w, rect[3] / h]))
        rgb = resize_frames(cut, (size, size))[torch.from_numpy(inverse.reshape(-1))]  # [C * T, 3, s, s]
        rgb = rgb.reshape(*rgb_inds.shape, 3, size, size).permute(0, 2, 1, 3, 4)  # [C, 3, T, s, s]
        kp, sc = self.keypoints[cid]
        kp, sc = map_keypoints(kp[:, pose_inds.reshape(-1)], rect, scale, size), sc[:, pose_inds.reshape(-1)]
        rgbs, poses = [], []
        for flipped in flips:
            k, c = flip(kp, sc, size, self.layout.flip_index) if flipped else (kp, sc)
            poses.append(self.pose_views(k, c, size, pose_inds.shape))
            rgbs.append(rgb.flip(-1) if flipped else rgb)
        return torch.cat(rgbs).contiguous(), torch.cat(poses).contiguous()

    @abc.abstractmethod
    def pose_views(self, kp: np.ndarray, sc: np.ndarray, size: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The pose input of the clips ``shape = (C, T_pose)`` from keypoints ``[M, C * T_pose, V, 2]``
        in the pixels of the ``size x size`` RGB view, with a leading clip axis."""

    @abc.abstractmethod
    def pack(self, rgb: torch.Tensor, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        """The sample's named inputs from the RGB and pose views (each with a leading view axis)."""

    # ------------------------------------------------------------------------------ samples

    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        cid, cfg = self.clip_ids[i], self.view
        n = self.open().num_frames(cid)
        rgb_inds = uniform_sample(n, cfg.rgb_len, 1, test=False, rng=rng)
        pose_inds = uniform_sample(n, cfg.pose_len, 1, test=False, rng=rng)
        x0, y0, cw, ch = random_crop_box(cfg.resize, cfg.resize, rng, cfg.area_range, cfg.aspect_range)
        r = cfg.resize
        crop = (x0 / r, y0 / r, (x0 + cw) / r, (y0 + ch) / r)
        flipped = bool(rng.random() < cfg.flip_ratio)
        rgb, pose = self.views(cid, rgb_inds[None], pose_inds[None], crop, cfg.train_size, (flipped,))
        return {k: v[0] for k, v in self.pack(rgb, pose).items()}

    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        cid, cfg = self.clip_ids[i], self.view
        n = self.open().num_frames(cid)
        rgb_inds = uniform_sample(n, cfg.rgb_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
        pose_inds = uniform_sample(n, cfg.pose_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
        flips = (False, True) if cfg.test_flip else (False,)
        return self.pack(*self.views(cid, rgb_inds, pose_inds, (0.0, 0.0, 1.0, 1.0), cfg.test_size, flips))


@dataclass(frozen=True)
class RGBPoseViewConfig(PairedViewConfig):
    """A paired view with the pose as heatmaps (RGBPoseConv3D)."""

    scaling: float = 0.25  # heatmap size / RGB size
    sigma: float = 0.7
    kind: Literal["joint", "limb"] = "joint"


class RGBPoseClips(PairedClips):
    """``{"rgb": uint8 [3, T, S, S], "pose": heatmaps [K, speed_ratio * T, S*scaling, S*scaling]}``."""

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: RGBPoseViewConfig = RGBPoseViewConfig(),
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        for name in ("train_size", "test_size"):
            if round(getattr(view, name) * view.scaling) < 1:
                raise MgError(f"data.view.{name} x scaling is below one heatmap pixel", path)
        super().__init__(path, split, train, view, seed, poses)
        self.limbs = self.layout.limbs if view.kind == "limb" else None
        pose_channels = self.layout.num_joints if view.kind == "joint" else len(self.layout.limbs)
        self.num_channels = {"rgb": 3, "pose": pose_channels}

    @property
    def data_options(self) -> dict[str, Any]:
        return {"rgb": {"in_channels": 3}, "pose": {"in_channels": self.num_channels["pose"]}}

    def defer_rendering(self) -> None:
        if self.train:
            hs = self.heatmap_size(self.view.train_size)
            self.deferred = {"pose": BatchRender((hs, hs), self.view.sigma, self.view.kind, self.limbs)}

    def heatmap_size(self, size: int) -> int:
        return max(1, int(round(size * self.view.scaling)))

    def pose_views(self, kp: np.ndarray, sc: np.ndarray, size: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Heatmaps ``[C, K, T_pose, hs, hs]`` with ``hs = size * scaling`` (with ``data.render_on:
        cuda``, the keypoints to render them from: ``[C, M, T_pose, V, 3]``, :class:`BatchRender`)."""
        hs = self.heatmap_size(size)
        if self.deferred:
            packed = pack_keypoints(kp * (hs / size), sc)  # [M, C * T_pose, V, 3]
            return packed.view(packed.shape[0], *shape, *packed.shape[2:]).transpose(0, 1)
        vol = generate(kp * (hs / size), sc, (hs, hs), self.view.sigma, kind=self.view.kind, limbs=self.limbs)
        return vol.reshape(vol.shape[0], *shape, hs, hs).transpose(0, 1)

    def pack(self, rgb: torch.Tensor, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"rgb": rgb, "pose": pose}


@dataclass(frozen=True)
class RGBSkeletonViewConfig(PairedViewConfig):
    """A paired view with the pose as a skeleton sequence (the token-fusion model). Defaults: the
    MViTv2-S input (16 frames at 224 x 224, train and test alike: MViT takes one input size) and
    64 skeleton frames."""

    rgb_len: int = 16
    test_size: int = 224
    num_clips: int = 5
    stream: Literal["joint", "bone"] = "joint"
    num_person: int = 1


class RGBSkeletonClips(PairedClips):
    """``{"rgb": uint8 [3, T, S, S], "skeleton": [3, T_s, V, M], "present": [2]}``: ``present`` flags
    each modality; the skeleton is absent when no joint of the sampled frames was detected."""

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: RGBSkeletonViewConfig = RGBSkeletonViewConfig(),
        seed: int = 0,
        poses: str | Path | None = None,
    ) -> None:
        super().__init__(path, split, train, view, seed, poses)
        self.num_channels = {"rgb": 3, "skeleton": 3}

    @property
    def data_options(self) -> dict[str, Any]:
        skeleton = {"in_channels": 3, "layout": self.layout.name, "num_person": self.view.num_person}
        return {"video": {"in_channels": 3}, "skeleton": skeleton}

    def pose_views(self, kp: np.ndarray, sc: np.ndarray, size: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Skeletons ``[C, 3, T_pose, V, M]``, normalised to the view (centre 0, half-side 1)."""
        half = size / 2
        norm = np.where((kp == 0).all(-1, keepdims=True), 0.0, (kp - half) / half).astype(np.float32)
        m, _, v, _ = kp.shape
        norm = norm.reshape(m, *shape, v, 2)
        scores = sc.reshape(m, *shape, v)
        cfg = self.view
        return torch.from_numpy(
            np.stack(
                [
                    skeleton_tensor(norm[:, c], scores[:, c], self.layout, cfg.stream, cfg.num_person)
                    for c in range(shape[0])
                ]
            )
        )

    def pack(self, rgb: torch.Tensor, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        seen = (pose[:, 2] > 0).flatten(1).any(-1)  # per view: any joint detected
        return {"rgb": rgb, "skeleton": pose, "present": torch.stack([torch.ones_like(seen), seen], dim=-1)}
