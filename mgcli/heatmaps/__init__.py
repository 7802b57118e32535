"""PoseConv3D heatmaps: the vectorised renderer and the build-heatmaps stage (the pose pipeline and the
heatmap dataset are in :mod:`mgcli.data`)."""

from mgcli.heatmaps.render import generate

__all__ = ["generate"]
