"""The synthetic sample: release layout, consistency between files, determinism."""

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from conftest import SMALL_SAMPLE_ARGS
from mgcli.cli import app
from mgcli.dataset import synth
from mgcli.dataset.formats import LIGHT_HAND_FROM_OPENPOSE, read_light_hand_csv, read_openpose_xlsx
from mgcli.dataset.release import Release
from mgcli.dataset.sample import SampleConfig, confusable_ceiling, generate_sample

SMALL = SampleConfig(**SMALL_SAMPLE_ARGS)


def test_release_layout(small_sample: Path) -> None:
    names = sorted(p.relative_to(small_sample).as_posix() for p in small_sample.rglob("*") if p.is_file())
    assert names == [
        "README.md",
        "imigue_skeleton_test/0003/0003_label.csv",
        "imigue_skeleton_test/0003/0003_light_hand.csv",
        "imigue_skeleton_test/0003/0003_openpose.xlsx",
        "imigue_skeleton_train/0001/0001_label.csv",
        "imigue_skeleton_train/0001/0001_light_hand.csv",
        "imigue_skeleton_train/0001/0001_openpose.xlsx",
        "imigue_skeleton_validate/0002/0002_label.csv",
        "imigue_skeleton_validate/0002/0002_light_hand.csv",
        "imigue_skeleton_validate/0002/0002_openpose.xlsx",
        "sample.json",
        "test_data/0003/0003.mp4",
        "test_data/0003/0003_label.csv",
        "test_labels.csv",
        "train_data/0001/0001.mp4",
        "train_data/0001/0001_label.csv",
        "validation_data/0002/0002.mp4",
        "validation_data/0002/0002_label.csv",
    ]
    assert not [p for p in small_sample.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_reader_on_the_sample(small_sample: Path) -> None:
    rel = Release(small_sample)
    rel.require("video")
    rel.require("skeleton")
    clips = rel.clips()  # also checks every clip ends inside its video
    assert len(clips) == 12 and set(clips["split"]) == {"train", "val", "test"}
    assert set(clips["label"]) <= set(synth.SAMPLE_LABELS)  # test_labels.csv was picked up
    dummy = (small_sample / "imigue_skeleton_test/0003/0003_label.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in dummy} == {"1"}  # test label files carry a dummy class
    info = rel.video_info("0001")
    assert (info.height, info.width, info.fps) == (96, 160, 25.0)


def test_skeleton_files_agree_with_each_other_and_the_video(small_sample: Path) -> None:
    rel = Release(small_sample)
    for vid, e in rel.videos.items():
        xlsx = read_openpose_xlsx(e.openpose_xlsx)
        frames, lh = read_light_hand_csv(e.light_hand_csv)
        assert len(xlsx) == rel.video_info(vid).frames == len(frames)
        np.testing.assert_allclose(lh, xlsx[:, list(LIGHT_HAND_FROM_OPENPOSE)], atol=1e-3)
        body = xlsx[:, :25]
        visible = body[..., 2] > 0
        assert visible.mean() > 0.4  # upper body mostly detected
        assert (body[visible][:, 0] <= 160).all() and (body[visible][:, 1] <= 96).all()
        assert (xlsx[..., 2] == 0).any()  # some dropped joints, as OpenPose gives


def test_same_seed_same_data_whatever_the_workers(small_sample: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_sample(again, SMALL, workers=2)
    for rel in (
        "imigue_skeleton_train/0001/0001_light_hand.csv",
        "imigue_skeleton_test/0003/0003_label.csv",
        "test_labels.csv",
        "sample.json",
    ):
        assert (again / rel).read_bytes() == (small_sample / rel).read_bytes(), rel
    other = tmp_path / "other"
    generate_sample(other, SampleConfig(**{**SMALL.__dict__, "seed": 8}), workers=1)
    assert (other / "test_labels.csv").read_bytes() != (small_sample / "test_labels.csv").read_bytes() or (
        (other / "imigue_skeleton_train/0001/0001_light_hand.csv").read_bytes()
        != (small_sample / "imigue_skeleton_train/0001/0001_light_hand.csv").read_bytes()
    )


def test_appearance_pair_has_identical_keypoints() -> None:
    a, b = synth.APPEARANCE_PAIRS[0]
    out = {}
    for label in (a, b):
        rng = np.random.default_rng(3)
        subject = synth.random_subject(rng, 120, 200)
        segs = [(label, 10, 60)]
        frames, kps = zip(*synth.render(subject, segs, 75, 25.0, 120, 200, rng), strict=True)
        out[label] = (np.stack(frames), np.stack(kps))
    np.testing.assert_array_equal(out[a][1], out[b][1])
    assert np.abs(out[a][0].astype(int) - out[b][0].astype(int))[30:50].sum() > 0


def test_ceiling_arithmetic() -> None:
    assert confusable_ceiling([1, 1, 2, 3], ((1, 2),)) == 0.75
    assert confusable_ceiling([1, 2, 3, 4], ()) == 1.0


def test_cli_sample_data_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s"
    args = ["--quiet", "sample-data", str(out), "--videos", "3", "--gestures", "2", "--size", "72x96", "--workers", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "ceilings" in r.output
    before = (out / "test_labels.csv").read_bytes()
    r = runner.invoke(app, args + ["--seed", "5"])
    assert r.exit_code == 2 and "already exists (pass --overwrite" in r.stderr
    assert (out / "test_labels.csv").read_bytes() == before
    r = runner.invoke(app, args + ["--seed", "5", "--overwrite"])
    assert r.exit_code == 0
    assert pd.read_csv(out / "test_labels.csv").shape[0] == 2
    r = runner.invoke(app, ["sample-data", str(tmp_path / "t"), "--size", "big"])
    assert r.exit_code == 2 and "expected HxW" in r.output + r.stderr
