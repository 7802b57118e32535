"""Artifact formats (schema-stamped, atomically written, validated on read)."""

from mgcli.io.atomic import AtomicOutput, atomic_output
from mgcli.io.frames import FramesFile, FramesWriter
from mgcli.io.heatmaps import HeatmapsFile, HeatmapsWriter
from mgcli.io.poses import PosesFile, PosesWriter, VideoPoses
from mgcli.io.scores import Scores, check_probabilities, read_scores, write_scores

__all__ = [
    "AtomicOutput",
    "FramesFile",
    "FramesWriter",
    "HeatmapsFile",
    "HeatmapsWriter",
    "PosesFile",
    "PosesWriter",
    "Scores",
    "VideoPoses",
    "atomic_output",
    "check_probabilities",
    "load_checkpoint",
    "read_scores",
    "save_checkpoint",
    "write_scores",
]


def __getattr__(name: str) -> object:
    # checkpoint I/O needs torch (seconds to import): load it only when asked for
    if name in ("load_checkpoint", "save_checkpoint"):
        from mgcli.io import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'mgcli.io' has no attribute {name!r}")
