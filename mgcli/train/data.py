"""Datasets for a run, chosen by the artifact the config points at.

- ``heatmaps-*.h5`` -> :class:`mgcli.heatmaps.build.HeatmapClips` (PoseConv3D views; options in
  ``data.view`` are the fields of :class:`mgcli.heatmaps.pipeline.PoseViewConfig`);
- ``frames.h5`` -> :class:`mgcli.train.frames_data.FramesClips` (RGB views; options are the fields
  of :class:`mgcli.train.frames_data.RGBViewConfig`).

Both return ``(tensor, label)``: one view ``[C, T, H, W]`` when training, ``[V, C, T, H, W]`` views
at test time; labels are -1 when unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.io.h5 import schema_of
from mgcli.train.config import RunConfig, from_dict

KINDS = {"mgcli.heatmaps": "heatmaps", "mgcli.frames": "frames"}


def artifact_kind(path: str | Path) -> str:
    """``heatmaps`` or ``frames``, from the file's schema stamp."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise MgError("data.path: file not found (set data.path=... to a heatmaps-*.h5 or frames.h5)", path)
    schema = schema_of(path)
    if (schema or "").partition("/")[0] not in KINDS:
        raise MgError(f"expected a heatmaps-*.h5 or frames.h5 artifact, found schema {schema!r}", path)
    return KINDS[schema.partition("/")[0]]


def view_config(kind: str, options: dict[str, Any], where: str | Path | None = None) -> Any:
    """The dataset's view config from ``data.view`` (unknown keys and wrong types refused)."""
    if kind == "heatmaps":
        from mgcli.heatmaps.pipeline import PoseViewConfig

        return from_dict(PoseViewConfig, options, where, prefix="data.view.")
    from mgcli.train.frames_data import RGBViewConfig

    return from_dict(RGBViewConfig, options, where, prefix="data.view.")


def open_split(cfg: RunConfig, split: str, train: bool, path: str | Path | None = None) -> torch.utils.data.Dataset:
    """The dataset of one split of ``data.path`` (or ``path``)."""
    path = Path(path or cfg.data.path)
    kind = artifact_kind(path)
    view = view_config(kind, cfg.data.view)
    if kind == "heatmaps":
        from mgcli.heatmaps.build import HeatmapClips

        return HeatmapClips(path, split, train, view, seed=cfg.seed)
    from mgcli.train.frames_data import FramesClips

    return FramesClips(path, split, train, view, seed=cfg.seed, poses=cfg.data.poses or None)


def split_names(path: str | Path) -> set[str]:
    """The splits the artifact's clip table holds."""
    import h5py

    from mgcli.io.h5 import read_table

    with h5py.File(path, "r") as f:
        return set(read_table(f["clips"])["split"].astype(str))
