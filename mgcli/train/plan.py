"""Checking a run before any process starts: data, model, branch checkpoints and run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mgcli.errors import MgError, OutputExistsError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.train.config import RunConfig
from mgcli.train.state import RUN_FILES, check_config_change


@dataclass(frozen=True)
class RunPlan:
    """What :func:`prepare` found: the data kind, the model options the data fixes, the classes,
    the splits of the artifact, the model's size and what its pretrained loads reported."""

    kind: str
    data_options: dict[str, Any]
    class_names: list[str]
    splits: frozenset[str]
    params: int
    load_reports: tuple[str, ...] = ()


def prepare(cfg: RunConfig, resume: bool = False, overwrite: bool = False, check_outputs: bool = True) -> RunPlan:
    """Check everything a run needs before any process starts: data, model options and its view,
    branch checkpoints, run folder (``check_outputs``: refuse to replace a run unless ``overwrite``,
    find ``last.pt`` to resume). Pretrained weights are fetched here, once."""
    from mgcli.data import data_kind, open_split, split_names
    from mgcli.train.build import build_for_data
    from mgcli.train.init import branch_checkpoints

    if resume and overwrite:
        raise MgError("--resume and --overwrite exclude each other")
    path = Path(cfg.data.path)
    kind = data_kind(cfg, path)
    train = open_split(cfg, cfg.data.train_split, train=True)
    if (np.asarray(train.labels) < 0).any():
        raise MgError(f"the {cfg.data.train_split} split has clips without labels", path)
    classes = list(train.class_names)
    model = build_for_data(
        cfg,
        len(classes),
        kind,
        train.data_options,
        path,
        load_pretrained=not resume and not cfg.init_from,
        training_classes=classes,
    )
    model.check_view(train.view, path)
    if cfg.init_from and not resume:
        branch_checkpoints(cfg, model, classes)  # fail here, not in N processes
    plan = RunPlan(
        kind,
        train.data_options,
        classes,
        frozenset(split_names(path)),
        sum(p.numel() for p in model.parameters()),
        tuple(r.describe() for r in getattr(model, "load_reports", ())),
    )
    if check_outputs:
        run_dir = cfg.run_dir
        last = run_dir / "last.pt"
        if resume:
            if not last.is_file():
                raise MgError("nothing to resume: no last.pt (start the run without --resume)", run_dir)
            check_config_change(load_checkpoint(last)["config"], cfg.to_dict(), last)
        # A start that failed before its first epoch leaves only config.yaml: nothing to keep, so
        # starting again replaces it without --overwrite.
        elif not overwrite and any((run_dir / f).exists() for f in RUN_FILES if f != "config.yaml"):
            raise OutputExistsError(
                "the run folder already holds a run (pass --resume to continue it or --overwrite)", run_dir
            )
    return plan
