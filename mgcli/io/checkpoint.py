"""``model.pt``: a plain dict, always read back with ``torch.load(weights_only=True)``.

Keys: ``schema`` (``mgcli.checkpoint/1``), ``mgcli_version``, ``state_dict``, ``config`` (the
resolved run config, plain YAML-able types), ``class_names``, and anything extra the caller adds
(optimizer state, epoch, EMA prototypes...) as long as it is tensors and plain containers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgcli import __version__
from mgcli.errors import SchemaError
from mgcli.io.atomic import atomic_output

CHECKPOINT_SCHEMA = "mgcli.checkpoint/1"
REQUIRED_KEYS = ("schema", "state_dict", "config", "class_names")


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    config: dict[str, Any],
    class_names: list[str],
    overwrite: bool = True,
    **extra: Any,
) -> Path:
    payload = {
        "schema": CHECKPOINT_SCHEMA,
        "mgcli_version": __version__,
        "state_dict": state_dict,
        "config": config,
        "class_names": list(class_names),
        **extra,
    }
    with atomic_output(path, overwrite) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SchemaError("checkpoint not found", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors for foreign or damaged files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SchemaError(f"not a loadable mgcli checkpoint ({first[:160]})", path) from None
    if not isinstance(payload, dict) or payload.get("schema") != CHECKPOINT_SCHEMA:
        found = payload.get("schema") if isinstance(payload, dict) else type(payload).__name__
        raise SchemaError(f"expected schema {CHECKPOINT_SCHEMA}, found {found!r}", path)
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise SchemaError(f"checkpoint lacks {missing}", path)
    return payload
