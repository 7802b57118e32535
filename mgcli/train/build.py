"""Building a run's model for the data it reads.

The data fixes some model options (a dataset's ``data_options``: ``in_channels``, a skeleton's
``layout`` and persons, per pathway for two-modality models): they are filled in where the config
leaves them out and must agree where it sets them. Everything else about a model (its geometry
checks, training-only parts, branch initialisation) is the model's own, by the contract of
:mod:`mgcli.models.base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.train.config import RunConfig


def merge_data_options(
    options: dict[str, Any], data: dict[str, Any], where: Path | None, prefix: str = "model."
) -> dict[str, Any]:
    """``options`` with the data's options filled in (nested sections too), or one line naming the
    option that disagrees with the data."""
    out = dict(options)
    for key, value in data.items():
        if isinstance(value, dict):
            sub = out.get(key) or {}
            if not isinstance(sub, dict):
                raise MgError(f"{prefix}{key} must be a mapping of options, got {sub!r}", where)
            out[key] = merge_data_options(sub, value, where, f"{prefix}{key}.")
            continue
        given = out.setdefault(key, value)
        if given != value:
            raise MgError(
                f"{prefix}{key} is {given!r} but the data has {value!r}; leave it unset or make them agree", where
            )
    return out


def without_pretrained(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with every ``pretrained`` (nested too) set to None: the weights come from a checkpoint."""
    out = {}
    for key, value in options.items():
        if key == "pretrained":
            value = None
        elif isinstance(value, dict):
            value = without_pretrained(value)
        out[key] = value
    return out


def build_for_data(
    cfg: RunConfig,
    num_classes: int,
    kind: str,
    data_options: dict[str, Any],
    where: Path | None = None,
    load_pretrained: bool = True,
    training_classes: list[str] | None = None,
) -> torch.nn.Module:
    """The config's model, built for the data kind it reads and the data's options.

    ``load_pretrained=False`` when the weights will come from a checkpoint anyway (no download of
    ``pretrained`` weights). ``training_classes`` (the class names) builds the model for training:
    with its training-only parts, such as the semantic embedding loss of ``train.semantic_vectors``."""
    from mgcli.models import MODELS, build_model

    name = cfg.model["name"]
    spec = MODELS.get(name)
    if spec is not None and spec.input_kind != kind:
        raise MgError(f"model {name} reads {spec.input_kind}, but data.path is a {kind} artifact", where)
    options = merge_data_options({k: v for k, v in cfg.model.items() if k != "name"}, data_options, where)
    if not load_pretrained:
        options = without_pretrained(options)
    model = build_model(name, num_classes, **options)
    if training_classes is not None and cfg.train.semantic_vectors:
        from mgcli.models.semantic import SemanticEmbedding, read_class_vectors

        if not hasattr(model, "attach_semantic"):
            raise MgError(
                f"train.semantic_vectors needs a single-stream PoseConv3D / SlowOnly model, not {name}", where
            )
        if cfg.train.semantic_tau <= 0:
            raise MgError(f"train.semantic_tau must be positive, got {cfg.train.semantic_tau}", where)
        vectors = read_class_vectors(cfg.train.semantic_vectors, training_classes)
        model.attach_semantic(
            SemanticEmbedding(model.head.in_channels, vectors, cfg.train.semantic_tau, cfg.train.semantic_weight)
        )
    return model
