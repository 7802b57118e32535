import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from mgcli.errors import DataError, OutputExistsError, SchemaError
from mgcli.io import (
    FramesFile,
    FramesWriter,
    HeatmapsFile,
    HeatmapsWriter,
    PosesFile,
    PosesWriter,
    VideoPoses,
    atomic_output,
    check_probabilities,
    load_checkpoint,
    read_scores,
    save_checkpoint,
    write_scores,
)
from mgcli.io.frames import resize_short_side

CLIPS = pd.DataFrame(
    {
        "clip_id": ["0001_0", "0001_1", "0002_0"],
        "video_id": ["0001", "0001", "0002"],
        "start": [0, 10, 3],
        "end": [9, 19, 7],
        "label": [3, 31, -1],
        "split": ["train", "train", "test"],
    }
)


def _video(vid: str, t: int = 20, m: int = 2, v: int = 17) -> VideoPoses:
    rng = np.random.default_rng(int(vid))
    return VideoPoses(
        vid,
        rng.uniform(0, 300, (m, t, v, 2)).astype(np.float32),
        rng.uniform(0, 1, (m, t, v)).astype(np.float32),
        (180, 320),
        25.0,
        t,
        f"/data/{vid}.mp4",
    )


def test_poses_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "poses.h5"
    videos = [_video("0001"), _video("0002", t=8, m=1)]
    with PosesWriter(p, "coco17", "release:openpose137", ["a", "b"]) as w:
        for v in videos:
            w.add_video(v)
        w.set_clips(CLIPS)
    with PosesFile(p) as f:
        assert f.layout == "coco17" and f.source == "release:openpose137" and f.class_names == ["a", "b"]
        assert f.video_ids == ["0001", "0002"]
        pd.testing.assert_frame_equal(f.clips, CLIPS)
        got = f["0002"]
        np.testing.assert_array_equal(got.keypoint, videos[1].keypoint)
        np.testing.assert_array_equal(got.keypoint_score, videos[1].keypoint_score)
        assert (got.img_shape, got.fps, got.total_frames, got.path) == ((180, 320), 25.0, 8, "/data/0002.mp4")
        assert f.f.attrs["schema"] == "mgcli.poses/1" and "mgcli_version" in f.f.attrs


def test_wrong_schema_and_foreign_files(tmp_path: Path) -> None:
    p = tmp_path / "poses.h5"
    with PosesWriter(p, "coco17", "x", []) as w:
        w.add_video(_video("0001"))
        w.set_clips(CLIPS)
    with pytest.raises(SchemaError, match="is a mgcli.poses/1 artifact, expected mgcli.heatmaps/1"):
        HeatmapsFile(p)
    with h5py.File(p, "a") as f:
        f.attrs["schema"] = "mgcli.poses/7"
    with pytest.raises(SchemaError, match="upgrade mgcli"):
        PosesFile(p)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(SchemaError, match="no schema attribute"):
        PosesFile(plain)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(SchemaError, match="not an HDF5 file"):
        PosesFile(text)


def test_exception_during_write_leaves_nothing(tmp_path: Path) -> None:
    p = tmp_path / "poses.h5"
    with pytest.raises(RuntimeError), PosesWriter(p, "coco17", "x", []) as w:
        w.add_video(_video("0001"))
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SchemaError, match="without a clip table"), PosesWriter(p, "coco17", "x", []) as w:
        w.add_video(_video("0001"))
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_overwrite(tmp_path: Path) -> None:
    p = tmp_path / "scores.csv"
    p.write_text("precious")
    with pytest.raises(OutputExistsError, match="pass --overwrite"), atomic_output(p) as tmp:
        tmp.write_text("new")
    assert p.read_text() == "precious"
    with pytest.raises(ValueError), atomic_output(p, overwrite=True) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert p.read_text() == "precious" and len(list(tmp_path.iterdir())) == 1


KILL_SCRIPT = """
import sys, time, numpy as np, pandas as pd
from mgcli.io import PosesWriter, VideoPoses
w = PosesWriter(sys.argv[1], "coco17", "x", [])
for i in range(10_000):
    kp, score = np.zeros((1, 50, 17, 2), np.float32), np.zeros((1, 50, 17), np.float32)
    w.add_video(VideoPoses(f"{i:04d}", kp, score, (1, 1), 25.0, 50))
    w.f.flush()
    print("wrote", flush=True)
    time.sleep(0.01)
"""


def test_kill_9_during_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    p = tmp_path / "poses.h5"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(p)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(5):
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not p.exists()
    leftovers = [q.name for q in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".poses.h5.tmp-")


