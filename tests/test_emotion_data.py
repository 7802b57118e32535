"""Embedding streams (embeddings.h5), their window samples, the binary metrics, and mg embed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from mgcli.data.embeddings import EmbeddingViewConfig, EmbeddingWindows
from mgcli.errors import MgError
from mgcli.io.embeddings import EmbeddingsFile, EmbeddingsWriter, VideoEmbeddings
from mgcli.report import binary_metrics, summarize

FPS = 25.0


def write_stream(path, stream, dim, videos, rate, rng, skip=()):
    """``videos``: (vid, split, label, seconds); ``rate`` steps per second."""
    with EmbeddingsWriter(path, stream, "test", dim) as w:
        rows = []
        for vid, split, label, secs in videos:
            if vid in skip:
                continue
            n = int(secs * rate)
            frames = np.round(np.arange(n) * FPS / rate).astype(np.int64)
            vectors = rng.normal(size=(n, dim)) + (2 * label - 1) * np.resize([1.0, -1.0], dim)  # zero-mean signal
            valid = np.ones(n, bool)
            valid[::7] = False  # some steps without a face
            w.add_video(VideoEmbeddings(vid, vectors, frames, valid))
            rows.append((vid, split, label, FPS, int(secs * FPS)))
        w.set_videos(pd.DataFrame(rows, columns=["video_id", "split", "label", "fps", "num_frames"]))
    return path


VIDEOS = [("0001", "train", 1, 100.0), ("0002", "train", 0, 45.0), ("0003", "test", 1, 70.0), ("0004", "test", 0, 10.0)]


@pytest.fixture()
def streams(tmp_path):
    rng = np.random.default_rng(0)
    face = write_stream(tmp_path / "face.h5", "face", 8, VIDEOS, 2.0, rng)
    ctx = write_stream(tmp_path / "ctx.h5", "context", 6, VIDEOS, 25 / 64, rng, skip=("0002",))
    return face, ctx


def test_file_round_trip(streams):
    face, _ = streams
    with EmbeddingsFile(face) as f:
        assert f.stream == "face" and f.dim == 8 and f.class_names == ["lose", "win"]
        assert f.video_ids == ["0001", "0002", "0003", "0004"]
        assert f.clips.set_index("clip_id").loc["0003", "label"] == 1
        v = f.video("0001")
        assert v.vectors.shape == (200, 8) and v.frames[1] == 12 and not v.valid[0] and v.valid[1]
        np.testing.assert_allclose(f.vectors("0001", np.array([3, 5])), v.vectors[[3, 5]])


def test_train_windows(streams):
    face, ctx = streams
    view = EmbeddingViewConfig(window=20.0, windows_per_video=5, drop_steps=0.0)
    ds = EmbeddingWindows(face, "train", True, view, streams=[str(ctx)])
    assert len(ds) == 2 * 5 and ds.streams == ("face", "context")
    assert ds.data_options == {"face_dim": 8, "context_dim": 6}
    assert ds.lengths["face"] in (40, 41)  # 20 s at 2 steps per second (frame numbers are rounded)
    for i in range(len(ds)):
        x, y = ds[i]
        assert y == [1, 0][i % 2]
        t, m = x["face_time"].numpy(), x["face_mask"].numpy()
        assert x["face"].shape == (ds.lengths["face"], 8) and m.dtype == bool
        assert (t[m] >= 0).all() and (t[m] < 20.0).all()
        assert 0 < m.sum() <= ds.lengths["face"]
        if i % 2 == 1:  # video 0002 has no context stream: absent, not an error
            assert not x["context_mask"].any()
        else:
            assert x["context_mask"].any()
    a, _ = ds[0]
    b, _ = ds[0]
    np.testing.assert_array_equal(a["face"].numpy(), b["face"].numpy())  # drawn from (seed, epoch, i)


def test_drop_steps(streams):
    face, _ = streams
    full = EmbeddingWindows(face, "train", True, EmbeddingViewConfig(window=20.0, drop_steps=0.0))
    drop = EmbeddingWindows(face, "train", True, EmbeddingViewConfig(window=20.0, drop_steps=0.5))
    kept = np.mean([drop[i][0]["face_mask"].sum() / max(full[i][0]["face_mask"].sum(), 1) for i in range(16)])
    assert 0.3 < kept < 0.7


def test_test_windows_cover_the_video(streams):
    face, ctx = streams
    ds = EmbeddingWindows(face, "test", False, EmbeddingViewConfig(window=30.0), streams=[str(ctx)])
    assert ds.variable_views and len(ds) == 2
    np.testing.assert_allclose(ds.window_starts("0003"), [0.0, 30.0, 40.0])  # the last ends at 70 s
    np.testing.assert_allclose(ds.window_starts("0004"), [0.0])  # shorter than a window
    x, y = ds[0]
    assert y == 1 and x["face"].shape[0] == 3 and x["context"].shape[0] == 3
    seen = set()
    for k, start in enumerate(ds.window_starts("0003")):
        t, m = x["face_time"][k].numpy(), x["face_mask"][k].numpy()
        seen |= {round(float(s + start), 2) for s in t[m]}
    with EmbeddingsFile(face) as f:
        v = f.video("0003")
    assert seen == {round(float(s), 2) for s in (v.frames / FPS)[v.valid]}  # every valid step, none twice lost


def test_refusals(streams, tmp_path):
    face, ctx = streams
    with pytest.raises(MgError, match="two files of the face stream"):
        EmbeddingWindows(face, "train", True, EmbeddingViewConfig(), streams=[str(face)])
    other = write_stream(tmp_path / "bad.h5", "context", 6, [("0001", "train", 0, 50.0)], 1.0, np.random.default_rng(1))
    with pytest.raises(MgError, match="video 0001 has label 0"):
        EmbeddingWindows(face, "train", True, EmbeddingViewConfig(), streams=[str(other)])
    with pytest.raises(MgError, match="window must be positive"):
        EmbeddingViewConfig(window=0)


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    p = np.round(rng.random(60), 1)  # ties
    m = binary_metrics(p, y)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.5))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    assert m["accuracy"] == pytest.approx(((p >= 0.5) == y).mean())
    assert binary_metrics(p[y == 1], y[y == 1])["roc_auc"] is None
    s = summarize(np.stack([1 - p, p], 1), y, ["lose", "win"])
    assert s["binary"]["roc_auc"] == pytest.approx(m["roc_auc"])
    assert "binary" not in summarize(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]), ["a", "b", "c"])


def _video(path, n, size=(48, 40)):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, size)
    for k in range(n):
        frame = np.full((size[1], size[0], 3), k % 256, np.uint8)  # the frame number, in every pixel
        w.write(frame)
    w.release()
    return path


@pytest.mark.parametrize(("n", "centres"), [(100, [16, 45, 74, 87]), (40, [16, 27]), (10, [9])])
def test_video_windows_cover_the_video(tmp_path, n, centres):
    from mgcli.embed import WindowSpec, video_windows

    spec = WindowSpec(frames=8, step=4, size=32)  # a window spans 29 raw frames, one every 29
    out = list(video_windows(_video(tmp_path / "v.avi", n), spec))
    assert [c for c, _ in out] == centres
    covered = set()
    for c, clip in out:
        assert clip.shape == (3, 8, 32, 32) and clip.dtype == np.uint8
        got = clip[0, :, 16, 16].astype(int)  # MJPG keeps flat grey levels within a step or two
        start = max(c - 16, 0)
        assert abs(got[0] - start) <= 2 and abs(got[4] - c) <= 2
        covered |= set(range(start, min(start + spec.span, n)))
    assert covered >= set(range(n))


def test_video_windows_bad_video(tmp_path):
    from mgcli.embed import WindowSpec, video_windows
    from mgcli.errors import DataError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError):
        list(video_windows(bad, WindowSpec()))
