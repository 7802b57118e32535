"""Keypoint streams for the emotion models, without any network: ``mg embed ROOT --model face-points
| body-motion`` reads the release's ``{vid}_openpose.xlsx`` (137 OpenPose points per frame: BODY_25,
the 70 face points, two hands of 21) and writes an ``embeddings.h5`` of interpretable descriptors.

They need no pretrained weights, so they also work where no SwinFace or Kinetics checkpoint can be
had, and every number in them can be read off a plot. Both are scale-free (the face in units of
the distance between the eye centres, the body in units of the video's median shoulder width), so
the xlsx's pixel resolution does not matter.

- ``face`` stream (``face-points``): facial-expression geometry at ``fps`` steps per second, each
  the mean over the frames nearest that step (a step every ``1/fps`` s averages ``1/fps`` s of
  frames). Points are taken in an eye-aligned frame: origin at the eyes' midpoint, x along the
  eye line, y perpendicular to it (down), unit the inter-ocular distance, so head roll, position
  and size drop out. :data:`FACE_FEATURES` names the descriptors: mouth-corner lift against the lip
  centre (outer and inner lips; the smile / lip-corner-depressor axis, FACS AU12 / AU15), mouth
  width and opening, the corners' drop below the eyes, brow height per side and at the inner and
  outer ends (AU1, AU2, AU4), the eyes' opening, the nose-to-upper-lip distance, and the head roll.
  A frame counts when both eyes, both mouth corners and the lip centre were found (confidence
  above ``min_conf``); a step with no such frame is kept but marked invalid.
- ``context`` stream (``body-motion``): behaviour over windows of ``window`` seconds, one every
  ``1/fps`` s, dated at the window's centre (:data:`BODY_FEATURES`): mean speeds of the head, neck,
  elbows, wrists and hands (the body's restlessness), sway of the neck, hand-to-face and
  hand-to-hand distances with the share of frames in which a hand is at the face, the hands touch
  or a hand is at the other elbow (self-touching, the self-adaptors of the iMiGUE classes), how
  high the hands are held, and how often the hands were seen.

Coordinates of a missing point (OpenPose writes 0, 0 with confidence 0) are never used: the
per-frame values are NaN there and the window means skip them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mgcli.errors import DataError, MgError

if TYPE_CHECKING:
    from mgcli.embed import EmbedReport

Progress = Callable[[int, int], None]

# OpenPose BODY_25 rows and the offsets of the face and hand blocks in the 137 points of the xlsx.
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = 0, 1, 2, 3, 4, 5, 6, 7
FACE0, LHAND0, RHAND0, POINTS = 25, 95, 116, 137

# The 70 face points follow the 68-point (iBUG) layout plus two pupils: 17-21 / 22-26 the right /
# left brow (the person's sides, outer end first / inner end first), 33 the nose tip, 36-41 /
# 42-47 the eyes, 48 / 54 the outer mouth corners, 51 / 57 the outer lip centres, 60 / 64 the
# inner corners, 62 / 66 the inner lip centres.
R_BROW, L_BROW = np.arange(17, 22), np.arange(22, 27)
R_EYE, L_EYE = np.arange(36, 42), np.arange(42, 48)
NOSE_TIP, MOUTH_R, MOUTH_L, LIP_TOP, LIP_BOTTOM = 33, 48, 54, 51, 57
INNER_R, INNER_L, INNER_TOP, INNER_BOTTOM = 60, 64, 62, 66
_FACE_NEEDED = np.concatenate([R_EYE, L_EYE, [MOUTH_R, MOUTH_L, LIP_TOP, LIP_BOTTOM]])

FACE_FEATURES: tuple[str, ...] = (
    "corner_lift",  # lip centre height minus the outer corners' height (+: corners up)
    "inner_corner_lift",  # the same for the inner lip line
    "mouth_width",  # outer corner to outer corner
    "mouth_open",  # inner lips apart
    "corner_drop",  # outer corners below the eye line
    "brow_right",  # mean height of the right brow above the eye line
    "brow_left",
    "brow_inner",  # inner brow ends (AU1 / AU4)
    "brow_outer",  # outer brow ends (AU2)
    "eye_open",  # lids apart, both eyes
    "nose_lip",  # nose tip to the upper lip
    "roll",  # head roll: angle of the eye line (radians)
)
BODY_FEATURES: tuple[str, ...] = (
    "speed_head",  # mean speeds, shoulder widths per second
    "speed_neck",
    "speed_elbows",
    "speed_wrists",
    "speed_hands",
    "speed_hands_std",
    "sway",  # std of the neck position in the window, shoulder widths
    "hand_face",  # the nearer hand's distance to the nose, shoulder widths
    "at_face",  # share of frames with a hand within AT_FACE of the nose
    "hand_hand",  # distance between the hands
    "hands_touch",  # share of frames with the hands within TOUCH of each other
    "at_elbow",  # share of frames with a hand within TOUCH of the other elbow (folded arms)
    "hand_height",  # the higher hand above the neck, shoulder widths
    "hands_seen",  # share of hand points found
)
AT_FACE = 0.6  # shoulder widths
TOUCH = 0.35


@dataclass(frozen=True)
class PointsOptions:
    fps: float = 2.0  # steps per second
    window: float = 1.0  # body-motion: seconds per window
    min_conf: float = 0.05  # points at or below count as missing

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise MgError(f"--fps must be positive, got {self.fps}")
        if not self.window > 0:
            raise MgError(f"--window must be positive (seconds), got {self.window}")
        if not 0 <= self.min_conf < 1:
            raise MgError(f"min_conf must be in [0, 1), got {self.min_conf}")


@contextmanager
def _quiet() -> Iterator[None]:
    """Silences numpy's "mean of empty slice" warnings (all-NaN rows are expected: no point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def _points(kp: np.ndarray, min_conf: float) -> np.ndarray:
    """[T, P, 2] float64 coordinates with NaN where the point is missing."""
    xy = kp[..., :2].astype(np.float64)
    missing = (kp[..., 2] <= min_conf) | ((kp[..., 0] == 0) & (kp[..., 1] == 0))
    xy[missing] = np.nan
    return xy


