"""Skeleton sequences from poses.h5 (2s-AGCN) and paired RGB + skeleton samples (token fusion)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcli.data import view_config
from mgcli.data.paired import RGBSkeletonClips, RGBSkeletonViewConfig
from mgcli.data.skeleton import SkeletonClips, SkeletonViewConfig, mirror, normalise, skeleton_tensor
from mgcli.data.transforms import CompactConfig
from mgcli.errors import MgError
from mgcli.models.agcn import joint_to_bone
from mgcli.pose.layouts import get_layout

CFG = SkeletonViewConfig(clip_len=12, num_clips=3, layout="upper22")


def test_normalise_to_the_person_box() -> None:
    kp = np.zeros((1, 2, 3, 2), np.float32)
    kp[0, :, 0] = (100, 100)
    kp[0, :, 1] = (140, 180)  # a 40 x 80 person; joint 2 undetected
    out = normalise(kp, (480, 640), CompactConfig(padding=0.0))
    # the box is square (hw_ratio 1) around (120, 140) with half-side 40
    np.testing.assert_allclose(out[0, 0, 0], [-0.5, -1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1], [0.5, 1.0], atol=1e-6)
    assert (out[0, :, 2] == 0).all()


def test_tensor_layout_bones_and_mirror() -> None:
    layout = get_layout("upper22")
    rng = np.random.default_rng(0)
    kp = rng.uniform(-1, 1, (2, 5, 22, 2)).astype(np.float32)
    sc = rng.uniform(0.1, 1, (2, 5, 22)).astype(np.float32)
    sc[0, 0, 3] = 0  # undetected: zeroed
    x = skeleton_tensor(kp, sc, layout, "joint", num_person=3)
    assert x.shape == (3, 5, 22, 3)
    np.testing.assert_allclose(x[:2, 1, 4, 0], kp[0, 1, 4])
    assert (x[:, 0, 3, 0] == 0).all() and (x[..., 2] == 0).all()  # missing joint, padded person
    one = skeleton_tensor(kp, sc, layout, "joint", num_person=1)
    bone = skeleton_tensor(kp, sc, layout, "bone", num_person=1)
    np.testing.assert_allclose(bone, joint_to_bone(one.transpose(3, 1, 2, 0), layout).transpose(3, 1, 2, 0))
    centre = layout.center
    assert (bone[:2, :, centre] == 0).all()
    k, s = mirror(kp, sc, layout)
    left, right = layout.index("left_wrist"), layout.index("right_wrist")
    np.testing.assert_allclose(k[..., right, 0], -kp[..., left, 0])
    np.testing.assert_allclose(s[..., right], sc[..., left])


def test_skeleton_clips_train_and_test_views(train_artifacts: Path) -> None:
    path = train_artifacts / "poses.h5"
    ds = SkeletonClips(path, "train", True, CFG, seed=3)
    assert ds.data_options == {"in_channels": 3, "layout": "upper22", "num_person": 1} and ds.num_channels == 3
    x, y = ds[0]
    x = x["x"]
    assert x.shape == (3, 12, 22, 1) and x.dtype == torch.float32 and 0 <= y < 32
    detected = x[2] > 0
    assert detected.any() and x[:2][:, ~detected].abs().max() == 0  # undetected joints stay at 0
    assert x[:2][:, detected].abs().max() < 2.0  # normalised to the person box
    assert torch.equal(ds[0][0]["x"], x)  # seeded per (seed, epoch, clip)
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0]["x"], x)
    test = SkeletonClips(path, "test", False, replace(CFG, test_flip=True, stream="bone"))
    v = test[0][0]["x"]
    assert v.shape == (6, 3, 12, 22, 1)
    assert torch.equal(test[0][0]["x"], v)
    with pytest.raises(MgError, match="data.view.stream must be one of joint, bone, got 'limb'"):
        view_config("poses", {"stream": "limb"})
    with pytest.raises(MgError, match="no nope clips"):
        SkeletonClips(path, "nope", False, CFG)


def test_rgb_skeleton_pairs_and_presence(train_artifacts: Path) -> None:
    cfg = RGBSkeletonViewConfig(
        rgb_len=4, speed_ratio=2, num_clips=2, resize=64, train_size=48, test_size=48, layout="upper22"
    )
    ds = RGBSkeletonClips(train_artifacts / "frames.h5", "train", True, cfg, poses=train_artifacts / "poses.h5")
    assert ds.num_channels == {"rgb": 3, "skeleton": 3} and ds.data_options["skeleton"]["layout"] == "upper22"
    x, _ = ds[0]
    assert set(x) == {"rgb", "skeleton", "present"}
    assert x["rgb"].shape == (3, 4, 48, 48) and x["rgb"].dtype == torch.uint8
    assert x["skeleton"].shape == (3, 8, 22, 1)
    assert x["present"].tolist() == [True, True]
    test = RGBSkeletonClips(train_artifacts / "frames.h5", "test", False, cfg, poses=train_artifacts / "poses.h5")
    t, _ = test[0]
    assert t["rgb"].shape == (2, 3, 4, 48, 48) and t["skeleton"].shape == (2, 3, 8, 22, 1)
    assert t["present"].shape == (2, 2)
    # a clip whose keypoints were never detected: the skeleton is flagged absent
    cid = test.clip_ids[0]
    kp, sc = test.keypoints[cid]
    test.keypoints[cid] = (np.zeros_like(kp), np.zeros_like(sc))
    t, _ = test[0]
    assert t["present"].tolist() == [[True, False], [True, False]] and t["skeleton"].abs().max() == 0
