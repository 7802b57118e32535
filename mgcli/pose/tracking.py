"""Person tracking across frames and the choice of who is "person 0".

Detections are matched to tracks greedily by box IoU (highest first), so a person keeps their
index while they stay in view; a track unseen for ``max_gap`` processed frames ends (frames the
model skipped, e.g. between clips, do not count). The interviewee is the
track with the largest sum over frames of (box area x centrality), centrality falling linearly
from 1 at the image centre to 0 at the corners: the largest, most central, longest-seen person.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detection:
    keypoint: np.ndarray  # [V, 2] pixels
    score: np.ndarray  # [V]
    bbox: np.ndarray | None = None  # [4] x1, y1, x2, y2; from the keypoints when None

    def box(self, min_score: float = 0.05) -> np.ndarray:
        if self.bbox is not None:
            return np.asarray(self.bbox, np.float32)
        ok = self.score > min_score
        pts = self.keypoint[ok] if ok.any() else self.keypoint
        return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    last_box: np.ndarray | None = None
    last_frame: int = -1
    last_step: int = -1


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes ``a [N, 4]`` and ``b [M, 4]`` -> ``[N, M]``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class Tracker:
    def __init__(self, iou_threshold: float = 0.3, max_gap: int = 30) -> None:
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.tracks: list[Track] = []
        self.step = -1

    def update(self, frame: int, detections: list[Detection]) -> None:
        """Add one processed frame's detections (frames in increasing order)."""
        self.step += 1
        live = [t for t in self.tracks if self.step - t.last_step <= self.max_gap]
        boxes = np.stack([d.box() for d in detections]) if detections else np.zeros((0, 4), np.float32)
        taken: set[int] = set()
        if live and detections:
            overlap = iou(np.stack([t.last_box for t in live]), boxes)  # type: ignore[misc]
            for flat in np.argsort(-overlap, axis=None):
                ti, di = np.unravel_index(flat, overlap.shape)
                if overlap[ti, di] < self.iou_threshold:
                    break
                track = live[ti]
                if track.last_frame == frame or di in taken:
                    continue
                self._extend(track, frame, self.step, detections[di], boxes[di])
                taken.add(int(di))
        for di, det in enumerate(detections):
            if di not in taken:
                track = Track()
                self.tracks.append(track)
                self._extend(track, frame, self.step, det, boxes[di])

    @staticmethod
    def _extend(track: Track, frame: int, step: int, det: Detection, box: np.ndarray) -> None:
        track.frames.append(frame)
        track.detections.append(det)
        track.last_box, track.last_frame, track.last_step = box, frame, step

    def ranked(self, img_shape: tuple[int, int]) -> list[Track]:
        """Tracks, the interviewee first (largest sum of area x centrality)."""
        h, w = img_shape
        centre, half_diag = np.array([w / 2, h / 2]), np.hypot(w / 2, h / 2)

        def weight(track: Track) -> float:
            total = 0.0
            for det in track.detections:
                b = det.box()
                area = max(0.0, float((b[2] - b[0]) * (b[3] - b[1])))
                dist = np.hypot(*(((b[:2] + b[2:]) / 2) - centre)) / half_diag
                total += area * max(0.0, 1.0 - float(dist))
            return total

        return sorted(self.tracks, key=weight, reverse=True)


def assemble(tracks: list[Track], num_frames: int, num_joints: int, max_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """``keypoint [M, T, V, 2]`` and ``keypoint_score [M, T, V]`` from the first ``max_persons``
    tracks (M >= 1: a video with nobody gives one all-zero person)."""
    chosen = tracks[:max_persons]
    m = max(1, len(chosen))
    kp = np.zeros((m, num_frames, num_joints, 2), np.float32)
    sc = np.zeros((m, num_frames, num_joints), np.float32)
    for i, track in enumerate(chosen):
        for t, det in zip(track.frames, track.detections, strict=True):
            kp[i, t], sc[i, t] = det.keypoint, det.score
    return kp, sc
