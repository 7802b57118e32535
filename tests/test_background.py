"""Background ("no gesture") windows for online recognition: drawn only from the gaps between
labelled clips, never overlapping one, deterministic, and trainable as one more class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.dataset.background import BACKGROUND, background_clips, draw_windows, gaps, with_background
from mgcli.errors import MgError
from mgcli.io.poses import PosesFile
from mgcli.pose.extract import ExtractOptions

runner = CliRunner()


def _table(rows: list[tuple[str, str, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"{v}_{i}", v, sp, s, e, lab, lab - 1) for i, (v, sp, s, e, lab) in enumerate(rows)],
        columns=["clip_id", "video_id", "split", "start", "end", "raw_label", "label"],
    )


def test_gaps_merge_overlapping_and_touching_clips() -> None:
    starts = np.array([50, 0, 10, 31, 70])
    ends = np.array([60, 9, 30, 40, 80])
    # 0-9 and 10-30 touch (no gap); 31-40 follows at once; 41-49 and 61-69 are free
    assert gaps(starts, ends) == [(41, 49), (61, 69)]
    # a clip inside another leaves no gap
    assert gaps(np.array([0, 5, 30]), np.array([20, 10, 40])) == [(21, 29)]
    assert gaps(np.array([3]), np.array([9])) == []


def test_draw_windows_fit_the_gaps_without_overlap() -> None:
    free = [(100, 199), (300, 309), (500, 1499)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        starts = draw_windows(free, 16, 20, rng)
        assert len(starts) == 20 and starts == sorted(starts)
        for s in starts:
            assert any(a <= s and s + 15 <= b for a, b in free), s
            assert not (300 <= s <= 309)  # too short a gap for a window
        assert np.all(np.diff(starts) >= 16)  # no two windows share a frame
    # room for exactly 6 windows of 16 in 100 frames: asking for more gives at most what fits
    got = draw_windows([(0, 99)], 16, 50, np.random.default_rng(1))
    assert 1 <= len(got) <= 6 and np.all(np.diff(got) >= 16)
    assert draw_windows([(0, 14)], 16, 3, np.random.default_rng(0)) == []


def test_background_clips_never_touch_a_labelled_clip() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for vid, split in (("0001", "train"), ("0002", "val"), ("0003", "test")):
        t = 0
        for _ in range(40):
            t += int(rng.integers(0, 120))
            length = int(rng.integers(10, 90))
            rows.append((vid, split, t, t + length - 1, int(rng.integers(1, 33))))
            t += length - int(rng.integers(0, 5))  # some clips overlap their neighbour
    table = _table(rows)
    bg = background_clips(table, per_video=25, window=32, num_classes=32)
    assert set(bg["video_id"]) == {"0001", "0002"}  # never on test videos
    assert (bg["label"] == 32).all() and (bg["raw_label"] == 0).all()
    assert (bg["end"] - bg["start"] + 1 == 32).all()
    for vid, g in bg.groupby("video_id"):
        clips = table[table["video_id"] == vid]
        for s, e in zip(g["start"], g["end"], strict=True):
            assert not ((clips["start"] <= e) & (clips["end"] >= s)).any(), (vid, s, e)
            assert clips["start"].min() < s and e < clips["end"].max()  # between gestures only
        assert list(g["clip_id"]) == [f"{vid}_bg{k}" for k in range(len(g))]
    # the draw of a video depends on the seed and its own id only
    again = background_clips(table[table["video_id"] != "0002"], per_video=25, window=32, num_classes=32)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), bg[bg["video_id"] == "0001"].reset_index(drop=True))
    other = background_clips(table, per_video=25, window=32, num_classes=32, seed=1)
    assert not other["start"].equals(bg["start"])
    merged = with_background(table, 32, 25, 32)
    assert len(merged) == len(table) + len(bg)
    assert merged.groupby("video_id")["start"].apply(lambda s: s.is_monotonic_increasing).all()


def test_extract_options_check_background() -> None:
    with pytest.raises(MgError, match="--background"):
        ExtractOptions(background=-1)
    with pytest.raises(MgError, match="--background-window"):
        ExtractOptions(background_window=1)


def test_extract_pose_background_adds_one_class(small_sample: Path, tmp_path: Path) -> None:
    poses = tmp_path / "poses.h5"
    res = runner.invoke(
        app,
        [
            "extract-pose",
            str(small_sample),
            "-o",
            str(poses),
            "--layout",
            "coco17",
            "--background",
            "3",
            "--background-window",
            "24",
        ],
    )
    assert res.exit_code == 0, res.output
    with PosesFile(poses) as pf:
        names, table = pf.class_names, pf.clips
    assert names[-1] == BACKGROUND and len(names) == 33
    bg = table[table["label"] == 32]
    assert len(bg) > 0 and set(bg["split"]) <= {"train", "val"}
    for _, r in bg.iterrows():
        clips = table[(table["video_id"] == r["video_id"]) & (table["label"] != 32)]
        assert not ((clips["start"] <= r["end"]) & (clips["end"] >= r["start"])).any()
