"""The PoseConv3D pose pipeline on keypoints, the build-heatmaps stage and its loader."""

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.data.heatmaps import PoseViewConfig
from mgcli.data.transforms import (
    CompactConfig,
    center_crop,
    flip,
    pose_compact,
    random_resized_crop,
    resize,
    uniform_sample,
)
from mgcli.io import HeatmapsFile
from mgcli.pose.layouts import get_layout

runner = CliRunner()


@pytest.mark.parametrize("num_frames", [5, 48, 60, 100, 1000])
def test_uniform_sampling(num_frames: int) -> None:
    a = uniform_sample(num_frames, 48, num_clips=10, test=True)
    assert a.shape == (480,) and a.min() >= 0 and a.max() < num_frames
    np.testing.assert_array_equal(a, uniform_sample(num_frames, 48, num_clips=10, test=True))
    r1 = uniform_sample(num_frames, 48, rng=np.random.default_rng(1))
    r2 = uniform_sample(num_frames, 48, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(r1, r2)
    if num_frames >= 48:
        assert (np.diff(r1) >= 0).all()  # in order, one per segment
    if num_frames >= 96:
        seg = np.arange(49) * num_frames // 48
        assert ((r1 >= seg[:-1]) & (r1 < seg[1:])).all()


def _box_kp() -> np.ndarray:
    kp = np.zeros((1, 3, 2, 2), np.float32)
    kp[0, :, 0], kp[0, :, 1] = (10, 20), (50, 40)  # tight box 40 wide, 20 high
    return kp


@pytest.mark.parametrize(
    ("padding", "hw_ratio", "shape"),
    [(0.0, None, (20, 40)), (0.0, 1.0, (40, 40)), (0.3, 1.0, (52, 52)), (0.0, 0.75, (30, 40)), (0.25, None, (25, 50))],
)
def test_pose_compact_box(padding: float, hw_ratio: float | None, shape: tuple[int, int]) -> None:
    kp, new_shape = pose_compact(_box_kp(), (100, 100), CompactConfig(padding=padding, hw_ratio=hw_ratio))
    assert new_shape == shape
    # the box is centred on the keypoints
    np.testing.assert_allclose(kp[0, 0].mean(0), (shape[1] / 2, shape[0] / 2), atol=1)


def test_pose_compact_leaves_small_or_empty_clips() -> None:
    kp = np.zeros((1, 2, 2, 2), np.float32)
    kp[0, :, 1] = (3, 3)
    kp[0, :, 0] = (1, 1)
    out, shape = pose_compact(kp, (100, 80))
    assert shape == (100, 80) and np.array_equal(out, kp)


def test_flip_and_crops() -> None:
    coco = get_layout("coco17")
    kp = np.random.default_rng(0).uniform(1, 50, (1, 2, 17, 2)).astype(np.float32)
    kp[0, 0, 3] = 0  # missing joints stay at zero
    sc = np.arange(34, dtype=np.float32).reshape(1, 2, 17)
    fk, fs = flip(kp, sc, 56, coco.flip_index)
    np.testing.assert_allclose(fk[0, 1, 1, 0], 56 - kp[0, 1, 2, 0])  # left eye <- mirrored right eye
    assert fs[0, 0, 1] == sc[0, 0, 2] and fk[0, 0, 4, 0] == 0
    ck, shape = center_crop(kp, (64, 80), 56)
    assert shape == (56, 56)
    np.testing.assert_allclose(ck, kp - np.array([12, 4], np.float32))
    rk, (h, w) = random_resized_crop(kp, (64, 64), np.random.default_rng(3))
    assert 0.56 * 64 * 64 * 0.95 <= h * w <= 64 * 64 and 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
    shift = kp - rk
    assert np.allclose(shift, shift[0, 0, 0])  # a crop is a translation
    sk, shape = resize(kp, (32, 64), (-1, 64))
    assert shape == (64, 128) and np.allclose(sk, kp * 2)


@pytest.fixture(scope="module")
def heatmaps(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mgcli.heatmaps.build import BuildOptions, build_heatmaps
    from mgcli.pose.extract import ExtractOptions, extract_pose

    d = tmp_path_factory.mktemp("hm")
    extract_pose(small_sample, d / "poses.h5", ExtractOptions(layout="coco17"))
    build_heatmaps(d / "poses.h5", d / "hm.h5", BuildOptions(kind="joint", size=64))
    return d


def test_built_volumes_match_a_fresh_render(heatmaps: Path) -> None:
    from mgcli.heatmaps import generate
    from mgcli.io import PosesFile

    with HeatmapsFile(heatmaps / "hm.h5") as hm, PosesFile(heatmaps / "poses.h5") as p:
        assert hm.heatmap_kind == "joint" and hm.layout == "coco17" and hm.size == (64, 64)
        assert len(hm.clips) == len(p.clips)
        c = hm.clips.iloc[3]
        vol = hm.read(c.clip_id)
        assert vol.shape == (17, c.end - c.start + 1, 64, 64)
        kp, sc = hm.keypoints(c.clip_id)
        again = generate(kp, sc, (64, 64), 0.6).numpy()
        assert np.abs(vol - again).max() <= 1 / 510 + 1e-6
        assert vol.max() > 0.5  # the person is in there


def test_loader_views(heatmaps: Path) -> None:
    from mgcli.data.heatmaps import HeatmapClips

    cfg = PoseViewConfig(clip_len=16, num_clips=2)
    test = HeatmapClips(heatmaps / "hm.h5", "test", train=False, view=cfg)
    x, label = test[0]
    x = x["x"]
    assert x.shape == (4, 17, 16, 64, 64) and label >= 0
    coco = get_layout("coco17")
    # "double": mirrored as keypoints flip (x -> W - x, a one-column shift), L/R swapped
    torch.testing.assert_close(x[2][..., 1:], x[0].flip(-1)[coco.flip_index][..., :-1])
    assert not x[2][..., 0].any()
    # the views cut from the stored volume equal the ones rendered from its keypoints
    rendered = test.rendered_test_views(test.clip_ids[0])
    assert rendered.shape == x.shape
    assert (x - rendered)[:2].abs().max() <= 1 / 510 + 1e-6
    # flipped views: equal up to where the +-3 sigma window cuts the gaussian (exp(-4.5) = 0.011),
    # which falls on other pixels once mirrored
    assert (x - rendered)[2:].abs().max() <= 0.012
    # another test size renders from the keypoints (PoseConv3D: resize short side, centre crop)
    small = HeatmapClips(
        heatmaps / "hm.h5", "test", train=False, view=PoseViewConfig(clip_len=16, num_clips=2, test_size=48)
    )
    y, _ = small[0]
    y = y["x"]
    assert y.shape == (4, 17, 16, 48, 48) and y.max() > 0.5
    train = HeatmapClips(heatmaps / "hm.h5", "train", train=True, view=cfg, seed=1)
    a, _ = train[0]
    a = a["x"]
    b, _ = train[0]
    b = b["x"]
    assert a.shape == (17, 16, 56, 56) and a.max() > 0.3
    torch.testing.assert_close(a, b)  # same seed, epoch and index: same view
    train.set_epoch(1)
    c, _ = train[0]
    c = c["x"]
    assert not torch.equal(a, c)  # a new epoch draws a new view


def test_cli_build_and_preview(heatmaps: Path) -> None:
    out = heatmaps / "limb.h5"
    r = runner.invoke(app, ["--quiet", "build-heatmaps", str(heatmaps / "poses.h5"), "--kind", "limb", "-o", str(out)])
    assert r.exit_code == 0, r.output
    with HeatmapsFile(out) as hm:
        cid = hm.clips["clip_id"].iloc[0]
        assert hm.read(cid).shape[0] == len(get_layout("coco17").limbs)
    png = heatmaps / "preview.png"
    r = runner.invoke(app, ["build-heatmaps", str(out), "--preview", cid, "-o", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    up = heatmaps / "upper.h5"
    r = runner.invoke(
        app, ["--quiet", "build-heatmaps", str(heatmaps / "poses.h5"), "--layout", "upper22", "-o", str(up)]
    )
    assert r.exit_code == 0, r.output
    with HeatmapsFile(up) as hm:
        assert hm.layout == "upper22" and hm.read(cid).shape[0] == 22
    r = runner.invoke(
        app, ["build-heatmaps", str(heatmaps / "poses.h5"), "--kind", "bones", "-o", str(heatmaps / "x.h5")]
    )
    assert r.exit_code == 2 and "--kind must be joint or limb" in r.stderr
    assert not (heatmaps / "x.h5").exists()
