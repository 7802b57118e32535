"""InterFusion (the emotion model): masks, absent streams, gradients, the ablations, and one
training run through mg train-fused on embeddings files."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import emotion_sample_via_cli
from mgcli.cli import app
from mgcli.errors import MgError
from mgcli.models import build_model

DIMS = {"face_dim": 12, "context_dim": 10}


def batch(n=3, lf=7, lc=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {
        "face": torch.randn(n, lf, 12, generator=g),
        "face_mask": torch.rand(n, lf, generator=g) > 0.3,
        "face_time": torch.rand(n, lf, generator=g) * 30,
        "context": torch.randn(n, lc, 10, generator=g),
        "context_mask": torch.rand(n, lc, generator=g) > 0.2,
        "context_time": torch.rand(n, lc, generator=g) * 30,
    }
    x["face_mask"][:, 0] = True
    x["context_mask"][:, 0] = True
    return x


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model("interfusion", 2, width=16, layers=2, heads=2, dropout=0.0, **DIMS).eval()


def test_shape_and_masked_steps_do_not_matter(model):
    x = batch()
    out = model(**x)
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    y = {k: v.clone() for k, v in x.items()}
    for s in ("face", "context"):
        y[s][~x[f"{s}_mask"]] = torch.randn_like(y[s][~x[f"{s}_mask"]]) * 100
        y[f"{s}_time"][~x[f"{s}_mask"]] = 999.0
    torch.testing.assert_close(model(**y), out, atol=1e-5, rtol=1e-5)


def test_absent_stream_does_not_change_logits(model):
    x = batch()
    x["context_mask"][1] = False  # video 1: no context at all
    out = model(**x)
    assert torch.isfinite(out).all()
    y = {k: v.clone() for k, v in x.items()}
    y["context"][1] = torch.randn_like(y["context"][1]) * 50
    torch.testing.assert_close(model(**y), out, atol=1e-5, rtol=1e-5)
    # and it is a face-only prediction: the other videos (with context) are unaffected by it
    torch.testing.assert_close(model(**y)[[0, 2]], out[[0, 2]])


def test_no_leak_across_the_batch(model):
    x = batch(n=2)
    for k in x:
        x[k][1] = x[k][0]
    out = model(**x)
    torch.testing.assert_close(out[0], out[1])


def test_gradients_reach_both_streams():
    torch.manual_seed(0)
    m = build_model("interfusion", 2, width=16, layers=1, heads=2, **DIMS).train()
    x = batch()
    loss = m.loss(m(**x), torch.tensor([0, 1, 1]))["ce"]
    loss.backward()
    for name in ("proj.face.weight", "proj.context.weight"):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_ablations_and_errors():
    x = batch()
    face = build_model("emotion_face", 2, width=16, layers=1, heads=2, **DIMS).eval()
    ctx = build_model("emotion_context", 2, width=16, layers=1, heads=2, **DIMS).eval()
    assert face.streams == ("face",) and ctx.streams == ("context",)
    out = face(**x)
    y = dict(x, context=torch.randn_like(x["context"]))
    torch.testing.assert_close(face(**y), out)  # the face model ignores the context stream
    assert ctx(**x).shape == (3, 2)
    with pytest.raises(MgError, match="context stream"):
        ctx(**{k: v for k, v in x.items() if not k.startswith("context")})
    with pytest.raises(MgError, match="unknown option"):
        build_model("interfusion", 2, depth=3)
    with pytest.raises(MgError, match="streams"):
        build_model("interfusion", 2, streams=["face", "voice"])


def test_train_fused_end_to_end(tmp_path):
    """Two streams whose label signal is split between them (label = sign(a + b)): the fused
    model trains through the one loop, scores one row per video, and reports binary metrics."""
    from tests.test_emotion_data import write_stream

    rng = np.random.default_rng(0)
    videos = [(f"{k + 1:04d}", "train" if k < 16 else ("val" if k < 20 else "test"), k % 2, 40.0) for k in range(24)]
    face = write_stream(tmp_path / "face.h5", "face", 8, videos, 2.0, rng)
    ctx = write_stream(tmp_path / "ctx.h5", "context", 6, videos, 0.5, rng)
    r = CliRunner().invoke(
        app,
        [
            "--quiet",
            "train-fused",
            "--model",
            "interfusion",
            "--data",
            str(face),
            "--streams",
            str(ctx),
            "--out-dir",
            str(tmp_path / "runs"),
            "--name",
            "emo",
            "--cpu",
            "train.epochs=10",
            "optim.lr=3e-3",
            "train.min_steps=0",
            "model.width=16",
            "model.layers=1",
            "model.heads=2",
            "data.workers=0",
            "data.view.window=10",
            "data.view.windows_per_video=8",
        ],
    )
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / "emo"
    scores = (run / "scores-test.csv").read_text().splitlines()
    assert scores[0] == "clip_id,label,0,1" and len(scores) == 1 + 4  # one row per test video
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["splits"]["test"]
    assert test["n"] == 4 and set(test["binary"]) == {"accuracy", "balanced_accuracy", "f1", "roc_auc"}
    assert test["binary"]["accuracy"] >= 0.75  # the vectors carry the label (shifted by it): learnable
    assert "accuracy" in r.output and "ROC-AUC" in r.output


@pytest.fixture(scope="module")
def emotion_sample(tmp_path_factory):
    """A tiny emotion sample through the CLI: 8 videos of 3 s (4 train / 2 val / 2 test)."""
    return emotion_sample_via_cli(tmp_path_factory.mktemp("emo") / "sample", 8, 3)


def test_embed_streams_end_to_end(emotion_sample, tmp_path):
    """faces -> swinface, whole videos -> mvit-v2-s, per-clip scores -> gestures: three embeddings
    files with the release's videos, splits and labels, trainable together."""
    from mgcli.dataset.emotion import emotion_videos
    from mgcli.dataset.release import Release
    from mgcli.io.embeddings import EmbeddingsFile
    from mgcli.io.scores import write_scores

    run = CliRunner()
    faces, face, ctx, ges = (tmp_path / n for n in ("faces.h5", "face.h5", "ctx.h5", "ges.h5"))
    r = run.invoke(app, ["--quiet", "extract-faces", str(emotion_sample), "-o", str(faces)])
    assert r.exit_code == 0, r.output
    r = run.invoke(app, ["--quiet", "embed", str(faces), "--model", "swinface", "-o", str(face), "--cpu"])
    assert r.exit_code == 0, r.output
    r = run.invoke(
        app,
        ["--quiet", "embed", str(emotion_sample), "--model", "mvit-v2-s", "--frames", "4", "--step", "2",
         "--size", "32", "-o", str(ctx), "--cpu"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    clips = Release(emotion_sample).clips(check_frames=False)
    probs = np.random.default_rng(0).dirichlet(np.ones(32), len(clips))
    write_scores(tmp_path / "scores.csv", clips["clip_id"].tolist(), clips["label"].tolist(), probs)
    r = run.invoke(
        app,
        ["--quiet", "embed", str(tmp_path / "scores.csv"), "--model", "gestures", "--release", str(emotion_sample),
         "-o", str(ges)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    table = emotion_videos(Release(emotion_sample)).set_index("video_id")
    for path, stream, dim in ((face, "face", 512), (ctx, "context", 768), (ges, "gesture", 32)):
        with EmbeddingsFile(path) as f:
            assert f.stream == stream and f.dim == dim
            assert f.weights  # what was loaded, or "random init"
            c = f.clips.set_index("video_id")
            vids = list(c.index)
            assert (c["label"] == table.loc[vids, "label"]).all() and (c["split"] == table.loc[vids, "split"]).all()
            v = f.video(vids[0])
            assert len(v.vectors) == len(v.frames) > 0 and np.isfinite(v.vectors).all()
            assert (np.diff(v.frames) > 0).all() and v.frames.max() < f.num_frames[vids[0]]
    r = run.invoke(app, ["inspect", str(face)])
    assert r.exit_code == 0 and "face (swinface, 512-d)" in r.output and "random init" in r.output, r.output
    assert re.search(r"train\s+│\s+4\s+│\s+2\s+│\s+2\s+│\s+0", r.output), r.output  # videos, win, lose, unlabelled
    r = run.invoke(app, ["inspect", str(faces)])
    assert r.exit_code == 0 and "112 x 112" in r.output and "openpose" in r.output, r.output
    with EmbeddingsFile(ges) as f:  # one step per clip of the video, at the clip's centre
        vid = f.video_ids[0]
        mine = clips[clips["video_id"] == vid].sort_values("start")
        np.testing.assert_array_equal(f.frames(vid), (mine["start"] + mine["end"]) // 2)
    r = run.invoke(
        app,
        ["--quiet", "train-fused", "--model", "interfusion", "--data", str(face), "--streams", str(ctx),
         "--streams", str(ges), "--out-dir", str(tmp_path / "runs"), "--name", "emo", "--cpu", "train.epochs=1",
         "train.min_steps=0", "model.streams=[face,context,gesture]", "model.width=16", "model.layers=1",
         "model.heads=2", "data.workers=0", "data.view.window=1.5"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "runs" / "emo" / "scores-test.csv").read_text().splitlines()) == 1 + 2
    out = tmp_path / "prediction.zip"
    r = run.invoke(
        app,
        ["--quiet", "submit", "--task", "emotion", str(tmp_path / "runs" / "emo" / "scores-test.csv"),
         "--release", str(emotion_sample), "-o", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output and out.is_file()
