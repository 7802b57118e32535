"""``--model`` of the training commands as config overrides.

``--model NAME`` sets ``model.name``; a name of ``mg models`` may be written with dashes
(``mvit-v2-s`` is ``mvit_v2_s``, ``token-fusion`` is ``token_fusion``). The aliases below also set
the data options their model implies (the 2s-AGCN joint and bone streams read the same poses.h5).
Overrides given after them on the command line still win.

Plain data, no torch: the command line reads it before any model is built.
"""

from __future__ import annotations

# --model shorthands: the model name plus the data options it implies.
MODEL_ALIASES: dict[str, list[str]] = {
    "agcn-joint": ["model.name=agcn", "data.view.stream=joint"],
    "agcn-bone": ["model.name=agcn", "data.view.stream=bone"],
}


def model_overrides(model: str | None) -> list[str]:
    """``--model`` as config overrides (``mvit-v2-s`` is ``model.name=mvit_v2_s``)."""
    if model is None:
        return []
    return list(MODEL_ALIASES.get(model, [f"model.name={model.replace('-', '_')}"]))
