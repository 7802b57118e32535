"""Datasets for a run, chosen by the artifact the config points at.

- ``heatmaps-*.h5`` -> :class:`mgcli.heatmaps.build.HeatmapClips` (PoseConv3D views; options in
  ``data.view`` are the fields of :class:`mgcli.heatmaps.pipeline.PoseViewConfig`);
- ``frames.h5`` -> :class:`mgcli.train.frames_data.FramesClips` (RGB views; options are the fields
  of :class:`mgcli.train.frames_data.RGBViewConfig`);
- ``frames.h5`` + ``data.poses`` for a two-pathway model (``rgbpose``) ->
  :class:`mgcli.train.rgbpose_data.RGBPoseClips` (paired views; options are the fields of
  :class:`mgcli.train.rgbpose_data.RGBPoseViewConfig`);
- ``poses.h5`` -> :class:`mgcli.train.skeleton_data.SkeletonClips` (skeleton sequences for graph
  networks; options: :class:`mgcli.train.skeleton_data.SkeletonViewConfig`);
- ``frames.h5`` + ``data.poses`` for the token-fusion model (``rgbskeleton``) ->
  :class:`mgcli.train.skeleton_data.RGBSkeletonClips` (options:
  :class:`mgcli.train.skeleton_data.RGBSkeletonViewConfig`).

They return ``(sample, label)``: one view ``[C, T, H, W]`` when training, ``[V, C, T, H, W]`` views
at test time (a dict of such tensors, one per modality, for ``rgbpose``); labels are -1 when unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mgcli.errors import MgError
from mgcli.io.h5 import schema_of
from mgcli.train.config import RunConfig, from_dict

KINDS = {"mgcli.heatmaps": "heatmaps", "mgcli.frames": "frames", "mgcli.poses": "poses"}
PAIRED = {"rgbpose": "heatmaps", "rgbskeleton": "skeletons"}  # paired kinds: frames.h5 + data.poses


def artifact_kind(path: str | Path) -> str:
    """``heatmaps``, ``frames`` or ``poses``, from the file's schema stamp."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise MgError("data.path: file not found (set data.path=... to a heatmaps-*.h5, frames.h5 or poses.h5)", path)
    schema = schema_of(path)
    if (schema or "").partition("/")[0] not in KINDS:
        raise MgError(f"expected a heatmaps-*.h5, frames.h5 or poses.h5 artifact, found schema {schema!r}", path)
    return KINDS[schema.partition("/")[0]]


def data_kind(cfg: RunConfig, path: str | Path | None = None) -> str:
    """What the run reads: the artifact's kind, or ``rgbpose`` / ``rgbskeleton`` when the model
    takes RGB and pose together (then ``data.path`` must be a ``frames.h5``)."""
    from mgcli.models import MODELS

    path = Path(path or cfg.data.path)
    kind = artifact_kind(path)
    spec = MODELS.get(cfg.model.get("name", ""))
    if spec is not None and spec.input_kind in PAIRED:
        if kind != "frames":
            raise MgError(f"model {cfg.model['name']} reads RGB frames and poses: data.path must be a frames.h5 "
                          f"(and data.poses its poses.h5), not a {kind} artifact", path)
        return spec.input_kind
    return kind


def view_config(kind: str, options: dict[str, Any], where: str | Path | None = None) -> Any:
    """The dataset's view config from ``data.view`` (unknown keys and wrong types refused)."""
    if kind == "heatmaps":
        from mgcli.heatmaps.pipeline import PoseViewConfig

        return from_dict(PoseViewConfig, options, where, prefix="data.view.")
    if kind == "rgbpose":
        from mgcli.train.rgbpose_data import RGBPoseViewConfig

        return from_dict(RGBPoseViewConfig, options, where, prefix="data.view.")
    if kind == "poses":
        from mgcli.train.skeleton_data import SkeletonViewConfig

        return from_dict(SkeletonViewConfig, options, where, prefix="data.view.")
    if kind == "rgbskeleton":
        from mgcli.train.skeleton_data import RGBSkeletonViewConfig

        return from_dict(RGBSkeletonViewConfig, options, where, prefix="data.view.")
    from mgcli.train.frames_data import RGBViewConfig

    return from_dict(RGBViewConfig, options, where, prefix="data.view.")


def open_split(cfg: RunConfig, split: str, train: bool, path: str | Path | None = None) -> torch.utils.data.Dataset:
    """The dataset of one split of ``data.path`` (or ``path``)."""
    path = Path(path or cfg.data.path)
    kind = data_kind(cfg, path)
    view = view_config(kind, cfg.data.view)
    if kind == "heatmaps":
        from mgcli.heatmaps.build import HeatmapClips

        return HeatmapClips(path, split, train, view, seed=cfg.seed)
    if kind == "rgbpose":
        from mgcli.train.rgbpose_data import RGBPoseClips

        return RGBPoseClips(path, cfg.data.poses, split, train, view, seed=cfg.seed)
    if kind == "poses":
        from mgcli.train.skeleton_data import SkeletonClips

        return SkeletonClips(path, split, train, view, seed=cfg.seed)
    if kind == "rgbskeleton":
        from mgcli.train.skeleton_data import RGBSkeletonClips

        return RGBSkeletonClips(path, cfg.data.poses, split, train, view, seed=cfg.seed)
    from mgcli.train.frames_data import FramesClips

    return FramesClips(path, split, train, view, seed=cfg.seed, poses=cfg.data.poses or None)


def split_names(path: str | Path) -> set[str]:
    """The splits the artifact's clip table holds."""
    import h5py

    from mgcli.io.h5 import read_table

    with h5py.File(path, "r") as f:
        return set(read_table(f["clips"])["split"].astype(str))
