"""``init_from``: starting a two-modality model from branch checkpoints (PoseConv3D's two-step
initialisation; the token-fusion backbones). Which branches a model takes and how they are merged
is the model's own (``branch_inputs`` and ``load_branches`` of the model contract)."""

from __future__ import annotations

from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.models.weights import LoadReport
from mgcli.train.config import RunConfig


def branch_checkpoints(cfg: RunConfig, model: torch.nn.Module, class_names: list[str]) -> dict[str, dict[str, Any]]:
    """``init_from``'s branch checkpoints, one per modality of the model's ``branch_inputs``, each
    checked against the input its branch must have read and the classes; ``{modality: checkpoint}``."""
    from mgcli.models import MODELS

    inputs = getattr(model, "branch_inputs", None)
    if inputs is None or not hasattr(model, "load_branches"):
        raise MgError(f"init_from is for two-modality models (rgbpose_conv3d, token_fusion), not {cfg.model['name']}")
    if len(cfg.init_from) != len(inputs):
        raise MgError(f"init_from takes {len(inputs)} checkpoints ({', '.join(inputs)}), got {len(cfg.init_from)}")
    states = {}
    for (mod, kind), path in zip(inputs.items(), cfg.init_from, strict=True):
        state = load_checkpoint(path)
        name = str((state.get("config") or {}).get("model", {}).get("name", ""))
        spec = MODELS.get(name)
        if spec is None or spec.input_kind != kind:
            article = "an RGB" if mod == "rgb" else f"a {mod}"
            raise MgError(
                f"init_from: the {mod} checkpoint must come from {article} branch run (reading {kind}), "
                f"not {name or 'an unknown model'}",
                path,
            )
        if list(state["class_names"]) != list(class_names):
            raise MgError(
                f"the {mod} branch was trained on other classes ({len(state['class_names'])} vs {len(class_names)})",
                path,
            )
        states[mod] = state
    return states


def init_from_branches(cfg: RunConfig, model: torch.nn.Module, class_names: list[str]) -> LoadReport:
    """Load the branch checkpoints of ``init_from`` into ``model``; what was loaded, padded, left
    new and unused."""
    states = branch_checkpoints(cfg, model, class_names)
    paths = dict(zip(states, cfg.init_from, strict=True))
    try:
        report = model.load_branches({m: st["state_dict"] for m, st in states.items()})
        report.source = "init_from"
        return report
    except MgError as e:
        # the loaders name the branch they were filling ("the pose branch", "the rgb (MViT) branch")
        bad = next((paths[m] for m in paths if f"the {m} " in e.message), None)
        if bad is None:
            bad = next((paths[m] for m in paths if m in e.message), cfg.init_from[0])
        raise MgError(f"init_from: {e.message}", bad) from None
