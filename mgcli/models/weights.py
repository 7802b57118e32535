"""Pretrained weights: torchvision's weights enums (downloaded once into ``$TORCH_HOME``) and state
dicts on disk, each failing with one clear line when they are not available here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgcli.errors import MgError


def _reason(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__


def fetch(weights: Any, what: str, fallback: str) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights enum member; ``what`` names it and ``fallback``
    says what to do instead, in the error raised when it cannot be fetched (offline, proxy, hash)."""
    try:
        return dict(weights.get_state_dict(progress=False))
    except Exception as e:  # no network, proxy, hash mismatch: all mean "not available here"
        raise MgError(f"could not fetch the {what} weights ({_reason(e)}); {fallback}") from None


def read_state_dict(path: str | Path, hint: str) -> dict[str, torch.Tensor]:
    """A state dict from a file (``torch.load(weights_only=True)``); a checkpoint that wraps its
    weights under ``"state_dict"`` is unwrapped. ``hint``: what may be given instead of a missing file."""
    path = Path(path)
    if not path.is_file():
        raise MgError(f"pretrained weights not found ({hint})", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and runtime errors for foreign or damaged files
        raise MgError(f"not a loadable state dict ({_reason(e)})", path) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MgError("expected a state dict (parameter name -> tensor)", path)
    return state
