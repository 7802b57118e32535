"""The MiGA release: clip tables, label maps, skeleton formats and the synthetic sample."""

from mgcli.dataset.labels import CLASS_NAMES, DEFAULT_LABEL_MAP, LabelMap
from mgcli.dataset.release import CLIP_COLUMNS, SPLITS, Release, VideoEntry, classify_folder, probe_video

__all__ = [
    "CLASS_NAMES",
    "CLIP_COLUMNS",
    "DEFAULT_LABEL_MAP",
    "SPLITS",
    "LabelMap",
    "Release",
    "VideoEntry",
    "classify_folder",
    "probe_video",
]
