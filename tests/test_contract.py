"""The model contract (mgcli.models.base) over every registered model, as timm's tests run over
list_models(): build, forward on keyword inputs, loss terms, backward, inference state save/load,
the data options, and the view check. A new model must add its tiny settings here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mgcli.io.checkpoint import load_checkpoint, save_checkpoint
from mgcli.models import MODELS, Recognizer, build_model
from mgcli.train.build import build_for_data

K = 5
PATHWAYS = {
    "rgb": {"base_channels": 4, "stage_blocks": [1, 1, 1, 1]},
    "pose": {"base_channels": 4, "stage_blocks": [1, 1, 1]},
}
MVIT = {
    "frames": 4,
    "size": 32,
    "depths": [1, 1, 1, 1],
    "dims": [8, 16, 16, 32],
    "heads": [1, 1, 1, 1],
    "stochastic_depth": 0.0,
}


def _clip(n: int, c: int, t: int, s: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, t, s, s), dtype=torch.uint8)


# name -> (model options, data kind, the dataset's data_options, a batch of 2 samples)
def _emotion_batch() -> dict[str, torch.Tensor]:
    """Two videos' face (12-d) and context (10-d) steps with masks and times."""
    out = {}
    for s, dim, steps in (("face", 12, 6), ("context", 10, 4)):
        out[s] = torch.randn(2, steps, dim)
        out[f"{s}_mask"] = torch.ones(2, steps, dtype=torch.bool)
        out[f"{s}_time"] = torch.arange(steps, dtype=torch.float32).repeat(2, 1)
    return out


TINY = {
    "posec3d_slowonly": (
        {"base_channels": 4, "stage_blocks": [1, 1, 1]},
        "heatmaps",
        {"in_channels": 5},
        lambda: {"x": torch.rand(2, 5, 8, 24, 24)},
    ),
    "rgb_slowonly": (
        {"base_channels": 4, "stage_blocks": [1, 1, 1, 1]},
        "frames",
        {"in_channels": 3},
        lambda: {"x": _clip(2, 3, 4, 32)},
    ),
    "rgbpose_conv3d": (
        {**PATHWAYS, "cmf": True, "cmf_hidden": 8, "cmf_tokens": 2, "prm": True, "prm_dim": 8},
        "rgbpose",
        {"rgb": {"in_channels": 3}, "pose": {"in_channels": 5}},
        lambda: {"rgb": _clip(2, 3, 2, 64), "pose": torch.rand(2, 5, 8, 16, 16)},
    ),
    "swin3d_t": ({}, "frames", {"in_channels": 3}, lambda: {"x": _clip(2, 3, 4, 32)}),
    "swin3d_s": ({}, "frames", {"in_channels": 3}, lambda: {"x": _clip(2, 3, 4, 32)}),
    "swin3d_b": ({}, "frames", {"in_channels": 3}, lambda: {"x": _clip(2, 3, 4, 32)}),
    "mvit_v2_s": (MVIT, "frames", {"in_channels": 3}, lambda: {"x": _clip(2, 3, 4, 32)}),
    "agcn": (
        {"base_channels": 4},
        "poses",
        {"in_channels": 3, "layout": "upper22", "num_person": 1},
        lambda: {"x": torch.randn(2, 3, 8, 22, 1)},
    ),
    "token_fusion": (
        {"video": MVIT, "skeleton": {"base_channels": 4}, "width": 16, "depth": 1, "heads": 2},
        "rgbskeleton",
        {"video": {"in_channels": 3}, "skeleton": {"in_channels": 3, "layout": "upper22", "num_person": 1}},
        lambda: {
            "rgb": _clip(2, 3, 4, 32),
            "skeleton": torch.randn(2, 3, 8, 22, 1),
            "present": torch.ones(2, 2, dtype=torch.bool),
        },
    ),
    **{
        name: (
            {"width": 16, "layers": 1, "heads": 2},
            "embeddings",
            {"face_dim": 12, "context_dim": 10},
            lambda: _emotion_batch(),
        )
        for name in ("interfusion", "emotion_face", "emotion_context")
    },
}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_registered_model_has_tiny_settings() -> None:
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name: str, tmp_path: Path) -> None:
    from mgcli.train.config import load_config

    options, kind, data_options, batch = TINY[name]
    assert MODELS[name].input_kind == kind
    cfg = load_config(None, [f"model.name={name}"])
    cfg.model.update(options)
    torch.manual_seed(0)
    model = build_for_data(cfg, K, kind, data_options)  # the data's options filled in and checked
    assert isinstance(model, Recognizer) and model.num_classes == K
    x, y = batch(), torch.tensor([1, 3])

    model.train()
    terms = model.loss(model(**x, labels=y), y, 0.1)  # keyword inputs, labels for training-time losses
    assert terms and all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    sum(terms.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    moved = [g is not None and bool(g.abs().sum() > 0) for g in grads]
    # the gradient reaches the input side and the classifier (zero-initialised residual branches
    # of the ResNets get theirs once their last BN moves)
    assert moved[0] and moved[-1] and sum(moved) >= len(moved) // 3, (sum(moved), len(moved))

    model.eval()
    with torch.no_grad():
        out = model(**x)
    logits = out if isinstance(out, torch.Tensor) else next(iter(out.values()))
    assert isinstance(out, torch.Tensor) or set(out) <= {"rgb", "pose"}  # logits or per-modality logits
    assert logits.shape == (2, K)

    # model.pt holds the inference state; a fresh build loads it and predicts the same
    state = model.inference_state()
    assert not any(k.startswith(model.training_only) for k in state) if model.training_only else True
    save_checkpoint(tmp_path / "model.pt", state, cfg.to_dict(), [str(i) for i in range(K)])
    again = build_for_data(cfg, K, kind, data_options, load_pretrained=False).eval()
    again.load_inference_state(load_checkpoint(tmp_path / "model.pt")["state_dict"])
    with torch.no_grad():
        out2 = again(**x)
    for a, b in zip(*(([o] if isinstance(o, torch.Tensor) else list(o.values())) for o in (out, out2)), strict=True):
        torch.testing.assert_close(a, b)

    if hasattr(model, "branch_inputs"):  # two-modality models start from branch checkpoints
        assert hasattr(model, "load_branches") and set(model.branch_inputs.values()) <= {"frames", "heatmaps", "poses"}


@pytest.mark.parametrize("name", ["mvit_v2_s", "token_fusion", "rgbpose_conv3d"])
def test_models_with_fixed_geometry_refuse_other_views(name: str) -> None:
    from mgcli.data import view_config
    from mgcli.errors import MgError

    options, kind, data_options, _ = TINY[name]
    model = build_model(name, K, **{**options, **{k: v for k, v in data_options.items() if not isinstance(v, dict)}})
    bad = {
        "mvit_v2_s": {"clip_len": 8, "train_size": 32, "test_size": 32},
        "token_fusion": {"rgb_len": 4, "train_size": 64, "test_size": 32},
        "rgbpose_conv3d": {"speed_ratio": 2},
    }[name]
    with pytest.raises(MgError, match="data.view"):
        model.check_view(view_config(kind, bad))
