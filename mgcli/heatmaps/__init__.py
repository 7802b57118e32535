"""PoseConv3D heatmaps: the vectorised renderer, the pose pipeline and the build-heatmaps stage."""

from mgcli.heatmaps.render import generate

__all__ = ["generate"]
