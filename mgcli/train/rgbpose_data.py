"""Paired RGB + pose samples for RGBPoseConv3D: one frame cache, one skeleton file, one geometry.

The two pathways are joined by lateral connections that concatenate feature maps position by
position, so both inputs must show the same piece of the image. This dataset follows pyskl's
RGBPoseConv3D pipeline and draws every geometric choice once for both modalities:

- ``MMUniformSampleFrames``: ``rgb_len`` RGB frames and ``speed_ratio * rgb_len`` pose frames,
  sampled independently and uniformly from the same clip (test mode: ``num_clips`` fixed clips);
- ``MMCompact``: the PoseCompact box of the clip's keypoints (padding 0.25, square, image padding
  allowed), computed over all frames of the clip so it does not depend on the sampled frames;
- train: ``Resize`` of the box to ``resize x resize`` (aspect not kept), ``RandomResizedCrop``
  (area 0.56-1), ``Resize`` to ``train_size`` and ``Flip`` (RGB mirrored, keypoints ``x -> W - x``
  with left/right swapped), the *same* crop and flip for both modalities;
- test: the box resized to ``test_size x test_size`` (pyskl tests on the whole 256 x 256 box);
- ``GeneratePoseTarget`` with ``scaling`` (0.25): heatmaps at a quarter of the RGB size, sigma 0.7.

Frames come from ``frames.h5`` (``mg extract-pose --frames-out``), keypoints from the ``poses.h5``
they were extracted with (``frame_index`` links the two). The crop is computed once as a pixel
rectangle of the stored frames, and the keypoints go through exactly that rectangle, so the
heatmap of a joint lands where the joint is in the RGB clip. Samples are
``({"rgb": uint8 [3, T, S, S], "pose": float [K, speed_ratio * T, S/4, S/4]}, label)`` (test:
each with a leading view axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.heatmaps.pipeline import compact_box, flip, uniform_sample
from mgcli.heatmaps.render import generate
from mgcli.io.frames import FramesFile
from mgcli.io.h5 import ProcessLocalArtifact
from mgcli.pose.layouts import convert, get_layout
from mgcli.train.frames_data import crop_padded, random_crop_box, resize_frames


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
    padding: float = 0.25  # PoseCompact
    threshold: int = 10
    hw_ratio: float = 1.0

    @property
    def pose_len(self) -> int:
        return self.rgb_len * self.speed_ratio

    @property
    def num_views(self) -> int:
        return self.num_clips * (2 if self.test_flip else 1)


@dataclass(frozen=True)
class RGBPoseViewConfig(PairedViewConfig):
    """A paired view with the pose as heatmaps (RGBPoseConv3D)."""

    scaling: float = 0.25  # heatmap size / RGB size
    sigma: float = 0.7
    kind: str = "joint"  # joint | limb heatmaps


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


class RGBPoseClips(ProcessLocalArtifact, torch.utils.data.Dataset):
    """Paired samples from ``frames.h5`` (RGB) and ``poses.h5`` (keypoints), one geometry for both.

    ``train=True``: one random view, ``rng = default_rng([seed, epoch, i])``. ``train=False``:
    ``cfg.num_views`` fixed views per clip. Each DataLoader worker opens its own HDF5 handles.
    """

    artifact = FramesFile
    modalities = ("rgb", "pose")

    def __init__(
        self, path: str | Path, poses: str | Path, split: str, train: bool,
        cfg: RGBPoseViewConfig = RGBPoseViewConfig(), seed: int = 0,
    ) -> None:  # fmt: skip
        from mgcli.io.poses import PosesFile

        super().__init__(path)
        if cfg.rgb_len < 1 or cfg.speed_ratio < 1 or cfg.num_clips < 1:
            raise MgError("data.view: rgb_len, speed_ratio and num_clips must be at least 1", path)
        if not poses or not Path(poses).is_file():
            raise MgError("a paired RGB + pose run needs data.poses: the poses.h5 these frames were cut with", path)
        self.check_view(cfg)
        with FramesFile(self.path) as fr:
            table = fr.clips[fr.clips["split"] == split].reset_index(drop=True)
            self.class_names: list[str] = list(fr.class_names)
            frame_index = {c: np.asarray(fr.frame_index(c), np.int64) for c in table["clip_id"].astype(str)}
        if table.empty:
            raise MgError(f"no {split} clips", self.path)
        self.clip_ids: list[str] = table["clip_id"].astype(str).tolist()
        self.labels = table["label"].to_numpy(np.int64)
        self.train, self.cfg, self.seed = train, cfg, seed
        self.poses_path = Path(poses)

        # The clips' keypoints (small: frames x joints) and source frame sizes, read once.
        self.keypoints: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.img_shape: dict[str, tuple[int, int]] = {}
        self.boxes: dict[str, np.ndarray] = {}  # PoseCompact box (x0, y0, x1, y1), source pixels
        with PosesFile(self.poses_path) as pf:
            src_layout = pf.layout
            self.layout = get_layout(cfg.layout or src_layout)
            for vid, group in table.groupby("video_id", sort=False):
                if str(vid) not in pf.video_ids:
                    raise MgError(f"no poses for video {vid} of the frames file", self.poses_path)
                video = pf[str(vid)]
                n = video.keypoint.shape[1]
                for cid in group["clip_id"].astype(str):
                    rows = frame_index[cid]
                    if rows.size == 0 or rows.max() >= n:
                        raise MgError(f"clip {cid} runs past the end of video {vid}'s skeleton", self.poses_path)
                    kp, sc = video.keypoint[:, rows], video.keypoint_score[:, rows]
                    if self.layout.name != src_layout:
                        kp, sc = convert(kp, sc, src_layout, self.layout)
                    self.keypoints[cid] = (np.nan_to_num(kp.astype(np.float32)), sc.astype(np.float32))
                    h, w = self.img_shape[cid] = (int(video.img_shape[0]), int(video.img_shape[1]))
                    box = compact_box(self.keypoints[cid][0], (h, w), cfg.padding, cfg.threshold, cfg.hw_ratio, True)
                    self.boxes[cid] = np.asarray(box if box is not None else (0, 0, w, h), np.float64)
        self.setup_pose()

    def check_view(self, cfg: RGBPoseViewConfig) -> None:
        if cfg.kind not in ("joint", "limb"):
            raise MgError(f"data.view.kind must be joint or limb, not {cfg.kind!r}", self.path)
        for name in ("train_size", "test_size"):
            if round(getattr(cfg, name) * cfg.scaling) < 1:
                raise MgError(f"data.view.{name} x scaling is below one heatmap pixel", self.path)

    def setup_pose(self) -> None:
        """What the pose side needs once the layout is known (here: heatmap channels)."""
        self.limbs = self.layout.limbs if self.cfg.kind == "limb" else None
        self.num_channels = {"rgb": 3, "pose": self.layout.num_joints if self.cfg.kind == "joint" else len(self.layout.limbs)}

    # ------------------------------------------------------------------------------ geometry

    def _box(self, cid: str, frame_hw: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
        """The clip's person box ``(x0, y0, x1, y1)`` in stored-frame pixels (float) and the
        source -> stored scale ``(sx, sy)``."""
        h, w = self.img_shape[cid]
        sx, sy = frame_hw[1] / w, frame_hw[0] / h
        return self.boxes[cid] * np.array([sx, sy, sx, sy]), (sx, sy)

    def _read(self, cid: str, inds: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The distinct frames at ``inds`` as uint8 ``[u, 3, H, W]`` and the map ``inds -> u``."""
        uniq, inverse = np.unique(inds, return_inverse=True)
        frames = torch.from_numpy(self.open().read(cid, uniq)).permute(0, 3, 1, 2)
        return frames, inverse.reshape(-1)

    def views(self, cid: str, rgb_inds: np.ndarray, pose_inds: np.ndarray, crop: tuple[float, float, float, float],
              size: int, flips: tuple[bool, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of one clip that share a crop: RGB ``[V, 3, T, size, size]`` uint8 and heatmaps
        ``[V, K, T_pose, size*s, size*s]``, for the clips ``rgb_inds [C, T]`` / ``pose_inds [C, T_pose]``
        and each flag of ``flips`` (``V = len(flips) * C``, all unflipped ones first).

        ``crop = (fx0, fy0, fx1, fy1)`` is the part of the person box to keep, in fractions of it."""
        frames, inverse = self._read(cid, rgb_inds.reshape(-1))
        box, scale = self._box(cid, (int(frames.shape[-2]), int(frames.shape[-1])))
        bw, bh = box[2] - box[0], box[3] - box[1]
        x0, y0 = int(round(box[0] + crop[0] * bw)), int(round(box[1] + crop[1] * bh))
        x1, y1 = int(round(box[0] + crop[2] * bw)), int(round(box[1] + crop[3] * bh))
        rect = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        h, w = frames.shape[-2:]
        cut = crop_padded(frames, np.array([rect[0] / w, rect[1] / h, rect[2] / w, rect[3] / h]))
        rgb = resize_frames(cut, (size, size))[torch.from_numpy(inverse)]  # [C * T, 3, s, s]
        rgb = rgb.reshape(*rgb_inds.shape, 3, size, size).permute(0, 2, 1, 3, 4)  # [C, 3, T, s, s]
        kp, sc = self.keypoints[cid]
        kp, sc = map_keypoints(kp[:, pose_inds.reshape(-1)], rect, scale, size), sc[:, pose_inds.reshape(-1)]
        rgbs, poses = [], []
        for flipped in flips:
            k, c = flip(kp, sc, size, self.layout.flip_index) if flipped else (kp, sc)
            poses.append(self.pose_views(k, c, size, pose_inds.shape))
            rgbs.append(rgb.flip(-1) if flipped else rgb)
        return torch.cat(rgbs).contiguous(), torch.cat(poses).contiguous()

    def pose_views(self, kp: np.ndarray, sc: np.ndarray, size: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The pose input of the clips ``shape = (C, T_pose)`` from keypoints ``[M, C * T_pose, V, 2]``
        in the pixels of the ``size x size`` RGB view: heatmaps ``[C, K, T_pose, hs, hs]``."""
        hs = max(1, int(round(size * self.cfg.scaling)))
        vol = generate(kp * (hs / size), sc, (hs, hs), self.cfg.sigma, kind=self.cfg.kind, limbs=self.limbs)
        return vol.reshape(vol.shape[0], *shape, hs, hs).transpose(0, 1)

    # ------------------------------------------------------------------------------ samples

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        cid = self.clip_ids[i]
        if self.train:
            return self.train_view(cid, np.random.default_rng([self.seed, self._epoch, i])), int(self.labels[i])
        return self.test_views(cid), int(self.labels[i])

    def train_view(self, cid: str, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One random view: ``{"rgb": [3, T, S, S], "pose": [K, T_pose, S/4, S/4]}``."""
        cfg = self.cfg
        n = self.open().num_frames(cid)
        rgb_inds = uniform_sample(n, cfg.rgb_len, 1, test=False, rng=rng)
        pose_inds = uniform_sample(n, cfg.pose_len, 1, test=False, rng=rng)
        x0, y0, cw, ch = random_crop_box(cfg.resize, cfg.resize, rng, cfg.area_range, cfg.aspect_range)
        r = cfg.resize
        crop = (x0 / r, y0 / r, (x0 + cw) / r, (y0 + ch) / r)
        flipped = bool(rng.random() < cfg.flip_ratio)
        rgb, pose = self.views(cid, rgb_inds[None], pose_inds[None], crop, cfg.train_size, (flipped,))
        return {"rgb": rgb[0], "pose": pose[0]}

    def test_views(self, cid: str) -> dict[str, torch.Tensor]:
        """The fixed views ``{"rgb": [V, 3, T, S, S], "pose": [V, K, T_pose, S/4, S/4]}``."""
        cfg = self.cfg
        n = self.open().num_frames(cid)
        rgb_inds = uniform_sample(n, cfg.rgb_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
        pose_inds = uniform_sample(n, cfg.pose_len, cfg.num_clips, test=True).reshape(cfg.num_clips, -1)
        flips = (False, True) if cfg.test_flip else (False,)
        rgb, pose = self.views(cid, rgb_inds, pose_inds, (0.0, 0.0, 1.0, 1.0), cfg.test_size, flips)
        return {"rgb": rgb, "pose": pose}