def test_frames_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "frames.h5"
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (3, 9, 16, 3), dtype=np.uint8)
    smooth = np.stack([cv2.resize(c, (320, 180), interpolation=cv2.INTER_CUBIC) for c in coarse])
    with FramesWriter(p, short_side=90, quality=95) as w:
        w.add_clip("0001_0", list(smooth), [10, 11, 12])
        w.set_clips(CLIPS.iloc[:1])
    with FramesFile(p) as f:
        assert f.num_frames("0001_0") == 3 and f.frame_index("0001_0").tolist() == [10, 11, 12]
        out = f.read("0001_0", [0, 2])
        assert out.shape == (2, 90, 160, 3) and out.dtype == np.uint8
        expected = np.stack([resize_short_side(smooth[i], 90)[..., ::-1] for i in (0, 2)])  # BGR in, RGB out
        assert np.abs(out.astype(float) - expected).mean() < 3
    with pytest.raises(SchemaError, match="1 clips of the table have no frames"), FramesWriter(tmp_path / "g.h5") as w:
        w.set_clips(CLIPS.iloc[:1])
    assert not (tmp_path / "g.h5").exists()


@pytest.mark.parametrize(("dtype", "bound"), [("uint8", 1 / 510 + 1e-7), ("float16", 5e-4)])
def test_heatmaps_round_trip_with_quantisation_bound(tmp_path: Path, dtype: str, bound: float) -> None:
    p = tmp_path / "hm.h5"
    vol = np.random.default_rng(1).uniform(0, 1, (17, 8, 14, 14)).astype(np.float32)
    kp = np.random.default_rng(2).uniform(0, 14, (1, 8, 17, 2)).astype(np.float32)
    sc = np.random.default_rng(3).uniform(0, 1, (1, 8, 17)).astype(np.float32)
    with HeatmapsWriter(p, "joint", "coco17", 0.6, (14, 14), {"clip_len": 8}, dtype=dtype) as w:
        w.add("0001_0", vol, kp, sc, 3, "train")
        with pytest.raises(ValueError, match="do not fit a volume of 8 frames"):
            w.add("0001_1", vol, kp[:, :4], sc[:, :4], 3, "train")
        w.set_clips(CLIPS.iloc[:1])
    with HeatmapsFile(p) as f:
        assert (f.heatmap_kind, f.layout, f.sigma, f.size, f.sampling) == (
            "joint",
            "coco17",
            0.6,
            (14, 14),
            {"clip_len": 8},
        )
        out = f.read("0001_0")
        assert out.dtype == np.float32 and out.shape == vol.shape
        assert np.abs(out - vol).max() <= bound
        k, c = f.keypoints("0001_0")  # what training views are rendered from
        np.testing.assert_array_equal(k, kp)
        np.testing.assert_array_equal(c, sc)
        ds = f.f["heatmaps/0001_0"]
        assert ds.chunks == vol.shape and ds.compression == "gzip" and ds.attrs["label"] == 3


def test_scores_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "scores.csv"
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    write_scores(p, ["0001_0", "0002_0"], [0, -1], probs)
    assert p.read_text().splitlines()[:2] == ["clip_id,label,0,1,2", "0001_0,0,0.7,0.2,0.1"]
    assert p.read_text().splitlines()[2] == "0002_0,,0.1,0.1,0.8"
    s = read_scores(p)
    assert s.clip_ids == ["0001_0", "0002_0"] and s.labels.tolist() == [0, -1] and s.classes == [0, 1, 2]
    np.testing.assert_allclose(s.probs, probs)
    check_probabilities(s, p)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,label,0\na,1,1\n", "header must start with clip_id,label"),
        ("clip_id,label\na,1\n", "no class columns"),
        ("clip_id,label,0,x\na,0,0.5,0.5\n", "named by class id"),
        ("clip_id,label,0,1\na,0,0.5,0.5\na,1,0.5,0.5\n", "duplicated clip id a"),
        ("clip_id,label,0,1\na,0,0.5,\n", "row 2: class 1 is empty, NaN"),
        ("clip_id,label,0,1\na,7,0.5,0.5\n", "row 2: label 7 is not one of the class columns"),
    ],
)
def test_malformed_scores(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message):
        read_scores(p)


def test_probability_checks(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("clip_id,label,0,1\na,0,2.0,-1.0\n")
    with pytest.raises(DataError, match="negative probability"):
        check_probabilities(read_scores(p), p)
    p.write_text("clip_id,label,0,1\na,0,0.5,0.6\n")
    with pytest.raises(DataError, match="sum to 1.1000"):
        check_probabilities(read_scores(p), p)


def test_checkpoint_round_trip_and_rejections(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    model = torch.nn.Linear(4, 3)
    save_checkpoint(p, model.state_dict(), {"model": "linear", "lr": 0.1}, ["a", "b", "c"], epoch=4)
    ck = load_checkpoint(p)
    assert ck["config"] == {"model": "linear", "lr": 0.1} and ck["class_names"] == ["a", "b", "c"] and ck["epoch"] == 4
    torch.testing.assert_close(ck["state_dict"]["weight"], model.weight.detach())
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(SchemaError, match="expected schema mgcli.checkpoint/1"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(SchemaError, match="not a loadable mgcli checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_atomic_folder_replacement(tmp_path: Path) -> None:
    out = tmp_path / "sample"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_output(out, overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [q.name for q in out.iterdir()] == ["new.txt"]
    assert [q.name for q in tmp_path.iterdir()] == ["sample"]
