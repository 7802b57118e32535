"""Datasets for a run, chosen from a table of data kinds.

A model reads one *data kind* (``ModelSpec.input_kind``); each kind has a view config (the fields
``data.view`` may set, checked) and a dataset class, and names the artifact ``data.path`` must be:

==============  ==============  ========================================  ===========================
kind            data.path       dataset                                   view config (``data.view``)
==============  ==============  ========================================  ===========================
``heatmaps``    heatmaps-*.h5   :class:`~mgcli.data.heatmaps.HeatmapClips`  ``PoseViewConfig``
``frames``      frames.h5       :class:`~mgcli.data.frames.FramesClips`     ``RGBViewConfig``
``poses``       poses.h5        :class:`~mgcli.data.skeleton.SkeletonClips` ``SkeletonViewConfig``
``rgbpose``     frames.h5 (+    :class:`~mgcli.data.paired.RGBPoseClips`    ``RGBPoseViewConfig``
                data.poses)
``rgbskeleton`` frames.h5 (+    :class:`~mgcli.data.paired.RGBSkeletonClips` ``RGBSkeletonViewConfig``
                data.poses)
``embeddings``  embeddings.h5   :class:`~mgcli.data.embeddings.EmbeddingWindows` ``EmbeddingViewConfig``
                (+ data.streams)
==============  ==============  ========================================  ===========================

Every dataset returns ``({input name: tensor}, label)`` (see :mod:`mgcli.data.base`): one view when
training, a leading view axis at test time; labels are -1 when unknown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgcli.data.base import ClipDataset
from mgcli.data.embeddings import EmbeddingViewConfig, EmbeddingWindows
from mgcli.data.frames import FramesClips, RGBViewConfig
from mgcli.data.heatmaps import HeatmapClips, PoseViewConfig
from mgcli.data.paired import RGBPoseClips, RGBPoseViewConfig, RGBSkeletonClips, RGBSkeletonViewConfig
from mgcli.data.skeleton import SkeletonClips, SkeletonViewConfig
from mgcli.data.transforms import CompactConfig
from mgcli.errors import MgError
from mgcli.io.h5 import schema_of

if TYPE_CHECKING:
    from mgcli.train.config import RunConfig

__all__ = [
    "KINDS",
    "ClipDataset",
    "CompactConfig",
    "DataKind",
    "artifact_kind",
    "data_kind",
    "open_split",
    "split_names",
    "view_config",
]

SCHEMAS = {
    "mgcli.heatmaps": "heatmaps",
    "mgcli.frames": "frames",
    "mgcli.poses": "poses",
    "mgcli.embeddings": "embeddings",
}


@dataclass(frozen=True)
class DataKind:
    """What a model's input kind reads: the artifact ``data.path`` must be, its view config and
    dataset, and whether ``data.poses`` is needed too."""

    artifact: str
    view: type
    dataset: type[ClipDataset]
    paired: bool = False


KINDS: dict[str, DataKind] = {
    "heatmaps": DataKind("heatmaps", PoseViewConfig, HeatmapClips),
    "frames": DataKind("frames", RGBViewConfig, FramesClips),
    "poses": DataKind("poses", SkeletonViewConfig, SkeletonClips),
    "rgbpose": DataKind("frames", RGBPoseViewConfig, RGBPoseClips, paired=True),
    "rgbskeleton": DataKind("frames", RGBSkeletonViewConfig, RGBSkeletonClips, paired=True),
    "embeddings": DataKind("embeddings", EmbeddingViewConfig, EmbeddingWindows),
}

# view fields that may be 0 (the rest of the int fields are counts or sizes, at least 1)
_MAY_BE_ZERO = {"threshold"}


def artifact_kind(path: str | Path) -> str:
    """``heatmaps``, ``frames`` or ``poses``, from the file's schema stamp."""
    path = Path(path)
    if not str(path) or not path.is_file():
        raise MgError(
            "data.path: file not found (set data.path=... to a heatmaps-*.h5, frames.h5, poses.h5 or embeddings.h5)",
            path,
        )
    schema = schema_of(path)
    if (schema or "").partition("/")[0] not in SCHEMAS:
        raise MgError(
            f"expected a heatmaps-*.h5, frames.h5, poses.h5 or embeddings.h5 artifact, found schema {schema!r}", path
        )
    return SCHEMAS[schema.partition("/")[0]]


def data_kind(cfg: RunConfig, path: str | Path | None = None) -> str:
    """The data kind the config's model reads (the artifact's kind for an unknown model name),
    checked against the artifact ``data.path`` (or ``path``) is."""
    from mgcli.models import MODELS

    path = Path(path or cfg.data.path)
    found = artifact_kind(path)
    spec = MODELS.get(cfg.model.get("name", ""))
    kind = spec.input_kind if spec is not None else found
    want = KINDS[kind]
    if want.artifact != found:
        if want.paired:
            raise MgError(
                f"model {cfg.model['name']} reads RGB frames and poses: data.path must be a frames.h5 "
                f"(and data.poses its poses.h5), not a {found} artifact",
                path,
            )
        raise MgError(f"model {cfg.model['name']} reads {kind}, but data.path is a {found} artifact", path)
    return kind


def view_config(kind: str, options: dict[str, Any], where: str | Path | None = None) -> Any:
    """The dataset's view config from ``data.view`` (unknown keys, wrong types and non-positive
    counts or sizes refused, nested sections too)."""
    from mgcli.train.config import from_dict

    view = from_dict(KINDS[kind].view, options, where, prefix="data.view.")
    _check_positive(view, "data.view.", where)
    return view


def _check_positive(view: Any, prefix: str, where: str | Path | None) -> None:
    for f in dataclasses.fields(view):
        value = getattr(view, f.name)
        if dataclasses.is_dataclass(value):
            _check_positive(value, f"{prefix}{f.name}.", where)
        elif isinstance(value, int) and not isinstance(value, bool) and value < (0 if f.name in _MAY_BE_ZERO else 1):
            raise MgError(f"{prefix}{f.name} must be at least {0 if f.name in _MAY_BE_ZERO else 1}, got {value}", where)
        elif isinstance(value, float) and value < 0:
            raise MgError(f"{prefix}{f.name} must not be negative, got {value}", where)


def open_split(
    cfg: RunConfig, split: str, train: bool, path: str | Path | None = None, num_clips: int = 0
) -> ClipDataset:
    """The dataset of one split of ``data.path`` (or ``path``); ``num_clips`` > 0 replaces the
    view's test clips per clip (views without them are as they are)."""
    path = Path(path or cfg.data.path)
    kind = data_kind(cfg, path)
    view = view_config(kind, cfg.data.view, path)
    if num_clips > 0 and hasattr(view, "num_clips"):
        view = dataclasses.replace(view, num_clips=num_clips)
    extra: dict[str, Any] = {"streams": list(cfg.data.streams)} if kind == "embeddings" else {}
    ds = KINDS[kind].dataset(path, split, train, view, seed=cfg.seed, poses=cfg.data.poses or None, **extra)
    if cfg.data.render_on == "cuda":
        ds.defer_rendering()  # training views only; test views are rendered (or read) as ever
    return ds


def split_names(path: str | Path) -> set[str]:
    """The splits the artifact's clip table holds."""
    import h5py

    from mgcli.io.h5 import read_table

    with h5py.File(path, "r") as f:
        return set(read_table(f["clips"])["split"].astype(str))