def face_geometry(kp: np.ndarray, min_conf: float = 0.05) -> np.ndarray:
    """Per-frame face descriptors ``[T, len(FACE_FEATURES)]`` (NaN rows where the face was not found)
    from OpenPose keypoints ``[T, 137, 3]`` (or the 70 face points alone, ``[T, 70, 3]``)."""
    face = kp[:, FACE0 : FACE0 + 70] if kp.shape[1] == POINTS else kp
    if face.shape[1] != 70:
        raise ValueError(f"expected 137 or 70 points, got {kp.shape[1]}")
    p = _points(face, min_conf)
    e_r, e_l = p[:, R_EYE].mean(1), p[:, L_EYE].mean(1)  # NaN unless every eye point was found
    axis = e_l - e_r
    dist = np.hypot(axis[:, 0], axis[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        u = axis / dist[:, None]
        v = np.stack([-u[:, 1], u[:, 0]], 1)  # x along the eye line, y perpendicular (image down)
        rel = p - ((e_r + e_l) / 2)[:, None]
        x = np.einsum("tpc,tc->tp", rel, u) / dist[:, None]
        y = np.einsum("tpc,tc->tp", rel, v) / dist[:, None]
    ok = np.isfinite(p[:, _FACE_NEEDED]).all((1, 2)) & (dist > 1e-6)

    def mean_y(idx: np.ndarray | list[int]) -> np.ndarray:
        return np.nanmean(y[:, idx], 1)

    with np.errstate(invalid="ignore"), _quiet():
        corners = (y[:, MOUTH_R] + y[:, MOUTH_L]) / 2
        feats = np.stack(
            [
                (y[:, LIP_TOP] + y[:, LIP_BOTTOM]) / 2 - corners,
                (y[:, INNER_TOP] + y[:, INNER_BOTTOM]) / 2 - (y[:, INNER_R] + y[:, INNER_L]) / 2,
                x[:, MOUTH_L] - x[:, MOUTH_R],
                y[:, INNER_BOTTOM] - y[:, INNER_TOP],
                corners,
                -mean_y(R_BROW),
                -mean_y(L_BROW),
                -mean_y([R_BROW[-1], L_BROW[0]]),
                -mean_y([R_BROW[0], L_BROW[-1]]),
                (mean_y([40, 41, 46, 47]) - mean_y([37, 38, 43, 44])),
                y[:, LIP_TOP] - y[:, NOSE_TIP],
                np.arctan2(u[:, 1], u[:, 0]),
            ],
            1,
        )
    feats[~ok] = np.nan
    return feats


def body_frames(kp: np.ndarray, fps: float, min_conf: float = 0.05) -> np.ndarray:
    """Per-frame body measures ``[T, 14]`` of OpenPose keypoints ``[T, 137, 3]`` at ``fps`` frames
    per second, in units of the video's median shoulder width: the speeds of head, neck, elbows,
    wrists and hands, the neck's x and y (for the sway), the nearer hand's distance to the nose and
    whether it is at the face, the hands' distance and whether they touch, whether a hand is at the
    other elbow, the higher hand's height above the neck, the share of hand points found. NaN where
    a measure's points are missing; :func:`body_steps` turns them into :data:`BODY_FEATURES`."""
    if kp.ndim != 3 or kp.shape[1] != POINTS:
        raise ValueError(f"expected [T, {POINTS}, 3] keypoints, got {kp.shape}")
    p = _points(kp, min_conf)
    sw = np.hypot(*(p[:, R_SHOULDER] - p[:, L_SHOULDER]).T)
    with _quiet():
        scale = float(np.nanmedian(sw)) if np.isfinite(sw).any() else float("nan")
    p = p / scale
    with _quiet():
        hands = np.stack([np.nanmean(p[:, RHAND0 : RHAND0 + 21], 1), np.nanmean(p[:, LHAND0 : LHAND0 + 21], 1)], 1)
        seen = kp[:, LHAND0:, 2] > min_conf
    wrists = p[:, [R_WRIST, L_WRIST]]
    hands = np.where(np.isfinite(hands), hands, wrists)  # a hand without hand points: its wrist

    def speed(a: np.ndarray) -> np.ndarray:  # [T, ...] per-frame speed, mean over the points given
        d = np.hypot(*np.moveaxis(np.diff(a, axis=0), -1, 0)) * fps
        d = d.reshape(len(d), -1)
        with _quiet():
            s = np.nanmean(d, 1)
        return np.concatenate([s[:1], s]) if len(s) else np.full(len(a), np.nan)

    nose, neck = p[:, NOSE], p[:, NECK]
    face_d = np.hypot(*np.moveaxis(hands - nose[:, None], -1, 0))  # [T, 2]
    hand_d = np.hypot(*(hands[:, 0] - hands[:, 1]).T)
    elbow_d = np.stack([np.hypot(*(hands[:, 0] - p[:, L_ELBOW]).T), np.hypot(*(hands[:, 1] - p[:, R_ELBOW]).T)], 1)
    with _quiet(), np.errstate(invalid="ignore"):
        near_face = np.nanmin(face_d, 1)
        values = np.stack(
            [
                speed(nose),
                speed(neck),
                speed(p[:, [R_ELBOW, L_ELBOW]]),
                speed(wrists),
                speed(hands),
                neck[:, 0],
                neck[:, 1],
                near_face,
                np.where(np.isfinite(near_face), near_face < AT_FACE, np.nan),
                hand_d,
                np.where(np.isfinite(hand_d), hand_d < TOUCH, np.nan),
                np.where(np.isfinite(elbow_d).any(1), np.nanmin(elbow_d, 1) < TOUCH, np.nan),
                np.nanmax(neck[:, None, 1] - hands[..., 1], 1),
                seen.mean(1),
            ],
            1,
        )
    return values


def _window_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the finite entries of ``values [T, F]`` over rows ``[start, end)``."""
    finite = np.isfinite(values)
    cs = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(np.where(finite, values, 0.0), 0)])
    cn = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(finite, 0)])
    return cs[ends] - cs[starts], cn[ends] - cn[starts]


def window_means(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean of the finite entries of ``values [T, F]`` over each window ``[start, end)`` (NaN where
    a window has none)."""
    s, n = _window_sums(values, starts, ends)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def window_stds(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Population std of the finite entries of ``values`` over each window (NaN below two)."""
    s, n = _window_sums(values, starts, ends)
    s2, _ = _window_sums(values**2, starts, ends)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = s2 / np.maximum(n, 1) - (s / np.maximum(n, 1)) ** 2
        return np.where(n > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)


def step_frames(num_frames: int, video_fps: float, fps: float) -> np.ndarray:
    """The frame of each step: ``round(k * video_fps / fps)`` for k = 0, 1, ... inside the video (the
    sampling of ``mg extract-faces``, so the face-points and face-crop streams line up)."""
    from mgcli.faces.extract import sample_frames

    return sample_frames(num_frames, video_fps, fps)


def face_steps(kp: np.ndarray, video_fps: float, opts: PointsOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vectors [K, F], frames [K], valid [K])`` of the face stream of one video."""
    per_frame = face_geometry(kp, opts.min_conf)
    n = len(per_frame)
    frames = step_frames(n, video_fps, opts.fps)
    half = max(0.5, video_fps / opts.fps / 2)
    starts = np.clip(np.ceil(frames - half + 1e-9).astype(np.int64), 0, n)
    ends = np.clip(np.floor(frames + half - 1e-9).astype(np.int64) + 1, 0, n)
    ends = np.maximum(ends, np.minimum(starts + 1, n))
    return _finish(window_means(per_frame, starts, ends), frames)


def body_steps(kp: np.ndarray, video_fps: float, opts: PointsOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vectors [K, F], frames [K], valid [K])`` of the body-motion stream of one video."""
    values = body_frames(kp, video_fps, opts.min_conf)
    n = len(values)
    frames = step_frames(n, video_fps, opts.fps)
    half = opts.window * video_fps / 2
    starts = np.clip(np.round(frames - half).astype(np.int64), 0, n)
    ends = np.clip(np.round(frames + half).astype(np.int64), 0, n)
    ends = np.maximum(ends, np.minimum(starts + 1, n))
    means = window_means(values, starts, ends)
    stds = window_stds(values, starts, ends)
    sway = np.sqrt(np.nansum(stds[:, 5:7] ** 2, 1, where=np.isfinite(stds[:, 5:7])))
    sway[~np.isfinite(stds[:, 5:7]).any(1)] = np.nan
    out = np.concatenate([means[:, :5], stds[:, 4:5], sway[:, None], means[:, 7:]], 1)
    return _finish(out, frames)


def _finish(vectors: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps with a NaN in some descriptor: the NaNs set to 0 and the step kept as valid when at
    least half its descriptors are there (a step without any stays, marked invalid)."""
    finite = np.isfinite(vectors)
    valid = finite.mean(1) >= 0.5 if vectors.shape[1] else np.zeros(len(vectors), bool)
    return np.where(finite, vectors, 0.0).astype(np.float32), frames.astype(np.int64), valid


STREAM_OF = {"face-points": ("face", FACE_FEATURES, face_steps), "body-motion": ("context", BODY_FEATURES, body_steps)}


def embed_points(
    root: str | Path,
    out: str | Path,
    kind: str,
    opts: PointsOptions = PointsOptions(),
    labels_file: str | Path | None = None,
    protocol: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> EmbedReport:
    """Write the ``face-points`` or ``body-motion`` stream of every video of the release ``root``
    that has a ``{vid}_openpose.xlsx`` (videos without one, or with an unreadable one, are reported
    in ``failed`` and left out). Returns the :class:`mgcli.embed.EmbedReport`."""
    from mgcli.dataset.emotion import emotion_videos
    from mgcli.dataset.formats import read_openpose_xlsx
    from mgcli.dataset.release import Release
    from mgcli.embed import EmbedReport, embed_each_video
    from mgcli.io.atomic import check_output
    from mgcli.io.embeddings import EmbeddingsWriter, VideoEmbeddings

    if kind not in STREAM_OF:
        raise MgError(f"unknown keypoint stream {kind!r} (face-points or body-motion)")
    stream, names, steps = STREAM_OF[kind]
    out = Path(out)
    check_output(out, overwrite)
    release = Release(root)
    table = emotion_videos(release, labels_file, protocol)
    if not len(table):
        raise DataError("no videos in the release", release.root)
    report = EmbedReport(out, stream, len(names), "none (keypoint descriptors)")

    def one(vid: str) -> tuple[VideoEmbeddings, float, int]:
        entry = release.videos[vid]
        if entry.openpose_xlsx is None:
            raise DataError("no {vid}_openpose.xlsx (the keypoint streams read OpenPose points)", release.root)
        kp = read_openpose_xlsx(entry.openpose_xlsx)
        info = release.video_info(vid)
        video_fps = float(info.fps) if info else 25.0
        vectors, frames, valid = steps(kp, video_fps, opts)
        if not len(frames):
            raise DataError("the skeleton file has no frames", entry.openpose_xlsx)
        return VideoEmbeddings(vid, vectors, frames, valid), video_fps, max(int(info.frames) if info else 0, len(kp))

    attrs = {"weights": report.weights, "features": list(names), "points": vars(opts)}
    with EmbeddingsWriter(out, stream, kind.replace("-", "_"), len(names), overwrite, **attrs) as w:
        embed_each_video(table, w, report, one, root, progress)
    return report
