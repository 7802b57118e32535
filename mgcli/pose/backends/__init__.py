"""2D pose backends for ``mg extract-pose --source video``.

A backend turns a batch of RGB frames into detections (keypoints in pixels, scores, optional
boxes) in its native keypoint layout. Backends are created inside each worker process from a
:class:`BackendSpec`, so models are never pickled.

- ``mediapipe``: MediaPipe Pose (legacy solution, "full" model shipped inside the wheel; runs
  offline on CPU). One person per frame. Layout ``mediapipe33``.
- ``mediapipe-holistic``: MediaPipe Holistic, pose + both hands (all shipped in the wheel).
  One person per frame. Layout ``mediapipe75`` (has real fingertips, e.g. for ``upper22``).
- ``mmpose``: any MMPose top-down model from a config + checkpoint (or an alias where models can
  be downloaded), person boxes from an MMDetection detector when given, else the whole frame.
  Batched over frames; CUDA when present. Layout from the model's dataset (``coco17`` for COCO).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mgcli.errors import MgError
from mgcli.pose.tracking import Detection

BACKENDS = ("mediapipe", "mediapipe-holistic", "mmpose")


class PoseBackend(ABC):
    name: str = ""
    layout: str = ""
    max_persons: int | None = None  # None: as many as the model finds
    batch_size: int = 1

    @abstractmethod
    def process(self, frames_rgb: list[np.ndarray]) -> list[list[Detection]]:
        """Detections for each frame of a batch (frames of one video, in order)."""

    def start_video(self) -> None:
        """Forget tracking state carried between frames (called before each video)."""

    def close(self) -> None:
        """Release the model."""

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class BackendSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def create(self) -> PoseBackend:
        if self.name in ("mediapipe", "mediapipe-holistic"):
            from mgcli.pose.backends.mediapipe import MediaPipeBackend

            return MediaPipeBackend(holistic=self.name == "mediapipe-holistic", **self.options)
        if self.name == "mmpose":
            from mgcli.pose.backends.mmpose import MMPoseBackend

            return MMPoseBackend(**self.options)
        raise MgError(f"unknown pose backend {self.name!r} (known: {', '.join(BACKENDS)})")


def backend_spec(
    name: str | None,
    pose_config: str | None = None,
    pose_checkpoint: str | None = None,
    det_config: str | None = None,
    det_checkpoint: str | None = None,
    device: str | None = None,
    batch_size: int = 16,
) -> BackendSpec | None:
    """The spec of ``--backend NAME`` (``None`` without one). The model options only reach the
    ``mmpose`` backend; the MediaPipe backends take none and ignore them."""
    if name is None:
        return None
    if name != "mmpose":
        return BackendSpec(name)
    options = {
        "config": pose_config,
        "checkpoint": pose_checkpoint,
        "det_config": det_config,
        "det_checkpoint": det_checkpoint,
        "device": device,
        "batch_size": batch_size,
    }
    return BackendSpec(name, options)
