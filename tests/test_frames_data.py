"""FramesClips: RGB train/test views from frames.h5 (shapes, reproducibility, flips, workers)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcli.data.frames import FramesClips, RGBViewConfig
from mgcli.data.transforms import random_crop_box, short_side_size, uniform_sample
from mgcli.errors import MgError
from mgcli.io import FramesFile
from mgcli.pose.extract import ExtractOptions, extract_pose

CFG = RGBViewConfig(clip_len=6, num_clips=2, resize_short=48, train_size=40, test_size=40)


@pytest.fixture(scope="module")
def frames_h5(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """frames.h5 of the small sample (64-px short side: frames are 64 x 107)."""
    d = tmp_path_factory.mktemp("frames")
    opts = ExtractOptions(layout="upper22", frames_out=d / "frames.h5", frame_size=64)
    assert not extract_pose(small_sample, d / "poses.h5", opts).failed
    return d / "frames.h5"


def test_train_sample_shape_and_labels(frames_h5: Path) -> None:
    ds = FramesClips(frames_h5, "train", train=True, view=CFG)
    with FramesFile(frames_h5) as fr:
        table = fr.clips[fr.clips["split"] == "train"]
        assert ds.clip_ids == table["clip_id"].tolist()
        np.testing.assert_array_equal(ds.labels, table["label"].to_numpy())
        assert ds.class_names == fr.class_names
    assert ds.labels.dtype == np.int64 and ds.num_channels == 3 and len(ds) == 4
    x, y = ds[1]
    x = x["x"]
    assert x.dtype == torch.uint8 and x.shape == (3, 6, 40, 40) and x.is_contiguous()
    assert y == ds.labels[1]
    assert x.float().std() > 5  # real image content, not a constant


def test_train_reproducible_per_seed_epoch_index(frames_h5: Path) -> None:
    a = FramesClips(frames_h5, "train", train=True, view=CFG, seed=3)
    b = FramesClips(frames_h5, "train", train=True, view=CFG, seed=3)
    b.set_epoch(1)
    b.set_epoch(0)
    for i in range(len(a)):
        assert torch.equal(a[i][0]["x"], b[i][0]["x"])
    b.set_epoch(1)
    assert not torch.equal(a[0][0]["x"], b[0][0]["x"])
    c = FramesClips(frames_h5, "train", train=True, view=CFG, seed=4)
    assert not torch.equal(a[0][0]["x"], c[0][0]["x"])


def test_train_flip_mirrors(frames_h5: Path) -> None:
    # Area 1 at aspect 1 never fits a 64x107 frame: always the centre 64x64 square, no crop draws.
    fixed = replace(CFG, area_range=(1.0, 1.0), aspect_range=(1.0, 1.0), train_size=64)
    plain = FramesClips(frames_h5, "train", train=True, view=replace(fixed, flip_ratio=0.0))
    flipped = FramesClips(frames_h5, "train", train=True, view=replace(fixed, flip_ratio=1.0))
    for i in range(len(plain)):
        a, b = plain[i][0]["x"], flipped[i][0]["x"]
        assert not torch.equal(a, b)
        assert torch.equal(a, b.flip(-1))
    # The centre square of exactly the sampled frames (64 px: no resampling at all).
    with FramesFile(frames_h5) as fr:
        cid = plain.clip_ids[2]
        inds = uniform_sample(fr.num_frames(cid), fixed.clip_len, 1, rng=np.random.default_rng([0, 0, 2]))
        frames = fr.read(cid, inds)[:, :, 21:85]  # (107 - 64) // 2 = 21
    np.testing.assert_array_equal(plain[2][0]["x"].numpy(), frames.transpose(3, 0, 1, 2))


def test_random_crop_box() -> None:
    rng = np.random.default_rng(0)
    boxes = np.array([random_crop_box(64, 107, rng) for _ in range(300)])
    x0, y0, cw, ch = boxes.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + cw <= 107).all() and (y0 + ch <= 64).all()
    area = cw * ch / (64 * 107)
    # 0.08-1 of the area, as far as it fits: at most 64 x 85 (area 0.8) in a 64 x 107 frame.
    assert 0.07 < area.min() < 0.15 and 0.6 < area.max() <= 0.8
    ratio = cw / ch
    assert ratio.min() > 0.7 and ratio.max() < 1.4
    assert random_crop_box(64, 107, rng, (1, 1), (1, 1)) == (21, 0, 64, 64)  # fallback: centre square


def test_test_views_shape_and_determinism(frames_h5: Path) -> None:
    ds = FramesClips(frames_h5, "val", train=False, view=CFG)
    v, y = ds[0]
    v = v["x"]
    assert v.dtype == torch.uint8 and v.shape == (2, 3, 6, 40, 40) and y == ds.labels[0]
    ds.set_epoch(5)
    assert torch.equal(FramesClips(frames_h5, "val", train=False, view=CFG)[0][0]["x"], v)
    assert torch.equal(ds[0][0]["x"], v)
    assert not torch.equal(v[0], v[1])  # two different frame samples
    # 1 clip, no resize (resize_short = stored short side): exactly the centre crop of the frames.
    one = FramesClips(frames_h5, "val", train=False, view=replace(CFG, num_clips=1, resize_short=64))
    cid = one.clip_ids[0]
    with FramesFile(frames_h5) as fr:
        frames = fr.read(cid, uniform_sample(fr.num_frames(cid), 6, 1, test=True))
    crop = frames[:, 12:52, 33:73]  # (64 - 40) // 2, (107 - 40) // 2
    np.testing.assert_array_equal(one[0][0]["x"][0].numpy(), crop.transpose(3, 0, 1, 2))


def test_test_flip_views_mirror_the_originals(frames_h5: Path) -> None:
    base = FramesClips(frames_h5, "test", train=False, view=CFG)
    ds = FramesClips(frames_h5, "test", train=False, view=replace(CFG, test_flip=True))
    assert ds.num_views == 4
    v = ds[3][0]["x"]
    assert v.shape == (4, 3, 6, 40, 40)
    assert torch.equal(v[:2], base[3][0]["x"])
    assert torch.equal(v[2:], v[:2].flip(-1)) and not torch.equal(v[2:], v[:2])


def test_short_side_size() -> None:
    assert short_side_size(64, 107, 48) == (48, 80)
    assert short_side_size(256, 455, 256) == (256, 455)
    assert short_side_size(300, 200, 100) == (150, 100)


def test_test_size_larger_than_frames(frames_h5: Path) -> None:
    ds = FramesClips(frames_h5, "val", train=False, view=replace(CFG, resize_short=32))
    with pytest.raises(MgError, match="larger than the resized frames"):
        ds[0]


@pytest.mark.parametrize("train", [True, False])
def test_dataloader_workers_match_single_process(frames_h5: Path, train: bool) -> None:
    def batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ds = FramesClips(frames_h5, "train", train=train, view=CFG, seed=1)
        ds.set_epoch(2)
        dl = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers)
        out = list(dl)
        assert workers == 0 or ds._file is None  # the parent never opened the file
        return out

    single, multi = batches(0), batches(2)
    assert len(single) == len(multi) == 2
    for (xa, ya), (xb, yb) in zip(single, multi, strict=True):
        assert torch.equal(xa["x"], xb["x"]) and torch.equal(ya, yb)
    assert single[0][0]["x"].shape == ((2, 3, 6, 40, 40) if train else (2, 2, 3, 6, 40, 40))


def test_handle_reopened_per_process(frames_h5: Path) -> None:
    ds = FramesClips(frames_h5, "train", train=True, view=CFG)
    ds[0]  # opens a handle in this process
    assert ds._file is not None
    state = ds.__getstate__()
    assert state["_file"] is None
    ds._pid = -1  # as a forked worker would see it
    old = ds._file
    ds[0]
    assert ds._file is not old
    old.close()
    ds.close()
    assert ds._file is None


def test_empty_split(frames_h5: Path) -> None:
    with pytest.raises(MgError, match="no holdout clips"):
        FramesClips(frames_h5, "holdout", train=True)


def test_compact_crops_frames_to_the_person(train_artifacts: Path) -> None:
    """RGBPoseConv3D's MMCompact: frames cut to the clip's PoseCompact box before the augmentation."""
    from mgcli.data.transforms import CompactConfig, compact_box, crop_padded
    from mgcli.io.poses import PosesFile

    cfg = RGBViewConfig(clip_len=4, num_clips=1, resize_short=48, test_size=48, train_size=48, compact=CompactConfig())
    with pytest.raises(MgError, match="needs data.poses"):
        FramesClips(train_artifacts / "frames.h5", "test", False, cfg)
    ds = FramesClips(train_artifacts / "frames.h5", "test", False, cfg, poses=train_artifacts / "poses.h5")
    cid = ds.clip_ids[0]
    with FramesFile(train_artifacts / "frames.h5") as fr, PosesFile(train_artifacts / "poses.h5") as pf:
        row = fr.clips.set_index("clip_id").loc[cid]
        video = pf[str(row["video_id"])]
        kp = video.keypoint[:, fr.frame_index(cid)]
        x0, y0, x1, y1 = compact_box(kp, video.img_shape, CompactConfig(0.25, 10, 1.0))
        h, w = video.img_shape
        assert ds.boxes[cid] == pytest.approx([x0 / w, y0 / h, x1 / w, y1 / h])
        assert x1 - x0 == y1 - y0 or abs((x1 - x0) - (y1 - y0)) <= 1  # square (hw_ratio 1)
    views = ds[0][0]["x"]
    assert views.shape == (1, 3, 4, 48, 48)
    # padding outside the frame is black; the inside is the frame's pixels
    frames = torch.arange(2 * 3 * 4 * 6, dtype=torch.uint8).reshape(2, 3, 4, 6)
    out = crop_padded(frames, np.array([-1 / 6, 0.25, 0.5, 1.25]))
    assert out.shape == (2, 3, 4, 4)
    assert not out[..., :, 0].any() and not out[..., 3, :].any()
    assert torch.equal(out[..., :3, 1:], frames[..., 1:4, 0:3])


def test_whole_box_test_view_resizes_the_person_box(train_artifacts: Path) -> None:
    """pyskl's RGB branch tests on the whole person box resized to the test size (no centre crop)."""
    from mgcli.data.transforms import CompactConfig, crop_padded, resize_frames

    cfg = RGBViewConfig(clip_len=4, num_clips=1, test_size=48, test_crop="whole", compact=CompactConfig())
    ds = FramesClips(train_artifacts / "frames.h5", "test", False, cfg, poses=train_artifacts / "poses.h5")
    cid = ds.clip_ids[0]
    view = ds[0][0]["x"]
    assert view.shape == (1, 3, 4, 48, 48)
    with FramesFile(train_artifacts / "frames.h5") as fr:
        inds = uniform_sample(fr.num_frames(cid), 4, 1, test=True)
        frames = torch.from_numpy(fr.read(cid, inds)).permute(0, 3, 1, 2)
    whole = resize_frames(crop_padded(frames, ds.boxes[cid]), (48, 48))  # all of the box, aspect kept (square)
    assert torch.equal(view[0], whole.permute(1, 0, 2, 3))
    centre = FramesClips(
        train_artifacts / "frames.h5",
        "test",
        False,
        RGBViewConfig(clip_len=4, num_clips=1, resize_short=64, test_size=48, compact=CompactConfig()),
        poses=train_artifacts / "poses.h5",
    )
    assert not torch.equal(centre[0][0]["x"], view)  # the centre crop cuts the box's border off
