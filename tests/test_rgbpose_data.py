"""RGBPoseClips: paired RGB + heatmap views share one crop and flip, so a joint's heatmap lands
where the joint is in the frames."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from mgcli.data import view_config
from mgcli.data.paired import RGBPoseClips, RGBPoseViewConfig, map_keypoints
from mgcli.errors import MgError
from mgcli.io.frames import FramesWriter
from mgcli.io.poses import PosesWriter, VideoPoses
from mgcli.pose.layouts import get_layout

SRC_H, SRC_W, FRAMES = 120, 200, 30
MARKER = 9  # coco17 left wrist: the only joint drawn, in the pixels and in the heatmaps
CFG = RGBPoseViewConfig(
    rgb_len=4, speed_ratio=2, num_clips=2, resize=72, train_size=64, test_size=64, scaling=0.25, sigma=0.6
)


def _marker_track(t: np.ndarray, moving: bool) -> np.ndarray:
    """Marker position per frame (source pixels): fixed, or sweeping left to right."""
    x = 70.0 + (60.0 * t / (FRAMES - 1) if moving else 0.0)
    return np.stack([np.broadcast_to(x, t.shape), np.full(t.shape, 45.0)], -1)


def _write_pair(root: Path, moving: bool) -> tuple[Path, Path]:
    """A frames.h5 (stored at half size) and a poses.h5 of one clip: black frames with a white
    square at the marker joint; the other 16 joints span the person box but have score 0 (not drawn)."""
    t = np.arange(FRAMES)
    track = _marker_track(t, moving)
    rng = np.random.default_rng(0)
    kp = np.zeros((1, FRAMES, 17, 2), np.float32)
    kp[0] = rng.uniform([40, 20], [160, 100], (17, 2))[None]
    kp[0, :, 0] = [40, 20]  # box corners, so the box does not depend on the draw
    kp[0, :, 1] = [160, 100]
    kp[0, :, MARKER] = track
    score = np.zeros((1, FRAMES, 17), np.float32)
    score[0, :, MARKER] = 1.0
    frames = []
    for x, y in track:
        img = np.zeros((SRC_H, SRC_W, 3), np.uint8)
        cv2.rectangle(
            img, (int(round(x)) - 4, int(round(y)) - 4), (int(round(x)) + 4, int(round(y)) + 4), (255, 255, 255), -1
        )
        frames.append(img)
    clips = pd.DataFrame(
        {"clip_id": ["v_0"], "video_id": ["v"], "start": [0], "end": [FRAMES - 1], "label": [0], "split": ["train"]}
    )
    names = ["a", "b"]
    poses, fr = root / "poses.h5", root / "frames.h5"
    with PosesWriter(poses, "coco17", "test", names) as w:
        w.add_video(VideoPoses("v", kp, score, (SRC_H, SRC_W), 25.0, FRAMES))
        w.set_clips(clips)
    with FramesWriter(fr, short_side=60, quality=95, class_names=names) as w:
        w.add_clip("v_0", frames, list(range(FRAMES)))
        w.set_clips(clips)
    return fr, poses


def _centroid(img: torch.Tensor) -> np.ndarray:
    """(x, y) centre of mass of a 2D map, in pixel-centre coordinates."""
    m = img.double().clamp_min(0)
    ys, xs = torch.meshgrid(torch.arange(m.shape[0]), torch.arange(m.shape[1]), indexing="ij")
    return np.array([(m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()])


def _check_aligned(rgb: torch.Tensor, pose: torch.Tensor, rgb_t: int, pose_t: int, channel: int) -> None:
    """The bright square of RGB frame ``rgb_t`` and the marker heatmap of pose frame ``pose_t``
    are at the same place (RGB pixels x scaling = heatmap pixels, within 0.6 heatmap pixels)."""
    gray = rgb[:, rgb_t].float().mean(0)
    c_rgb = _centroid(torch.where(gray > 128, gray, torch.zeros_like(gray)))
    heat = pose[channel, pose_t]
    assert float(heat.max()) > 0.5
    c_heat = _centroid(torch.where(heat > 0.3, heat, torch.zeros_like(heat)))
    s = heat.shape[-1] / rgb.shape[-1]
    # pixel centres: RGB pixel j covers [j, j+1); the heatmap samples keypoint * s at integer pixels
    np.testing.assert_allclose((c_rgb + 0.5) * s, c_heat, atol=0.6)


@pytest.fixture(scope="module")
def static_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _write_pair(tmp_path_factory.mktemp("static"), moving=False)


@pytest.fixture(scope="module")
def moving_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _write_pair(tmp_path_factory.mktemp("moving"), moving=True)


def test_train_views_share_crop_and_flip(static_pair: tuple[Path, Path]) -> None:
    fr, poses = static_pair
    ds = RGBPoseClips(fr, "train", True, CFG, seed=3, poses=poses)
    flip_channel = int(get_layout("coco17").flip_index[MARKER])
    flipped_seen = unflipped_seen = 0
    for epoch in range(12):
        ds.set_epoch(epoch)
        x, label = ds[0]
        assert label == 0
        assert x["rgb"].shape == (3, 4, 64, 64) and x["rgb"].dtype == torch.uint8
        assert x["pose"].shape == (17, 8, 16, 16) and x["pose"].dtype == torch.float32
        # Exactly one channel holds the marker: its own, or its mirror partner after a flip.
        lit = [c for c in range(17) if float(x["pose"][c].max()) > 0.5]
        assert lit in ([MARKER], [flip_channel])
        flipped = lit == [flip_channel]
        flipped_seen += flipped
        unflipped_seen += not flipped
        _check_aligned(x["rgb"], x["pose"], 0, 0, lit[0])
    assert flipped_seen and unflipped_seen  # both cases were checked


def test_test_views_align_frame_by_frame(moving_pair: tuple[Path, Path]) -> None:
    fr, poses = moving_pair
    cfg = replace(CFG, speed_ratio=1, test_flip=True)  # equal lengths: both modalities sample the same frames
    ds = RGBPoseClips(fr, "train", False, cfg, poses=poses)
    x, _ = ds[0]
    assert x["rgb"].shape == (4, 3, 4, 64, 64) and x["pose"].shape == (4, 17, 4, 16, 16)
    flip_channel = int(get_layout("coco17").flip_index[MARKER])
    for v in range(4):
        channel = MARKER if v < 2 else flip_channel
        for t in range(4):
            _check_aligned(x["rgb"][v], x["pose"][v], t, t, channel)
    # The flipped views mirror the originals.
    torch.testing.assert_close(x["rgb"][2:], x["rgb"][:2].flip(-1))
    # The marker sweeps right over time in the unflipped views.
    xs = [_centroid(x["pose"][0, MARKER, t])[0] for t in range(4)]
    assert xs == sorted(xs) and xs[-1] > xs[0] + 2
    # Deterministic.
    y, _ = ds[0]
    torch.testing.assert_close(x["rgb"], y["rgb"])
    torch.testing.assert_close(x["pose"], y["pose"])


def test_train_views_reproducible_per_seed_and_epoch(static_pair: tuple[Path, Path]) -> None:
    fr, poses = static_pair
    a = RGBPoseClips(fr, "train", True, CFG, seed=1, poses=poses)
    b = RGBPoseClips(fr, "train", True, CFG, seed=1, poses=poses)
    a.set_epoch(2)
    b.set_epoch(2)
    xa, xb = a[0][0], b[0][0]
    torch.testing.assert_close(xa["rgb"], xb["rgb"])
    torch.testing.assert_close(xa["pose"], xb["pose"])
    b.set_epoch(3)
    assert not torch.equal(xa["pose"], b[0][0]["pose"])


def test_map_keypoints_keeps_missing_points() -> None:
    kp = np.array([[[10.0, 20.0], [0.0, 0.0]]], np.float32)
    out = map_keypoints(kp, (2, 4, 12, 14), (0.5, 0.5), 20)  # stored = source / 2, then a 10 x 10 cut to 20 px
    np.testing.assert_allclose(out[0, 0], [(5 - 2) * 2, (10 - 4) * 2])
    np.testing.assert_array_equal(out[0, 1], [0, 0])


def test_bad_configs_are_one_line(static_pair: tuple[Path, Path], tmp_path: Path) -> None:
    fr, poses = static_pair
    with pytest.raises(MgError, match="needs data.poses"):
        RGBPoseClips(fr, "train", True, CFG, poses="")
    with pytest.raises(MgError, match="data.view.kind must be one of joint, limb, got 'bone'"):
        view_config("rgbpose", {"kind": "bone"})
    with pytest.raises(MgError, match="no val clips"):
        RGBPoseClips(fr, "val", False, CFG, poses=poses)


def test_limb_heatmaps_and_layout_conversion(static_pair: tuple[Path, Path]) -> None:
    fr, poses = static_pair
    ds = RGBPoseClips(fr, "train", False, replace(CFG, kind="limb"), poses=poses)
    x, _ = ds[0]
    assert x["pose"].shape[1] == len(get_layout("coco17").limbs) == ds.num_channels["pose"]
