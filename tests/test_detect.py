"""mg detect: sliding windows, per-frame scores, segments (threshold, merging, minimum length,
NMS) on hand-made scores, and the chain extract-pose --background -> train-branch -> detect ->
evaluate-online -> submit on the small sample, for a skeleton and a PoseConv3D model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.dataset.background import BACKGROUND
from mgcli.errors import MgError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.detections import read_detections
from mgcli.io.poses import PosesFile
from mgcli.online.detect import DetectOptions, frame_scores, segments, window_starts

runner = CliRunner()


def test_window_starts_cover_the_video() -> None:
    s = window_starts(100, 32, 8)
    assert s[0] == 0 and s[-1] == 68 and np.all(np.diff(s) <= 8)
    assert np.array_equal(window_starts(96, 32, 8), np.arange(0, 65, 8))
    assert np.array_equal(window_starts(20, 32, 8), [0])  # shorter than a window: one window
    covered = np.zeros(100, int)
    for a in s:
        covered[a : a + 32] += 1
    assert covered.min() >= 1


def test_frame_scores_average_the_windows_of_each_frame() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    starts, ends = np.array([0, 5, 20]), np.array([9, 14, 24])
    fs = frame_scores(probs, starts, ends, 30)
    np.testing.assert_allclose(fs[0], [1, 0])
    np.testing.assert_allclose(fs[5], [0.5, 0.5])  # windows 0 and 1
    np.testing.assert_allclose(fs[12], [0, 1])
    np.testing.assert_allclose(fs[15:20], 0)  # no window
    np.testing.assert_allclose(fs[22], [0.5, 0.5])
    np.testing.assert_allclose(fs[25:], 0)
    # the last window may run past a short video: clipped to its frames
    np.testing.assert_allclose(
        frame_scores(np.array([[0.2, 0.8]]), np.array([0]), np.array([40]), 10), [[0.2, 0.8]] * 10
    )


def _scores(t: int, k: int = 4, bg: int = 3) -> np.ndarray:
    s = np.zeros((t, k), np.float32)
    s[:, bg] = 0.9
    return s


def _put(s: np.ndarray, a: int, b: int, c: int, p: float, bg: float = 0.05) -> None:
    s[a : b + 1] = (1 - p - bg) / (s.shape[1] - 2)
    s[a : b + 1, c] = p
    s[a : b + 1, -1] = bg


def test_segments_threshold_merge_minimum_length_and_nms() -> None:
    s = _scores(200)
    _put(s, 10, 29, 0, 0.8)  # one clean gesture
    _put(s, 40, 49, 1, 0.7)  # two runs of class 1, 3 frames apart: merged
    _put(s, 53, 62, 1, 0.6)
    _put(s, 80, 84, 2, 0.8)  # 5 frames: below min_len
    _put(s, 100, 119, 0, 0.28, bg=0.22)  # beats the background but below the threshold
    _put(s, 130, 149, 0, 0.9)  # class 0 around a short class 1 run: merged over it (gap 6)
    _put(s, 150, 155, 1, 0.5)
    _put(s, 156, 175, 0, 0.9)
    opts = DetectOptions(threshold=0.3, min_len=6, merge_gap=8, nms_iou=0.5)
    seg = segments(s, opts, background=3)
    got = sorted(map(tuple, seg[["label", "start", "end"]].to_numpy().tolist()))
    assert got == [(0, 10, 29), (0, 130, 175), (1, 40, 62), (1, 150, 155)]
    assert seg["score"].is_monotonic_decreasing  # best first
    row = seg[seg["start"] == 40].iloc[0]
    assert row["score"] == pytest.approx((10 * 0.7 + 3 * 0 + 10 * 0.6) / 23, rel=1e-5)  # the gap frames count
    # no merging across a longer gap
    got = segments(s, DetectOptions(threshold=0.3, min_len=6, merge_gap=2), 3)
    assert {(r.start, r.end) for r in got.itertuples() if r.label == 1} == {(40, 49), (53, 62), (150, 155)}
    # a lower threshold finds the weak gesture; min_len 1 keeps the short one
    got = segments(s, DetectOptions(threshold=0.2, min_len=1, merge_gap=0), 3)
    assert {(r.label, r.start, r.end) for r in got.itertuples()} >= {(0, 100, 119), (2, 80, 84)}
    # NMS: the class 1 run inside the merged class 0 segment overlaps it by 6 / 46
    got = segments(s, DetectOptions(threshold=0.3, min_len=6, merge_gap=8, nms_iou=0.1), 3)
    assert (1, 150, 155) not in {(r.label, r.start, r.end) for r in got.itertuples()}
    # without a background class the threshold alone decides, and uncovered frames are never active
    s2 = np.zeros((50, 3), np.float32)
    s2[10:30] = [0.6, 0.2, 0.2]
    s2[30:40] = [0.2, 0.2, 0.6]
    got = segments(s2, DetectOptions(threshold=0.5, min_len=5, merge_gap=0), None)
    assert [(r.label, r.start, r.end) for r in got.sort_values("start").itertuples()] == [(0, 10, 29), (2, 30, 39)]
    assert segments(np.zeros((30, 3), np.float32), DetectOptions(threshold=0.0, min_len=1), None).empty


def test_detect_options_are_checked() -> None:
    with pytest.raises(MgError, match="--stride"):
        DetectOptions(stride=0)
    with pytest.raises(MgError, match="--threshold"):
        DetectOptions(threshold=1.5)


TINY_AGCN = [
    "model.base_channels=8",
    "data.view.clip_len=16",
    "data.view.num_clips=1",
    "data.view.layout=upper22",
    "optim.lr=0.05",
    "optim.lr_batch=0",
    "train.epochs=3",
    "train.min_steps=0",
    "train.batch_size=4",
    "data.workers=0",
]


@pytest.fixture(scope="module")
def detector(small_sample: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """poses.h5 with background clips and a tiny 2s-AGCN trained on it (33 classes)."""
    d = tmp_path_factory.mktemp("detect")
    args = ["extract-pose", str(small_sample), "-o", str(d / "poses.h5"), "--layout", "coco17"]
    res = runner.invoke(app, [*args, "--background", "2", "--background-window", "24"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "train-branch",
            "--model",
            "agcn-joint",
            f"data.path={d / 'poses.h5'}",
            "--out-dir",
            str(d / "runs"),
            "--name",
            "agcn_bg",
            *TINY_AGCN,
        ],
    )
    assert res.exit_code == 0, res.output
    # A tiny model trained for seconds on three videos may call every window background. The
    # segment rules are tested above on known scores; for the chain to have segments to carry, a
    # copy whose head never says background (its bias at -20): at threshold 0 every covered frame
    # is then active, and the segments are the runs of the best gesture class.
    import torch

    state = load_checkpoint(d / "runs" / "agcn_bg" / "model.pt")
    state["state_dict"]["fc.bias"][-1] = -20.0
    torch.save(state, d / "gestures-only.pt")
    return d


def test_detect_evaluate_submit_chain(detector: Path, small_sample: Path) -> None:
    assert load_checkpoint(detector / "runs" / "agcn_bg" / "model.pt")["class_names"][-1] == BACKGROUND
    model = detector / "gestures-only.pt"
    det, fs = detector / "det.csv", detector / "frames.h5"
    args = ["detect", str(model), "--data", str(detector / "poses.h5"), "-o", str(det), "--scores", str(fs)]
    res = runner.invoke(app, [*args, "--window", "24", "--stride", "6", "--threshold", "0", "--min-len", "4"])
    assert res.exit_code == 0, res.output
    assert "frames/s" in res.output
    table = read_detections(det, num_classes=32).table  # gesture classes only, never the background
    with PosesFile(detector / "poses.h5") as pf:
        test_vids = sorted(set(pf.clips.loc[pf.clips["split"] == "test", "video_id"]))
        lengths = {v: pf.video_shape(v)[1] for v in test_vids}
    assert len(table) > 0 and set(table["video_id"]) <= set(test_vids)
    assert (table["end"] - table["start"] + 1 >= 4).all()
    with h5py.File(fs) as f:
        assert json.loads(f.attrs["class_names"])[-1] == BACKGROUND and f.attrs["window"] == 24
        for v in test_vids:
            s = f["videos"][v][()].astype(np.float32)
            assert s.shape == (lengths[v], 33)
            np.testing.assert_allclose(s.sum(1), 1.0, atol=2e-2)  # every frame covered
    for _, r in table.iterrows():
        assert r["end"] < lengths[r["video_id"]]
    # an existing output is refused, with one line
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "exists" in res.output
    res = runner.invoke(app, ["evaluate-online", str(det), "--release", str(small_sample), "-o", str(detector / "ev")])
    assert res.exit_code == 0, res.output
    report = json.loads((detector / "ev-online.json").read_text())
    assert report["strict"]["predictions"] == len(table)
    res = runner.invoke(
        app,
        ["submit", str(det), "--format", "online2023", "--release", str(small_sample), "-o", str(detector / "s.zip")],
    )
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(detector / "s.zip") as z:
        assert sorted(z.namelist()) == [f"{v}_prediction.csv" for v in test_vids]


def test_detect_posec3d_renders_window_views(train_artifacts: Path, tmp_path: Path, one_thread: None) -> None:
    from mgcli.train.config import load_config
    from mgcli.train.launch import launch

    tiny = [
        "model.name=posec3d_slowonly",
        "model.base_channels=4",
        "model.stage_blocks=[1,1,1]",
        "data.view.clip_len=8",
        "data.view.num_clips=1",
        "optim.lr_batch=0",
        "train.min_steps=0",
        "train.batch_size=4",
        "train.epochs=1",
        "data.workers=0",
    ]
    launch(
        load_config(
            None, [*tiny, f"data.path={train_artifacts / 'heatmaps-joint.h5'}", f"out_dir={tmp_path}", "name=p"]
        ),
        quiet=True,
    )
    model = tmp_path / "p" / "model.pt"
    det = tmp_path / "det.csv"
    base = ["detect", str(model), "--data", str(train_artifacts / "poses.h5"), "-o", str(det)]
    res = runner.invoke(
        app,
        [
            *base,
            "--window",
            "16",
            "--stride",
            "8",
            "--threshold",
            "0",
            "--min-len",
            "1",
            "--scores",
            str(tmp_path / "fs.h5"),
        ],
    )
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "fs.h5") as f:
        s = next(iter(f["videos"].values()))[()].astype(np.float32)
    assert s.shape[1] == 32 and np.allclose(s.sum(1), 1.0, atol=2e-2)
    assert len(read_detections(det).table) > 0
    # without the heatmaps file its build options are unknown: one line
    res = runner.invoke(app, [*base, "--overwrite", "--heatmaps", str(tmp_path / "missing.h5")])
    assert res.exit_code == 2 and "--heatmaps" in res.output


def test_detect_refuses_what_it_cannot_slide(train_artifacts: Path, tmp_path: Path) -> None:
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"not a checkpoint")
    res = runner.invoke(
        app, ["detect", str(junk), "--data", str(train_artifacts / "poses.h5"), "-o", str(tmp_path / "d.csv")]
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(
        app, ["detect", str(junk), "--data", str(train_artifacts / "heatmaps-joint.h5"), "-o", str(tmp_path / "d.csv")]
    )
    assert res.exit_code == 2 and "poses.h5" in res.output


def _sample_test_video(sample: Path) -> Path:
    from mgcli.dataset.release import Release

    release = Release(sample)
    test = sorted(v for v, e in release.videos.items() if e.split == "test")
    return release.videos[test[0]].video


def test_predict_on_a_real_video_writes_all_three_outputs(detector: Path, tmp_path: Path) -> None:
    import av
    import pandas as pd
    from test_backends import carphone

    model = detector / "gestures-only.pt"  # so that the overlay has labels to draw
    out, mp4 = tmp_path / "pred", tmp_path / "overlay.mp4"
    args = ["predict", str(carphone()), "--model", str(model), "-o", str(out), "--overlay", str(mp4)]
    res = runner.invoke(app, [*args, "--window", "24", "--stride", "8", "--threshold", "0", "--min-len", "1"])
    assert res.exit_code == 0, res.output
    seg = pd.read_csv(out / "segments.csv")
    assert list(seg.columns) == ["start_frame", "end_frame", "start_s", "end_s", "label", "class", "score"]
    assert len(seg) >= 1 and seg["end_frame"].max() <= 119 and (seg["class"] != BACKGROUND).all()
    np.testing.assert_allclose(seg["start_s"], seg["start_frame"] / 29.97, atol=1e-2)  # carphone is 29.97 fps
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(mp4)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert len(frames) == 120 and frames[0].shape[:2] == (144, 176)
    with h5py.File(out / "frame-scores.h5") as f:
        assert f["videos"]["carphone_pristine"].shape == (120, 33)


def test_predict_on_the_samples_test_video_finds_segments(detector: Path, small_sample: Path, tmp_path: Path) -> None:
    import pandas as pd

    model = detector / "gestures-only.pt"
    video = _sample_test_video(small_sample)
    res = runner.invoke(
        app,
        ["predict", str(video), "--model", str(model), "-o", str(tmp_path / "p"), "--window", "24", "--stride", "6",
         "--threshold", "0", "--min-len", "4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    seg = pd.read_csv(tmp_path / "p" / "segments.csv")
    assert len(seg) >= 1 and (seg["end_frame"] - seg["start_frame"] + 1 >= 4).all()
    assert "micro-gesture" in res.output


def test_predict_refuses_bad_input_in_one_line(detector: Path, tmp_path: Path) -> None:
    import torch

    model = detector / "runs" / "agcn_bg" / "model.pt"
    junk = tmp_path / "broken.mp4"
    junk.write_bytes(b"\x00" * 512)
    res = runner.invoke(app, ["predict", str(junk), "--model", str(model), "-o", str(tmp_path / "a")])
    assert res.exit_code == 2 and "broken.mp4" in res.output and "Traceback" not in res.output
    # a checkpoint of a model mg detect cannot slide (an RGB model), refused before any pose work
    state = load_checkpoint(model)
    state["config"]["model"] = {"name": "rgb_slowonly"}
    rgb = tmp_path / "rgb.pt"
    torch.save(state, rgb)
    video = _sample_test_video_or_carphone()
    res = runner.invoke(app, ["predict", str(video), "--model", str(rgb), "-o", str(tmp_path / "b")])
    assert res.exit_code == 2 and "reads frames" in res.output
    assert not (tmp_path / "b" / "poses.h5").exists()


def _sample_test_video_or_carphone() -> Path:
    from test_backends import carphone

    return carphone()


def test_num_clips_sets_the_views_per_window(detector: Path) -> None:
    from mgcli.online.detect import read_detector

    model = detector / "runs" / "agcn_bg" / "model.pt"
    with PosesFile(detector / "poses.h5") as pf:
        video, layout = pf[pf.video_ids[0]], pf.layout
    sizes = {}
    for n in (0, 1, 3):
        _, _, kind, source = read_detector(model, None, n)
        sizes[n] = source.make(video, layout)(0, 23)["x"].shape[0]
    assert kind == "poses" and sizes[3] == 3 * sizes[1] and sizes[0] == sizes[1]  # TINY_AGCN: num_clips=1
    with pytest.raises(MgError, match="--num-clips"):
        DetectOptions(num_clips=-1)


def test_a_model_trained_on_one_layout_detects_on_poses_of_another(detector: Path, tmp_path: Path) -> None:
    """A skeleton model whose view names no layout trains on the file's (coco17 here); model.pt
    records it, so mg predict's MediaPipe poses are converted to it rather than refused."""
    from test_backends import carphone

    tiny = [a for a in TINY_AGCN if not a.startswith("data.view.layout")] + ["train.epochs=1"]
    res = runner.invoke(
        app,
        ["train-branch", "--model", "agcn-joint", f"data.path={detector / 'poses.h5'}", "--out-dir", str(tmp_path),
         "--name", "coco", *tiny],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    model = tmp_path / "coco" / "model.pt"
    assert load_checkpoint(model)["data_options"]["layout"] == "coco17"
    res = runner.invoke(app, ["predict", str(carphone()), "--model", str(model), "-o", str(tmp_path / "p"),
                              "--window", "24"])  # fmt: skip
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "p" / "frame-scores.h5") as f:
        assert f["videos"]["carphone_pristine"].shape == (120, 33)
