"""InterFusion (mgcli.models.interfusion): shapes, masks, absent streams, gradients, the one-stream
ablations, option errors, no leakage across the batch, the model contract, and mg models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mgcli.errors import MgError
from mgcli.models import MODELS, Recognizer, build_model
from mgcli.models.interfusion import InterFusion, masked_attention, time_embedding

DIMS = {"face_dim": 12, "context_dim": 10, "gesture_dim": 6}
TINY = {"width": 16, "layers": 2, "heads": 2, "dropout": 0.0}

pytestmark = pytest.mark.usefixtures("one_thread")


def batch(n: int = 3, lf: int = 7, lc: int = 5, seed: int = 0, gesture: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {}
    for s, length, dim in (("face", lf, 12), ("context", lc, 10)) + ((("gesture", 4, 6),) if gesture else ()):
        x[s] = torch.randn(n, length, dim, generator=g)
        x[f"{s}_mask"] = torch.rand(n, length, generator=g) > 0.3
        x[f"{s}_mask"][:, 0] = True  # every stream present in every video
        x[f"{s}_time"] = torch.sort(torch.rand(n, length, generator=g) * 30, 1).values
    return x


def tiny(name: str = "interfusion", **kw: object) -> InterFusion:
    torch.manual_seed(0)
    return build_model(name, 2, **{**TINY, **DIMS, **kw}).eval()


@torch.no_grad()
def test_shape_and_streams() -> None:
    model = tiny()
    assert isinstance(model, Recognizer) and model.streams == ("face", "context") and model.num_classes == 2
    out = model(**batch(), labels=torch.tensor([0, 1, 0]))  # labels accepted and ignored
    assert out.shape == (3, 2) and out.dtype == torch.float32 and torch.isfinite(out).all()
    three = tiny(streams=["face", "context", "gesture"])
    assert three.streams == ("face", "context", "gesture")
    assert three(**batch(gesture=True)).shape == (3, 2)


@torch.no_grad()
def test_masked_steps_do_not_change_logits() -> None:
    model = tiny()
    x = batch()
    out = model(**x)
    y = {k: v.clone() for k, v in x.items()}
    g = torch.Generator().manual_seed(1)
    for s in ("face", "context"):
        off = ~x[f"{s}_mask"]
        assert off.any()
        y[s][off] = torch.randn(int(off.sum()), y[s].shape[-1], generator=g) * 100
        y[f"{s}_time"][off] = torch.rand(int(off.sum()), generator=g) * 500
    torch.testing.assert_close(model(**y), out, atol=1e-6, rtol=1e-6)
    # the mask is not ignored: unmasking those steps does change the logits
    z = dict(y, face_mask=torch.ones_like(x["face_mask"]))
    assert not torch.allclose(model(**z), out, atol=1e-4)


@torch.no_grad()
def test_absent_stream_gives_same_logits_whatever_its_values() -> None:
    model = tiny()
    x = batch()
    x["context_mask"][:] = False  # no context in any video
    out = model(**x)
    assert torch.isfinite(out).all()
    for scale in (0.0, 1e3):
        y = dict(x, context=torch.randn_like(x["context"]) * scale, context_time=torch.rand_like(x["context_time"]))
        torch.testing.assert_close(model(**y), out, atol=1e-6, rtol=1e-6)
    # NaN in an absent stream's padding does not leak either
    y = dict(x, context=torch.full_like(x["context"], float("nan")), context_time=x["context_time"] + float("inf"))
    torch.testing.assert_close(model(**y), out, atol=1e-6, rtol=1e-6)
    # a video with no step of any stream gives the classifier's bias, not NaN
    none = dict(x, face_mask=torch.zeros_like(x["face_mask"]))
    torch.testing.assert_close(model(**none), model.head.bias.expand(3, 2))


def test_gradients_reach_both_projections_and_the_classifier() -> None:
    model = tiny(layers=1).train()
    x = batch()
    terms = model.loss(model(**x), torch.tensor([0, 1, 1]))
    assert set(terms) == {"ce"} and torch.isfinite(terms["ce"])
    terms["ce"].backward()
    params = dict(model.named_parameters())
    for name in ("proj.face.weight", "proj.context.weight", "head.weight", "head.bias", "pool_query"):
        grad = params[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # cross-attention carries gradient from one stream's pooled vector into the other's tokens
    cross = params["layers.0.cross_attn.face.in_proj_weight"].grad
    assert cross is not None and cross.abs().sum() > 0


@torch.no_grad()
def test_batch_mixing_present_and_absent_context() -> None:
    model = tiny()
    x = batch(n=2)
    x["context_mask"][1] = False  # video 1: face only
    out = model(**x)
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    # each video is predicted as it would be alone
    alone = [model(**{k: v[i : i + 1] for k, v in x.items()}) for i in range(2)]
    torch.testing.assert_close(out, torch.cat(alone), atol=1e-6, rtol=1e-6)
    # and video 1's prediction depends on its face, not on its (absent) context
    y = dict(x, context=x["context"].clone())
    y["context"][1] = torch.randn_like(y["context"][1]) * 10
    torch.testing.assert_close(model(**y), out, atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_identical_videos_give_identical_logits() -> None:
    model = tiny()
    x = batch(n=3)
    for k in x:
        x[k][2] = x[k][0]
    out = model(**x)
    torch.testing.assert_close(out[0], out[2], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(out[0], out[1])  # and a different video differs


@torch.no_grad()
def test_one_stream_ablations() -> None:
    x = batch()
    face, ctx = tiny("emotion_face"), tiny("emotion_context")
    assert face.streams == ("face",) and ctx.streams == ("context",)
    assert not hasattr(face.layers[0], "cross_attn")  # no cross-attention with one stream
    assert face(**x).shape == ctx(**x).shape == (3, 2)
    other = dict(x, context=torch.randn_like(x["context"]))
    torch.testing.assert_close(face(**other), face(**x))  # the face model ignores the context stream
    with pytest.raises(MgError, match="context_mask, context_time missing"):
        ctx(context=x["context"])
    with pytest.raises(MgError, match=r"\[N, T, 12\]"):
        face(face=x["context"], face_mask=x["context_mask"], face_time=x["context_time"])


def test_build_options_are_checked() -> None:
    with pytest.raises(MgError, match="unknown option 'depth'"):
        build_model("interfusion", 2, depth=3)
    with pytest.raises(MgError, match="unknown option 'streams'"):
        build_model("emotion_face", 2, streams=["face"])
    with pytest.raises(MgError, match="streams"):
        build_model("interfusion", 2, streams=["face", "voice"])
    with pytest.raises(MgError, match="distinct"):
        build_model("interfusion", 2, streams=["face", "face"])
    with pytest.raises(MgError, match="divisible by heads"):
        build_model("interfusion", 2, width=10, heads=4)
    with pytest.raises(MgError, match="model.width|'width'"):
        build_model("interfusion", 2, width="wide")
    # the data fills in every stream's dim: the ablations accept the ones they do not use
    assert build_model("emotion_context", 2, face_dim=7, context_dim=9, width=8, heads=2).in_dims == {"context": 9}


def test_time_embedding_and_masked_attention() -> None:
    periods = torch.tensor([1.0, 4.0])
    emb = time_embedding(torch.tensor([[0.0, 1.0]]), periods)
    assert emb.shape == (1, 2, 4)
    torch.testing.assert_close(emb[0, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(emb[0, 1], torch.tensor([0.0, 1.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    attn = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    q, k = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    present = torch.tensor([[True, False, True, False], [False] * 4])
    out = masked_attention(attn, q, k, present)
    assert torch.isfinite(out).all() and out[1].abs().sum() == 0 and out[0].abs().sum() > 0


def test_contract_inference_state_and_data_options(tmp_path: Path) -> None:
    from mgcli.io.checkpoint import load_checkpoint, save_checkpoint
    from mgcli.train.build import build_for_data
    from mgcli.train.config import load_config

    cfg = load_config(None, ["model.name=interfusion"])
    cfg.model.update({"width": 16, "layers": 1, "heads": 2})
    # the embeddings dataset gives {stream}_dim for every stream it has
    model = build_for_data(cfg, 2, "embeddings", {"face_dim": 12, "context_dim": 10}).eval()
    assert model.in_dims == {"face": 12, "context": 10}
    x = batch()
    with torch.no_grad():
        out = model(**x)
    save_checkpoint(tmp_path / "model.pt", model.inference_state(), cfg.to_dict(), ["lose", "win"])
    again = build_for_data(cfg, 2, "embeddings", {"face_dim": 12, "context_dim": 10}, load_pretrained=False).eval()
    again.load_inference_state(load_checkpoint(tmp_path / "model.pt")["state_dict"])
    with torch.no_grad():
        torch.testing.assert_close(again(**x), out)
    model.check_view(object())  # any view is accepted
    cfg.model["face_dim"] = 512  # a config that disagrees with the data is refused
    with pytest.raises(MgError, match="face_dim is 512 but the data has 12"):
        build_for_data(cfg, 2, "embeddings", {"face_dim": 12, "context_dim": 10})


def test_registered_and_listed_by_mg_models() -> None:
    from mgcli.models import count_parameters

    for name in ("interfusion", "emotion_face", "emotion_context"):
        assert MODELS[name].input_kind == "embeddings" and MODELS[name].input_text
    assert MODELS["interfusion"].input_text.startswith("face 512 x T + context 768 x T")
    sizes = {name: count_parameters(MODELS[name].builder(2)) for name in ("interfusion", "emotion_face")}
    assert sizes["interfusion"] > sizes["emotion_face"] > 0
    # mg models builds every registered model (the slow part of this file: the big video models)
    r = subprocess.run(
        [sys.executable, "-m", "mgcli", "models", "--num-classes", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250"},
    )
    assert r.returncode == 0, r.stderr
    for name in ("interfusion", "emotion_face", "emotion_context"):
        assert name in r.stdout
