"""Procedural interviewee renderer behind the synthetic iMiGUE sample (``mg sample-data``).

What is rendered
----------------
One seated person per video, press-conference style: a plain (sometimes sponsor-patterned) backdrop,
a table hiding everything below the waist (optionally a microphone and a name plate on it), head with
hair, ears and facial features, a jacket or shirt (optionally with collar and tie), two arms and two
hands with five fingers. Between gestures the person idles: breathing, slow head sway and lean,
blinks, hands resting on the table with a slight drift. Each gesture eases in, holds or oscillates
and eases back to rest; amplitude, speed and the hand used vary per subject and per repetition.

Everything is computed as keypoints first, vectorised over the whole video: a face template
(70 OpenPose face points, ears and the head outline) moved by a head pose, a body skeleton with
two-link inverse kinematics for the arms, and a 21-point hand model (curl, splay, pronation).
The frame is then drawn from exactly those points with a handful of cv2 primitives, so pixels and
the ground-truth OpenPose-137 keypoints agree. Camera jitter (a small drifting translation) moves
both. :func:`openpose_noise` turns the clean points into OpenPose-like detections.

Classes and why these
---------------------
Ten classes (see :data:`CLASS_MOTIONS`), each with its own location, hand shape and rhythm, plus two
deliberately confusable pairs that make the modalities complementary:

* appearance pair, rub hand (22) / play things (25): the keypoint motion is *identical* (same
  random draws, same formulas); play things only adds a brightly coloured object (pen, phone,
  ball or cup) held between the hands, which exists in the pixels and not in the skeleton. A
  pose-only model cannot beat chance on this pair, an RGB model can.
* temporal pair, touch face (3) / rub eyes (6): same hand shape, same approach path to the eye,
  the same small stroke of hand and fingers around the same mean position; touch face makes one
  slow stroke over the whole segment, rub eyes rubs at about 4-5 Hz. Single frames therefore look
  alike, and eight frames sampled uniformly from a 1-2.5 s clip land at unrelated phases of the
  rubbing (a few pixels at 180 px), whereas 32+ consecutive keypoint frames resolve the oscillation.

All other classes differ in where the hands go, whether one or both hands move, the hand shape
and the rhythm, so both modalities can separate them.

Emotion cues (only with ``mg sample-data --preset emotion``; see :class:`EmotionCues`)
-------------------------------------------------------------------------------------
A facial expression (mouth corners and brows moved in the face template, so the drawn face and the
70 face points agree) of signed intensity following ``z_face``, and restless behaviour following
``z_beh``: more self-touching gestures (:func:`plan_emotion_segments`), larger idle motion, torso
rocking and hand jiggle. Without cues every function here computes exactly what it did before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

BGR = tuple[int, int, int]

N_KEYPOINTS = 137
FACE0, LHAND0, RHAND0 = 25, 95, 116
HAND_BASE = (RHAND0, LHAND0)  # hand index k: 0 = subject's right (image left), 1 = subject's left
BODY_SHOULDER, BODY_ELBOW, BODY_WRIST = (2, 5), (3, 6), (4, 7)
_SIDE = (-1, 1)  # image-x direction of each hand's side of the body
_REST_DEPTH = 0.25  # wrists resting on the table, in front of the shoulders (body units)
_ARC_DEPTH = 0.15  # hands travel on a forward arc to and from a gesture, clear of the shoulder
_HANGING = (0.5, 1.0, 0.3)  # elbow pole (outwards, down, backwards): elbows hang down
_RAISED = (1.0, -0.2, 0.4)  # elbow pole of a hand above the shoulder: the elbow sticks out sideways

TOUCH_FACE, RUB_EYES, TOUCH_CHIN, PLAY_HAIR, FOLD_ARM = 3, 6, 10, 12, 16
SCRATCH_ARM, RUB_HAND, PLAY_THINGS, HEAD_UP, ILLUSTRATIVE = 21, 22, 25, 27, 31

SAMPLE_LABELS: tuple[int, ...] = (
    TOUCH_FACE,
    RUB_EYES,
    TOUCH_CHIN,
    PLAY_HAIR,
    FOLD_ARM,
    SCRATCH_ARM,
    RUB_HAND,
    PLAY_THINGS,
    HEAD_UP,
    ILLUSTRATIVE,
)
APPEARANCE_PAIRS: tuple[tuple[int, int], ...] = ((RUB_HAND, PLAY_THINGS),)
TEMPORAL_PAIRS: tuple[tuple[int, int], ...] = ((TOUCH_FACE, RUB_EYES),)
CLASS_MOTIONS: dict[int, str] = {
    TOUCH_FACE: "one hand rises to the cheek, fingertips at the eye, and makes one slow small stroke",
    RUB_EYES: "same hand path, pose and stroke as touch face, but rubbing fast (about 4-5 Hz) at the eye",
    TOUCH_CHIN: "one hand props the chin: curled fingers under the jaw, hand pointing across it, held",
    PLAY_HAIR: "one hand goes to the side of the head and twirls the hair in slow circles, elbow raised",
    FOLD_ARM: "both forearms cross in front of the chest, hands tucked at the opposite elbows, held",
    SCRATCH_ARM: "one hand scratches the opposite upper arm with a quick up-down finger motion",
    RUB_HAND: "both hands meet above the table and rub against each other",
    PLAY_THINGS: "exactly the rub-hand motion, but the hands hold a brightly coloured pen/phone/ball/cup",
    HEAD_UP: "the head tilts back (chin and face features move up), hands stay on the table",
    ILLUSTRATIVE: "talking gestures: both open hands rise and swing in large arcs, palms turning, slight nods",
}

# ----------------------------------------------------------------------------------------------
# Subject
# ----------------------------------------------------------------------------------------------

_SKIN: tuple[BGR, ...] = (
    (185, 205, 240),
    (160, 185, 230),
    (130, 165, 215),
    (100, 140, 195),
    (75, 105, 160),
    (55, 80, 120),
)
_HAIR: tuple[BGR, ...] = ((25, 25, 30), (30, 45, 75), (45, 75, 125), (70, 125, 185), (150, 150, 160), (20, 30, 45))
_CLOTHES: tuple[BGR, ...] = (
    (35, 35, 35),
    (90, 45, 25),
    (120, 120, 120),
    (230, 230, 230),
    (45, 45, 190),
    (200, 130, 40),
    (70, 140, 60),
    (40, 200, 225),
)
_COLLAR: tuple[BGR, ...] = ((245, 245, 245), (235, 215, 190), (215, 225, 235))
_TIE: tuple[BGR, ...] = ((40, 40, 150), (120, 50, 30), (30, 30, 30), (60, 120, 170))
_BACKDROP: tuple[BGR, ...] = (
    (150, 100, 45),
    (200, 200, 200),
    (70, 70, 70),
    (175, 140, 95),
    (205, 225, 235),
    (95, 60, 115),
)
_TABLE: tuple[BGR, ...] = ((240, 240, 240), (45, 65, 95), (120, 65, 25), (35, 35, 35), (70, 110, 150))
_OBJECT_COLOURS: tuple[BGR, ...] = (
    (40, 40, 235),
    (0, 225, 255),
    (40, 210, 40),
    (215, 60, 225),
    (0, 145, 255),
    (235, 225, 30),
)


@dataclass(frozen=True)
class Subject:
    """One interviewee. Lengths are in body units ``s = scale * frame height`` (so the subject
    renders proportionally at any frame size); positions are fractions of the frame."""

    scale: float  # body unit as a fraction of the frame height
    center_x: float  # body midline, fraction of the frame width
    neck_y: float  # neck keypoint, fraction of the frame height
    table_y: float  # far table edge (torso hidden below it), fraction of the frame height
    shoulder_half: float  # neck to shoulder, body units
    upper_arm: float
    forearm: float
    hand_len: float  # wrist to middle fingertip
    head_r: float  # half width of the head
    neck_len: float  # neck keypoint to chin
    torso_len: float  # neck to mid hip
    rest_dx: float  # lateral wrist offset from the midline at rest
    skin: BGR
    hair: BGR
    clothes: BGR
    collar: BGR
    tie: BGR
    backdrop: BGR
    table: BGR
    hair_style: int  # 0 short, 1 long, 2 very short
    hairline: float  # forehead height in head units (higher = less hair)
    collar_style: int  # 0 round neck, 1 open collar, 2 collar and tie
    mic_dx: float  # microphone offset from the midline in body units, 0 = no microphone
    name_plate: bool
    backdrop_logos: bool
    decor_seed: int  # seeds the static backdrop pattern
    speed: float  # gesture speed factor
    amplitude: float  # gesture amplitude factor
    jitter: float  # camera drift standard deviation, fraction of the frame height
    right_handed: bool


def random_subject(rng: np.random.Generator, height: int, width: int) -> Subject:
    """Draw a subject that fits a ``height`` x ``width`` frame (narrow frames shrink the body)."""
    fit = min(1.0, width / (0.95 * height))
    scale = fit * rng.uniform(0.9, 1.05)
    head_r = rng.uniform(0.064, 0.074)
    neck_len = rng.uniform(0.05, 0.065)
    neck_y = 0.5 - scale * rng.uniform(0.13, 0.18)
    torso_len = rng.uniform(0.42, 0.47)
    table_y = min(0.84, neck_y + scale * torso_len * rng.uniform(0.72, 1.08))
    pick = lambda palette: palette[int(rng.integers(len(palette)))]  # noqa: E731
    hair_style = int(rng.choice(3, p=[0.55, 0.3, 0.15]))
    return Subject(
        scale=float(scale),
        center_x=float(0.5 + rng.uniform(-0.06, 0.06)),
        neck_y=float(neck_y),
        table_y=float(table_y),
        shoulder_half=float(rng.uniform(0.13, 0.155)),
        upper_arm=float(rng.uniform(0.23, 0.26)),
        forearm=float(rng.uniform(0.2, 0.23)),
        hand_len=float(rng.uniform(0.14, 0.16)),
        head_r=float(head_r),
        neck_len=float(neck_len),
        torso_len=float(torso_len),
        rest_dx=float(rng.uniform(0.07, 0.12)),
        skin=pick(_SKIN),
        hair=pick(_HAIR),
        clothes=pick(_CLOTHES),
        collar=pick(_COLLAR),
        tie=pick(_TIE),
        backdrop=pick(_BACKDROP),
        table=pick(_TABLE),
        hair_style=hair_style,
        hairline=float(1.18 if hair_style == 2 else rng.uniform(0.72, 0.92)),
        collar_style=int(rng.integers(3)),
        mic_dx=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.3) if rng.random() < 0.6 else 0.0),
        name_plate=bool(rng.random() < 0.5),
        backdrop_logos=bool(rng.random() < 0.6),
        decor_seed=int(rng.integers(2**31)),
        speed=float(rng.uniform(0.8, 1.25)),
        amplitude=float(rng.uniform(0.85, 1.15)),
        jitter=float(rng.uniform(0.003, 0.012)),
        right_handed=bool(rng.random() < 0.8),
    )


# ----------------------------------------------------------------------------------------------
# Segment plan
# ----------------------------------------------------------------------------------------------


def plan_segments(
    rng: np.random.Generator, n_gestures: int, fps: float, labels: tuple[int, ...] = SAMPLE_LABELS
) -> tuple[list[tuple[int, int, int]], int]:
    """Return ([(label, start, end), ...] with 0-based inclusive frame indices in increasing order,
    non-overlapping, separated by idle gaps), and the total number of frames of the video
    (idle lead-in and tail included). Gestures last 1-2.5 s, gaps 0.3-1.5 s; labels cycle through
    reshuffled copies of ``labels`` so that they stay balanced."""
    order: list[int] = []
    while len(order) < n_gestures:
        order.extend(int(x) for x in rng.permutation(np.asarray(labels)))
    frames = lambda lo, hi: max(1, round(rng.uniform(lo, hi) * fps))  # noqa: E731
    t = frames(0.5, 1.2)
    segments = []
    for label in order[:n_gestures]:
        dur = max(3, frames(1.0, 2.5))
        segments.append((label, t, t + dur - 1))
        t += dur + frames(0.3, 1.5)
    end = segments[-1][2] + 1 if segments else t
    return segments, end + frames(0.5, 1.2)


# ----------------------------------------------------------------------------------------------
# Templates: face/head and hand
# ----------------------------------------------------------------------------------------------

_ARC = np.linspace(0.0, math.pi, 13)[1:-1]  # open arc over the top of the head, from +x to -x
_HAIR_ARC = np.linspace(-0.3, math.pi + 0.3, 17)
_HEAD_HAIRLINE = slice(72, 72 + len(_ARC))
_HEAD_CAP = slice(_HEAD_HAIRLINE.stop, _HEAD_HAIRLINE.stop + len(_HAIR_ARC))
_HEAD_LONG = slice(_HEAD_CAP.stop, _HEAD_CAP.stop + len(_ARC) + 6)


def _head_template(hairline: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head points in head units (x: half head width, y down), the yaw parallax of each point and its
    pitch group (0 face feature, 1 jaw contour, 2 skull). Rows: 0-69 OpenPose face, 70/71 right/left
    ear, then draw-only outlines: hairline arc (top of the face), hair cap, long hair."""
    beta = np.linspace(0.0, math.pi, 17)
    jaw = np.stack([-0.95 * np.cos(beta), -0.05 + 1.22 * np.sin(beta) ** 0.85], 1)
    arch = np.sin(np.linspace(0.2, math.pi - 0.2, 5))
    r_brow = np.stack([np.linspace(-0.74, -0.18, 5), -0.5 - 0.09 * arch], 1)
    l_brow = np.stack([np.linspace(0.18, 0.74, 5), -0.5 - 0.09 * arch], 1)
    bridge = np.stack([np.zeros(4), np.linspace(-0.28, 0.27, 4)], 1)
    nose_low = np.array([[-0.2, 0.36], [-0.1, 0.4], [0.0, 0.42], [0.1, 0.4], [0.2, 0.36]])
    r_eye = np.array([[-0.58, -0.25], [-0.47, -0.31], [-0.33, -0.31], [-0.22, -0.25], [-0.33, -0.2], [-0.47, -0.2]])
    l_eye = r_eye[[3, 2, 1, 0, 5, 4]] * [-1, 1]
    lip_out = np.array(
        [
            [-0.3, 0.72],
            [-0.2, 0.66],
            [-0.08, 0.63],
            [0.0, 0.65],
            [0.08, 0.63],
            [0.2, 0.66],
            [0.3, 0.72],
            [0.2, 0.8],
            [0.08, 0.83],
            [0.0, 0.84],
            [-0.08, 0.83],
            [-0.2, 0.8],
        ]
    )
    lip_in = np.array(
        [[-0.25, 0.72], [-0.1, 0.7], [0.0, 0.7], [0.1, 0.7], [0.25, 0.72], [0.1, 0.74], [0.0, 0.74], [-0.1, 0.74]]
    )
    pupils_ears = np.array([[-0.4, -0.25], [0.4, -0.25], [-1.0, 0.02], [1.0, 0.02]])
    hairline_arc = np.stack([0.94 * np.cos(_ARC), -0.05 - hairline * np.sin(_ARC)], 1)
    cap = np.stack([1.06 * np.cos(_HAIR_ARC), -0.05 - 1.4 * np.sin(_HAIR_ARC)], 1)
    long_top = np.stack([1.12 * np.cos(_ARC), -0.05 - 1.42 * np.sin(_ARC)], 1)
    long_hair = np.concatenate(
        [[[1.12, 0.0]], long_top, [[-1.12, 0.0], [-1.25, 1.3], [-1.45, 2.7], [1.45, 2.7], [1.25, 1.3]]]
    )
    pts = np.concatenate(
        [
            jaw,
            r_brow,
            l_brow,
            bridge,
            nose_low,
            r_eye,
            l_eye,
            lip_out,
            lip_in,
            pupils_ears,
            hairline_arc,
            cap,
            long_hair,
        ]
    )
    yaw = np.full(len(pts), 0.3)
    yaw[:17] = 0.06
    yaw[27:36] = 0.42
    yaw[70:72] = -0.2
    yaw[72:] = -0.05
    group = np.zeros(len(pts), np.int64)
    group[:17] = 1
    group[70:] = 2
    return pts, yaw, group


_FINGER_BASE = np.array([[0.10, 0.15], [0.46, 0.21], [0.48, 0.07], [0.46, -0.07], [0.42, -0.20]])
_FINGER_SEG = np.array(
    [[0.20, 0.16, 0.13], [0.22, 0.13, 0.10], [0.25, 0.15, 0.11], [0.23, 0.14, 0.10], [0.18, 0.11, 0.09]]
)
_FINGER_SPLAY = np.radians([50.0, 9.0, 0.0, -9.0, -18.0])
_FINGER_FLEX = np.radians([80.0, 180.0, 240.0])  # cumulative joint flexion of a fully curled finger
_THUMB_FLEX = np.radians([30.0, 60.0, 95.0])  # cumulative in-plane swing of a fully curled thumb


def _hand_points(
    wrist: np.ndarray, theta: np.ndarray, curl: np.ndarray, pron: np.ndarray, length: float, k: int
) -> np.ndarray:
    """21 OpenPose hand points [T, 21, 2]. ``theta``: direction wrist -> fingers (image angle, y down);
    ``curl`` [T, 5]: 0 straight .. 1 fist per finger (thumb first); ``pron`` -1 back of the hand to
    the camera .. +1 palm to the camera (scales the across-palm axis, so the thumb side flips)."""
    n = len(theta)
    local = np.zeros((n, 21, 2))
    flex = curl[:, 1:, None] * _FINGER_FLEX  # [T, 4, 3]
    along = np.cumsum(_FINGER_SEG[1:] * np.cos(flex), axis=2)
    dirs = np.stack([np.cos(_FINGER_SPLAY[1:]), np.sin(_FINGER_SPLAY[1:])], 1)  # [4, 2]
    fingers = _FINGER_BASE[1:, None, :] + along[..., None] * dirs[:, None, :]  # [T, 4, 3, 2]
    swing = _FINGER_SPLAY[0] - curl[:, :1] * _THUMB_FLEX  # [T, 3]
    thumb_len = _FINGER_SEG[0] * (1.0 - 0.25 * curl[:, :1])
    thumb = _FINGER_BASE[0] + np.cumsum(thumb_len[..., None] * np.stack([np.cos(swing), np.sin(swing)], 2), axis=1)
    local[:, 1] = _FINGER_BASE[0]
    local[:, 2:5] = thumb
    for f in range(4):
        local[:, 5 + 4 * f] = _FINGER_BASE[f + 1]
        local[:, 6 + 4 * f : 9 + 4 * f] = fingers[:, f]
    u = np.stack([np.cos(theta), np.sin(theta)], 1)
    v = np.stack([-np.sin(theta), np.cos(theta)], 1) * (pron * (1 if k == 0 else -1))[:, None]
    return wrist[:, None] + length * (local[..., :1] * u[:, None] + local[..., 1:] * v[:, None])


def _elbow(
    shoulder: np.ndarray, wrist: np.ndarray, depth: np.ndarray, a: float, b: float, pole: np.ndarray, k: int
) -> np.ndarray:
    """Two-link inverse kinematics in 3-D, projected orthographically: the shoulder lies in the image
    plane, the wrist ``depth`` pixels in front of it (towards the camera); of the circle of possible
    elbows, the one nearest the ``pole`` direction [T, 3] (outwards, down, backwards, for this
    side). The projection stays smooth when the wrist passes in front of the shoulder on screen."""
    d = np.concatenate([wrist - shoulder, depth[:, None]], 1)
    length = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
    e = d / length[:, None]
    dc = np.clip(length, abs(a - b) + 1e-3, a + b - 1e-3)
    x = (a**2 - b**2 + dc**2) / (2 * dc)
    h = np.sqrt(np.maximum(a**2 - x**2, 0.0))
    pole = pole * [_SIDE[k], 1.0, -1.0]
    m = pole - (e * pole).sum(1, keepdims=True) * e
    m /= np.maximum(np.linalg.norm(m, axis=1), 1e-6)[:, None]
    return shoulder + (e * x[:, None] + m * h[:, None])[:, :2]


# ----------------------------------------------------------------------------------------------
# Motion
# ----------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, period: float) -> np.ndarray:
    """Catmull-Rom interpolated gaussian knots every ``period`` seconds (about unit variance)."""
    step = max(period * fps, 1.0)
    knots = rng.standard_normal(int(n / step) + 4)
    x = np.arange(n) / step + 1.0
    i = x.astype(np.int64)
    f = x - i
    p0, p1, p2, p3 = knots[i - 1], knots[i], knots[i + 1], knots[i + 2]
    return 0.5 * (2 * p1 + (p2 - p0) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (3 * p1 - p0 - 3 * p2 + p3) * f**3)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], -1)


_N_SEG_DRAWS = 11


@dataclass
class _Gesture:
    """One segment as seen by a motion function."""

    label: int
    sl: slice  # frames of the segment
    env: np.ndarray  # 0 -> 1 -> 0 ease-in / hold / ease-out
    tau: np.ndarray  # seconds since the segment start
    # _N_SEG_DRAWS uniform draws, drawn whatever the label: 0 hand, 1-2 ease-in/out, 3 amplitude,
    # 4 frequency, 5 phase, 6-7 target offset, 8-9 object kind and colour, 10 second phase
    u: np.ndarray
    active: int  # hand doing a one-handed gesture
    amp: float
    freq: float  # multiplies each class's base frequency (subject speed x repetition variation)

    def phase(self, base_hz: float, offset: float = 0.0) -> np.ndarray:
        """Oscillation phase (radians) per frame for a class's base frequency."""
        return 2 * np.pi * (base_hz * self.freq * self.tau + self.u[5] + offset)

    def spread(self) -> tuple[float, float]:
        """This repetition's target offset, two numbers in [-1, 1]."""
        return 2 * float(self.u[6]) - 1, 2 * float(self.u[7]) - 1


class _Pose:
    """Per-frame pose parameters of one video, filled by the motion functions."""

    def __init__(self, sub: Subject, n: int, s: float, cx: float, neck_px: float, table_px: float) -> None:
        self.sub, self.s, self.cx, self.neck_px, self.table_px = sub, s, cx, neck_px, table_px
        self.r = sub.head_r * s
        self.hand = sub.hand_len * s
        self.pitch = np.zeros(n)
        self.head_shift = np.zeros((n, 2))
        self.weight = np.zeros((2, n))
        self.wrist = np.zeros((2, n, 2))
        self.theta = np.zeros((2, n))
        self.curl = np.zeros((2, n, 5))
        self.pron = np.zeros((2, n))
        self.depth = np.zeros((2, n))
        self.pole = np.zeros((2, n, 3))
        self.face = np.zeros((n, 0, 2))
        self.shoulder = np.zeros((2, n, 2))
        self.rest_elbow = np.zeros((2, n, 2))

    def set_hand(
        self,
        k: int,
        g: _Gesture,
        wrist: np.ndarray,
        theta: np.ndarray | float,
        curl: np.ndarray | float,
        pron: np.ndarray | float,
        depth: float,
        pole: tuple[float, float, float] = _HANGING,
    ) -> None:
        """Target of hand ``k`` over the segment; ``depth``: wrist in front of the shoulder (body
        units); ``pole``: where the elbow points, see :func:`_elbow`."""
        sl = g.sl
        self.weight[k, sl] = g.env
        self.wrist[k, sl] = wrist
        self.theta[k, sl] = theta
        self.curl[k, sl] = curl
        self.pron[k, sl] = pron
        self.depth[k, sl] = depth
        self.pole[k, sl] = pole


def _rad(deg: float) -> float:
    return math.radians(deg)


def _hand_at_eye(p: _Pose, g: _Gesture, fast: bool) -> None:
    """Touch face (slow) and rub eyes (fast): the hand rests on the cheek with the fingertips at the
    eye and strokes back and forth. Both use the same path, hand shape and stroke amplitude; touch
    face makes one slow stroke over the whole segment, rub eyes rubs at about 4-5 Hz, so single
    frames look alike and the mean position is the same."""
    k = g.active
    sd = _SIDE[k]
    jx, jy = g.spread()
    tip = p.face[g.sl, 68 + k] + np.array([sd * (0.12 + 0.06 * jx), 0.12 + 0.08 * jy]) * p.r
    theta = _rad(-90.0 - sd * (20.0 + 8.0 * jx))
    along = _unit(np.array(theta))
    across = _unit(np.array(theta + _rad(75.0)))
    ph = g.phase(4.6) if fast else 2 * np.pi * g.tau / max(g.tau[-1], 1e-6)
    hold = g.env**2
    amp = 0.36 * p.r * g.amp * hold
    wrist = (
        tip
        - 0.85 * p.hand * along
        + (amp * np.sin(ph))[:, None] * across
        + (0.35 * amp * np.sin(2 * ph))[:, None] * along
    )
    curl = np.tile((0.2 + 0.18 * hold * np.sin(ph + 1.0))[:, None], (1, 5))
    p.set_hand(k, g, wrist, theta, curl, -0.75, 0.15)


def _touch_face(p: _Pose, g: _Gesture) -> None:
    _hand_at_eye(p, g, fast=False)


def _rub_eyes(p: _Pose, g: _Gesture) -> None:
    _hand_at_eye(p, g, fast=True)


def _touch_chin(p: _Pose, g: _Gesture) -> None:
    """Thinking pose: the curled fingers prop the chin from below, hand pointing across the jaw."""
    k = g.active
    sd = _SIDE[k]
    jx, jy = g.spread()
    anchor = p.face[g.sl, 8] + np.array([sd * (0.1 + 0.1 * jx), 0.3 + 0.08 * jy]) * p.r
    theta = _rad(-90.0 - sd * (55.0 + 8.0 * jx))
    wrist = anchor - 0.45 * p.hand * _unit(np.array(theta))
    curl = np.tile([0.35, 0.7, 0.85, 0.9, 0.9], (len(g.tau), 1))
    curl[:, 1] += 0.1 * np.sin(g.phase(0.6))
    p.set_hand(k, g, wrist, theta, curl, -0.5, 0.15)


def _play_hair(p: _Pose, g: _Gesture) -> None:
    k = g.active
    sd = _SIDE[k]
    jx, jy = g.spread()
    centre = p.face[g.sl, 70 + k] * 0.5 + p.face[g.sl, 71 - k] * 0.5
    top = centre + np.array([sd * (0.78 + 0.08 * jx), -(0.95 + 0.1 * jy)]) * p.r
    ph = g.phase(1.5)
    theta = _rad(-90.0 - sd * (45.0 + 8.0 * jx)) + 0.2 * np.sin(ph)
    twirl = 0.25 * p.r * g.amp * g.env[:, None] * np.stack([np.cos(ph), np.sin(ph)], 1)
    wrist = top - 0.75 * p.hand * _unit(theta) + twirl
    curl = np.empty((len(g.tau), 5))
    curl[:, 0] = 0.4
    curl[:, 1:] = (0.45 + 0.3 * np.sin(ph + 0.5))[:, None]
    p.set_hand(k, g, wrist, theta, curl, -0.35, 0.03, _RAISED)


def _fold_arm(p: _Pose, g: _Gesture) -> None:
    jx, jy = g.spread()
    for k in (0, 1):
        sd = _SIDE[k]
        y = p.neck_px + (0.25 + 0.02 * jy + (0.035 if k == g.active else 0.0)) * p.s
        wrist = np.tile([p.cx - sd * (0.085 + 0.015 * jx) * p.s, y], (len(g.tau), 1))
        wrist[:, 1] += 0.004 * p.s * np.sin(g.phase(0.3))
        p.set_hand(k, g, wrist, _rad(90.0 + sd * 100.0), [0.3, 0.55, 0.55, 0.55, 0.55], -0.3, 0.15)


def _scratch_arm(p: _Pose, g: _Gesture) -> None:
    k = g.active
    o = 1 - k
    sd = _SIDE[k]
    jx, jy = g.spread()
    upper = p.rest_elbow[o, g.sl] - p.shoulder[o, g.sl]
    anchor = p.shoulder[o, g.sl] + (0.45 + 0.12 * jy) * upper
    arm_dir = upper / np.linalg.norm(upper, axis=1, keepdims=True)
    theta = _rad(90.0 + sd * (100.0 + 10.0 * jx))
    ph = g.phase(3.6)
    wrist = anchor - 0.8 * p.hand * _unit(np.array(theta)) + (0.035 * p.s * g.amp * np.sin(ph))[:, None] * arm_dir
    curl = np.empty((len(g.tau), 5))
    curl[:, 0] = 0.3
    curl[:, 1:] = (0.45 + 0.3 * np.sin(ph + 0.8))[:, None]
    p.set_hand(k, g, wrist, theta, curl, -0.7, 0.12)


def _rub_hand(p: _Pose, g: _Gesture) -> None:
    """Also the keypoint motion of play things: the object exists only in the pixels."""
    jx, jy = g.spread()
    centre = np.array([p.cx + 0.02 * jx * p.s, p.table_px - (0.12 + 0.02 * jy) * p.s])
    for k in (0, 1):
        sd = _SIDE[k]
        ph = g.phase(2.8, 0.5 * k)
        gain = 0.025 * p.s * g.amp * (1.0 if k == g.active else 0.5)
        wrist = (
            centre
            + np.array([sd * 0.075 * p.s, 0.02 * k * p.s])
            + np.stack([gain * np.sin(ph), 0.3 * gain * np.cos(ph)], 1)
        )
        curl = np.tile(0.35 + 0.1 * np.sin(ph + k)[:, None], (1, 5))
        p.set_hand(k, g, wrist, _rad(90.0 + sd * 80.0), curl, -0.55 if k == 0 else 0.45, 0.3)


def _illustrative(p: _Pose, g: _Gesture) -> None:
    jx, jy = g.spread()
    for k in (0, 1):
        sd = _SIDE[k]
        ph = g.phase(1.1, 0.2 * k)
        gain = 0.075 * p.s * g.amp * (1.0 if k == g.active else 0.6)
        base = np.array([p.cx + sd * (0.16 + 0.03 * jx) * p.s, p.table_px - (0.14 + 0.03 * jy) * p.s])
        wrist = base + np.stack([gain * np.sin(ph), 0.8 * gain * np.sin(1.6 * ph + 6.0 * g.u[10])], 1)
        theta = -np.pi / 2 + sd * (_rad(35.0) + 0.35 * np.sin(0.8 * ph + k))
        curl = np.tile(0.15 + 0.1 * np.sin(ph)[:, None], (1, 5))
        p.set_hand(k, g, wrist, theta, curl, 0.15 + 0.7 * np.sin(0.7 * ph + k), 0.25)


def _head_up(p: _Pose, g: _Gesture) -> None:
    p.pitch[g.sl] += g.env * (0.9 + 0.4 * g.u[3]) * (1.0 + 0.08 * np.sin(g.phase(0.5)))
    p.head_shift[g.sl, 1] -= 0.15 * p.r * g.env


def _nod(p: _Pose, g: _Gesture) -> None:
    p.pitch[g.sl] += 0.15 * g.env * np.sin(g.phase(1.1))


_HEAD_MOTIONS: dict[int, Callable[[_Pose, _Gesture], None]] = {HEAD_UP: _head_up, ILLUSTRATIVE: _nod}
_HAND_MOTIONS: dict[int, Callable[[_Pose, _Gesture], None]] = {
    TOUCH_FACE: _touch_face,
    RUB_EYES: _rub_eyes,
    TOUCH_CHIN: _touch_chin,
    PLAY_HAIR: _play_hair,
    FOLD_ARM: _fold_arm,
    SCRATCH_ARM: _scratch_arm,
    RUB_HAND: _rub_hand,
    PLAY_THINGS: _rub_hand,
    ILLUSTRATIVE: _illustrative,
}


def _envelope(n: int, fps: float, speed: float, u_on: float, u_off: float) -> np.ndarray:
    on = np.clip((0.35 + 0.3 * u_on) * fps / speed, 1.0, 0.4 * n)
    off = np.clip((0.35 + 0.3 * u_off) * fps / speed, 1.0, 0.4 * n)
    i = np.arange(n, dtype=np.float64)
    x = np.clip(np.minimum(i / on, (n - 1 - i) / off), 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class _Track:
    """Everything the painter needs, per frame, in pixel coordinates of the frame."""

    points: np.ndarray  # [T, 137, 2] latent positions (hidden points included)
    visible: np.ndarray  # [T, 137] bool
    head: np.ndarray  # [T, 72 + outline points, 2] transformed head template (face, ears, outlines)
    obj_poly: np.ndarray  # [T, 8, 2] object held in play things
    obj_colour: np.ndarray  # [T] index into _OBJECT_COLOURS, -1 = no object
    shift: np.ndarray  # [T, 2] integer camera shift of the static background
    table_px: float


def _gestures(
    sub: Subject, segments: list[tuple[int, int, int]], n: int, fps: float, rng: np.random.Generator
) -> list[_Gesture]:
    dominant = 0 if sub.right_handed else 1
    out = []
    for label, start, end in segments:
        u = rng.uniform(size=_N_SEG_DRAWS)
        if label not in _HAND_MOTIONS and label not in _HEAD_MOTIONS:
            raise ValueError(f"synth cannot render class {label}; supported: {sorted(SAMPLE_LABELS)}")
        start, end = max(0, start), min(n - 1, end)
        if end < start:
            continue
        m = end - start + 1
        out.append(
            _Gesture(
                label=label,
                sl=slice(start, end + 1),
                env=_envelope(m, fps, sub.speed, u[1], u[2]),
                tau=np.arange(m) / fps,
                u=u,
                active=dominant if u[0] < 0.75 else 1 - dominant,
                amp=sub.amplitude * (0.8 + 0.4 * u[3]),
                freq=sub.speed * (0.85 + 0.3 * u[4]),
            )
        )
    return out


def _head_points(
    p: _Pose,
    template: tuple[np.ndarray, np.ndarray, np.ndarray],
    centre: np.ndarray,
    roll: np.ndarray,
    yaw: np.ndarray,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Head template -> pixels: yaw parallax, pitch (features and chin move up, skull down), roll.
    ``offset`` [T, P, 2] (head units, added to the template first) animates the facial expression."""
    pts, yaw_k, group = template
    pitch = p.pitch[:, None]
    x = pts[None, :, 0] + yaw[:, None] * yaw_k
    y = np.broadcast_to(pts[None, :, 1], x.shape).copy()
    if offset is not None:
        x = x + offset[..., 0]
        y = y + offset[..., 1]
    feat, jaw, skull = group == 0, group == 1, group == 2
    y[:, feat] = y[:, feat] * (1 - 0.25 * pitch) - 0.35 * pitch
    y[:, jaw] = y[:, jaw] * (1 - 0.4 * pitch) - 0.1 * pitch
    y[:, skull] = y[:, skull] + 0.15 * pitch
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    return centre[:, None] + p.r * np.stack([c * x - s * y, s * x + c * y], -1)


def _animate(
    sub: Subject,
    segments: list[tuple[int, int, int]],
    n: int,
    fps: float,
    height: int,
    width: int,
    rng: np.random.Generator,
    cues: EmotionCues | None = None,
) -> _Track:
    """All keypoints of the video at once: idle signals, head (with head gestures), rest and gesture
    targets of both hands blended by each segment's envelope, arm IK, then the camera drift.
    ``cues`` (emotion preset only) scale the idle motion and animate the facial expression; they
    draw nothing from ``rng``."""
    s = sub.scale * height
    cx = sub.center_x * width
    table_px = sub.table_y * height
    p = _Pose(sub, n, s, cx, sub.neck_y * height, table_px)
    t = np.arange(n) / fps

    breath = np.sin(2 * np.pi * t / rng.uniform(3.0, 4.5) + rng.uniform(0, 2 * np.pi))
    lean = _smooth_noise(rng, n, fps, 1.8)
    sway, roll, yaw, nod = (_smooth_noise(rng, n, fps, per) for per in (1.3, 1.5, 1.9, 1.6))
    drift = np.stack([_smooth_noise(rng, n, fps, 2.0) for _ in range(6)])
    cam = np.stack([_smooth_noise(rng, n, fps, 0.9) for _ in range(2)], 1) * sub.jitter * height
    blink = np.zeros(n)
    tb = rng.uniform(0.3, 3.0)
    while tb * fps < n:
        f0 = int(tb * fps)
        blink[f0 : f0 + max(1, round(0.12 * fps))] = 1.0
        tb += rng.uniform(2.0, 6.0)
    gestures = _gestures(sub, segments, n, fps, rng)
    if cues is not None:
        e = cues.energy
        lean, sway, roll, yaw, nod, drift = (e * a for a in (lean, sway, roll, yaw, nod, drift))

    # torso
    neck = np.stack([cx + 0.012 * s * lean, np.full(n, sub.neck_y * height) - 0.003 * s * breath], 1)
    if cues is not None:
        neck[:, 0] += s * cues.rock
    shoulder_y = neck[:, 1] + 0.025 * s - 0.004 * s * breath
    for k in (0, 1):
        p.shoulder[k] = np.stack([neck[:, 0] + _SIDE[k] * sub.shoulder_half * s, shoulder_y], 1)
    hip = np.array([cx, sub.neck_y * height + sub.torso_len * s])

    # head
    p.pitch += 0.05 * nod
    for g in gestures:
        if g.label in _HEAD_MOTIONS:
            _HEAD_MOTIONS[g.label](p, g)
    head_c = neck + [0.0, -(sub.neck_len * s + 1.2 * p.r)] + p.head_shift
    head_c[:, 0] += 0.01 * s * sway + 0.3 * (neck[:, 0] - cx)
    template = _head_template(sub.hairline)
    offset = None if cues is None else expression_offsets(cues.expression, len(template[0]))
    head = _head_points(p, template, head_c, 0.045 * roll, 0.12 * yaw, offset)
    top_lids, low_lids = [37, 38, 43, 44], [41, 40, 47, 46]
    head[:, top_lids] += blink[:, None, None] * 0.85 * (head[:, low_lids] - head[:, top_lids])
    p.face = head

    # hands at rest, then the gestures' targets
    arm, forearm = sub.upper_arm * s, sub.forearm * s
    rest_wrist = np.empty((2, n, 2))
    rest_theta = np.empty((2, n))
    for k in (0, 1):
        sd = _SIDE[k]
        rest_wrist[k] = np.stack(
            [cx + sd * sub.rest_dx * s + 0.008 * s * drift[2 * k], table_px + (0.04 + 0.006 * drift[2 * k + 1]) * s], 1
        )
        if cues is not None:
            rest_wrist[k] += s * cues.jiggle[k]
        rest_theta[k] = _rad(90.0 + sd * 60.0) + 0.06 * drift[4 + k]
        hanging = np.tile(_HANGING, (n, 1))
        p.rest_elbow[k] = _elbow(p.shoulder[k], rest_wrist[k], np.full(n, _REST_DEPTH * s), arm, forearm, hanging, k)
    for g in gestures:
        if g.label in _HAND_MOTIONS:
            _HAND_MOTIONS[g.label](p, g)

    points = np.zeros((n, N_KEYPOINTS, 2))
    for k in (0, 1):
        w = p.weight[k]
        wrist = rest_wrist[k] + w[:, None] * (p.wrist[k] - rest_wrist[k])
        theta = rest_theta[k] + w * _wrap(p.theta[k] - rest_theta[k])
        rest_curl = 0.35 + 0.05 * drift[4 + k]
        curl = rest_curl[:, None] + w[:, None] * (p.curl[k] - rest_curl[:, None])
        pron = -0.85 + w * (p.pron[k] + 0.85)
        depth = (_REST_DEPTH + w * (p.depth[k] - _REST_DEPTH) + 4 * w * (1 - w) * _ARC_DEPTH) * s
        points[:, HAND_BASE[k] : HAND_BASE[k] + 21] = _hand_points(wrist, theta, curl, pron, p.hand, k)
        points[:, BODY_SHOULDER[k]] = p.shoulder[k]
        pole = _HANGING + w[:, None] * (p.pole[k] - _HANGING)
        points[:, BODY_ELBOW[k]] = _elbow(p.shoulder[k], wrist, depth, arm, forearm, pole, k)
        points[:, BODY_WRIST[k]] = wrist
    points[:, 0] = head[:, 30]
    points[:, 1] = neck
    points[:, 8] = hip
    points[:, 9] = hip + [-0.6 * sub.shoulder_half * s, 0.0]
    points[:, 12] = hip + [0.6 * sub.shoulder_half * s, 0.0]
    points[:, [10, 11, 13, 14, 19, 20, 21, 22, 23, 24]] = hip
    points[:, 15:19] = head[:, 68:72]
    points[:, FACE0:LHAND0] = head[:, :70]

    obj_poly, obj_colour = _object_track(points, gestures, s, n)
    limit = max(1.0, 2.5 * sub.jitter * height)
    cam = np.clip(cam, -limit, limit)
    shift = np.rint(cam).astype(np.int64)
    points += cam[:, None]
    head = head + cam[:, None]
    obj_poly += cam[:, None]

    visible = np.zeros((n, N_KEYPOINTS), bool)
    visible[:, list(range(8)) + [15, 16, 17, 18]] = True
    visible[:, FACE0:] = True
    visible[:, [8, 9, 12]] = hip[1] < table_px
    inside = (
        (points[..., 0] >= 0) & (points[..., 0] <= width - 1) & (points[..., 1] >= 0) & (points[..., 1] <= height - 1)
    )
    return _Track(points, visible & inside, head, obj_poly, obj_colour, shift, table_px)


_OBJECTS = np.array(
    [
        [[-0.085, -0.011], [0.085, -0.011], [0.085, 0.011], [-0.085, 0.011]] * 2,  # pen
        [[-0.065, -0.036], [0.065, -0.036], [0.065, 0.036], [-0.065, 0.036]] * 2,  # phone
        [[0.042 * math.cos(a), 0.042 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 9)[:-1]],  # ball
        [[-0.05, -0.035], [0.05, -0.04], [0.05, 0.04], [-0.05, 0.035]] * 2,  # cup, seen from the side
    ]
)


# angle to the line between the palms (the pen sticks out of the hands); None: upright (the cup)
_OBJECT_TILT: tuple[float | None, ...] = (_rad(65.0), 0.0, 0.0, None)


def _object_track(points: np.ndarray, gestures: list[_Gesture], s: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Polygon and colour of the object held during play things, attached to both palms."""
    poly = np.zeros((n, 8, 2))
    colour = np.full(n, -1, np.int64)
    palms = [points[:, b + np.array([0, 5, 9, 17])].mean(1) for b in HAND_BASE]
    centre = 0.5 * (palms[0] + palms[1])
    across = palms[1] - palms[0]
    angle = np.arctan2(across[:, 1], across[:, 0])
    for g in gestures:
        if g.label != PLAY_THINGS:
            continue
        kind = int(g.u[8] * len(_OBJECTS))
        tilt = _OBJECT_TILT[kind]
        rot = np.zeros(g.env.shape) if tilt is None else angle[g.sl] + tilt
        c, si = np.cos(rot)[:, None], np.sin(rot)[:, None]
        shape = _OBJECTS[kind] * s
        poly[g.sl] = centre[g.sl, None] + np.stack(
            [c * shape[:, 0] - si * shape[:, 1], si * shape[:, 0] + c * shape[:, 1]], -1
        )
        colour[g.sl] = int(g.u[9] * len(_OBJECT_COLOURS))
    return poly, colour


# ----------------------------------------------------------------------------------------------
# Painting
# ----------------------------------------------------------------------------------------------

_SHIFT = 4  # fixed-point bits of the cv2 coordinates
_FP = float(1 << _SHIFT)
_FINGERS = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]])
_PALM = np.array([0, 1, 5, 9, 13, 17])


def _scaled(colour: BGR, f: float) -> BGR:
    return tuple(int(min(255, max(0, c * f))) for c in colour)  # type: ignore[return-value]


def _fixed(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rint(a * _FP).astype(np.int32))


class _Painter:
    """Static background once, then one frame per call from the precomputed track."""

    def __init__(self, sub: Subject, track: _Track, height: int, width: int, rng: np.random.Generator) -> None:
        self.sub, self.h, self.w = sub, height, width
        s = sub.scale * height
        self.margin = int(np.abs(track.shift).max(initial=0)) + 1
        self.bg = self._background(track.table_px, s)
        self.noise = rng.integers(0, 5, size=(height + 16, width + 16, 3), dtype=np.uint8)
        self.noise_at = rng.integers(0, 16, size=(len(track.points), 2))
        self.shift = track.shift
        self.table_row = math.ceil(track.table_px)
        self.mic_box = self._mic_box(track.table_px, s)

        pts, head = track.points, track.head
        n = len(pts)
        neck, sh_r, sh_l = pts[:, 1], pts[:, 2], pts[:, 5]
        hip_r, hip_l = pts[:, 9], pts[:, 12]
        up = np.array([0.0, -1.0]) * s  # one body unit up / to the image right
        side = np.array([1.0, 0.0]) * s
        self.torso = _fixed(
            np.stack(
                [
                    neck + 0.02 * up,
                    sh_r + 0.035 * up - 0.02 * side,
                    sh_r - 0.05 * side - 0.04 * up,
                    hip_r - 0.03 * side - 0.2 * up,  # the lap, always behind the table
                    hip_l + 0.03 * side - 0.2 * up,
                    sh_l + 0.05 * side - 0.04 * up,
                    sh_l + 0.035 * up + 0.02 * side,
                ],
                1,
            )
        )
        r = sub.head_r * s
        chin = head[:, 8]
        half_neck = np.array([0.5 * r, 0.0])
        self.neck = _fixed(
            np.stack(
                [neck - half_neck + 0.01 * up, neck + half_neck + 0.01 * up, chin + half_neck, chin - half_neck], 1
            )
        )
        self.collar = _fixed(
            np.stack([neck - 0.045 * side + 0.03 * up, neck + 0.045 * side + 0.03 * up, neck - 0.16 * up], 1)
        )
        self.tie = _fixed(
            np.stack(
                [
                    neck - 0.012 * side + 0.015 * up,
                    neck + 0.012 * side + 0.015 * up,
                    neck + 0.02 * side - 0.14 * up,
                    neck - 0.15 * up,
                    neck - 0.02 * side - 0.14 * up,
                ],
                1,
            )
        )
        self.long_hair = _fixed(head[:, _HEAD_LONG])
        self.cap = _fixed(head[:, _HEAD_CAP])
        self.face = _fixed(np.concatenate([head[:, :17], head[:, _HEAD_HAIRLINE]], 1))
        self.ears = _fixed(head[:, 70:72])
        self.ear_r = max(1, int(0.24 * r * _FP))
        self.brows = _fixed(head[:, 17:27].reshape(n, 2, 5, 2))
        self.eyes = _fixed(head[:, 36:48].reshape(n, 2, 6, 2))
        self.nose = _fixed(head[:, 27:36])
        self.lips = _fixed(head[:, 48:60])
        self.arms = [_fixed(pts[:, [BODY_SHOULDER[k], BODY_ELBOW[k], BODY_WRIST[k]]]) for k in (0, 1)]
        self.palms = [_fixed(pts[:, HAND_BASE[k] + _PALM]) for k in (0, 1)]
        self.fingers = [_fixed(pts[:, HAND_BASE[k] + _FINGERS]) for k in (0, 1)]
        self.obj = _fixed(track.obj_poly)
        self.obj_colour = track.obj_colour

        px = lambda f: max(1, round(f * s))  # noqa: E731
        self.t_upper, self.t_fore, self.t_finger = px(0.075), px(0.06), px(0.022)
        self.t_feature = max(1, round(0.12 * r))
        skin, clothes = sub.skin, sub.clothes
        self.c_neck, self.c_ear = _scaled(skin, 0.85), _scaled(skin, 0.9)
        self.c_hand, self.c_hand_edge = _scaled(skin, 0.93), _scaled(skin, 0.6)
        self.c_sleeve = _scaled(clothes, 1.12) if sum(clothes) < 600 else _scaled(clothes, 0.95)
        self.c_sleeve_edge = _scaled(clothes, 0.55)
        self.c_feature = _scaled(skin, 0.45)
        self.c_lip = (int(skin[0] * 0.68), int(skin[1] * 0.63), min(255, int(skin[2] * 0.85 + 18)))
        self.c_eye = (35, 30, 30)

    def _background(self, table_px: float, s: float) -> np.ndarray:
        sub, m = self.sub, self.margin
        h, w = self.h + 2 * m, self.w + 2 * m
        yy = np.linspace(-1.0, 1.0, h)[:, None]
        xx = np.linspace(-1.0, 1.0, w)[None, :]
        shade = 1.06 - 0.12 * (xx**2 + yy**2)
        bg = (np.array(sub.backdrop, np.float32) * shade[..., None]).clip(0, 255).astype(np.uint8)
        decor = np.random.default_rng(sub.decor_seed)
        if sub.backdrop_logos:
            step = max(8, int(0.3 * s))
            tone = _scaled(sub.backdrop, 0.85 if sum(sub.backdrop) > 300 else 1.3)
            for gy in range(0, h, step):
                for gx in range(-(gy // step % 2) * step // 2, w, step):
                    x0, y0 = gx + int(0.2 * step), gy + int(0.3 * step)
                    if decor.random() < 0.5:
                        cv2.rectangle(bg, (x0, y0), (x0 + int(0.5 * step), y0 + int(0.22 * step)), tone, -1)
                    else:
                        cv2.circle(bg, (x0 + step // 4, y0 + step // 8), max(2, step // 8), tone, -1)
        ty = math.ceil(table_px) + m
        top = sub.table
        cv2.rectangle(bg, (0, ty), (w, h), top, -1)
        front = ty + int(0.2 * s)
        cv2.rectangle(bg, (0, front), (w, h), _scaled(top, 0.78), -1)
        cv2.line(bg, (0, ty), (w, ty), _scaled(top, 0.85), max(1, int(0.008 * s)))
        cx = int(sub.center_x * self.w) + m
        if sub.name_plate:
            half = int(0.1 * s)
            y0 = front - int(0.02 * s)
            cv2.rectangle(bg, (cx - half, y0), (cx + half, y0 + int(0.07 * s)), (245, 245, 245), -1)
            cv2.line(
                bg,
                (cx - half * 2 // 3, y0 + int(0.035 * s)),
                (cx + half * 2 // 3, y0 + int(0.035 * s)),
                (40, 40, 40),
                max(1, int(0.015 * s)),
            )
        if sub.mic_dx:
            x = cx + int(sub.mic_dx * s)
            cv2.line(bg, (x, ty + int(0.06 * s)), (x, ty - int(0.1 * s)), (50, 50, 50), max(1, int(0.012 * s)))
            cv2.ellipse(
                bg,
                (x, ty + int(0.06 * s)),
                (max(1, int(0.04 * s)), max(1, int(0.012 * s))),
                0,
                0,
                360,
                (40, 40, 40),
                -1,
            )
            cv2.circle(bg, (x, ty - int(0.11 * s)), max(1, int(0.025 * s)), (30, 30, 30), -1)
        return bg

    def _mic_box(self, table_px: float, s: float) -> tuple[slice, slice] | None:
        """Frame region (before the camera shift) of the microphone, pasted back over the torso."""
        if not self.sub.mic_dx:
            return None
        x = int(self.sub.center_x * self.w + self.sub.mic_dx * s)
        half = int(0.03 * s) + 2
        top = int(table_px - 0.14 * s) - 1
        return slice(max(0, top), math.ceil(table_px) + 1), slice(max(0, x - half), x + half + 1)

    def frame(self, t: int) -> np.ndarray:
        m, h, w = self.margin, self.h, self.w
        dx, dy = self.shift[t]
        view = self.bg[m - dy : m - dy + h, m - dx : m - dx + w]
        img = view.copy()
        c, sh, aa = self.sub, _SHIFT, cv2.LINE_AA
        if c.hair_style == 1:
            cv2.fillPoly(img, [self.long_hair[t]], c.hair, aa, sh)
        cv2.fillPoly(img, [self.torso[t]], c.clothes, aa, sh)
        cv2.fillConvexPoly(img, self.neck[t], self.c_neck, aa, sh)
        if c.collar_style:
            cv2.fillConvexPoly(img, self.collar[t], c.collar, aa, sh)
            if c.collar_style == 2:
                cv2.fillConvexPoly(img, self.tie[t], c.tie, aa, sh)
        cv2.fillPoly(img, [self.cap[t]], c.hair, aa, sh)
        for e in self.ears[t]:
            cv2.circle(img, e, self.ear_r, self.c_ear, -1, aa, sh)
        cv2.fillPoly(img, [self.face[t]], c.skin, aa, sh)
        cv2.polylines(img, list(self.brows[t]), False, c.hair, self.t_feature, aa, sh)
        cv2.fillPoly(img, list(self.eyes[t]), self.c_eye, aa, sh)
        cv2.polylines(img, [self.nose[t]], False, self.c_feature, 1, aa, sh)
        cv2.fillPoly(img, [self.lips[t]], self.c_lip, aa, sh)
        ty = self.table_row + dy
        img[ty:] = view[ty:]
        if self.mic_box is not None:
            ys, xs = self.mic_box
            ys, xs = slice(ys.start + dy, ys.stop + dy), slice(max(0, xs.start + dx), xs.stop + dx)
            img[ys, xs] = view[ys, xs]
        for k in (0, 1):
            arm = self.arms[k][t]
            cv2.line(img, arm[0], arm[1], self.c_sleeve_edge, self.t_upper + 2, aa, sh)
            cv2.line(img, arm[1], arm[2], self.c_sleeve_edge, self.t_fore + 2, aa, sh)
            cv2.line(img, arm[0], arm[1], self.c_sleeve, self.t_upper, aa, sh)
            cv2.line(img, arm[1], arm[2], self.c_sleeve, self.t_fore, aa, sh)
            palm = self.palms[k][t]
            cv2.fillConvexPoly(img, palm, self.c_hand, aa, sh)
            cv2.polylines(img, [palm], True, self.c_hand_edge, 1, aa, sh)
            cv2.polylines(img, list(self.fingers[k][t]), False, self.c_hand, self.t_finger, aa, sh)
        if self.obj_colour[t] >= 0:
            cv2.fillConvexPoly(img, self.obj[t], _OBJECT_COLOURS[self.obj_colour[t]], aa, sh)
        ny, nx = self.noise_at[t]
        cv2.add(img, self.noise[ny : ny + h, nx : nx + w], dst=img)
        return img


# ----------------------------------------------------------------------------------------------
# Public rendering and noise
# ----------------------------------------------------------------------------------------------


def render(
    subject: Subject,
    segments: list[tuple[int, int, int]],
    n_frames: int,
    fps: float,
    height: int,
    width: int,
    rng: np.random.Generator,
    cues: EmotionCues | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield n_frames items (frame_bgr uint8 [height, width, 3], keypoints float32 [137, 3]).
    keypoints are the clean ground-truth OpenPose-137 points in pixel coords of this frame: x, y,
    confidence (1.0 visible, 0 with x=y=0 for points not visible, e.g. legs hidden by the table).
    The image is drawn from these same points, so pose and pixels agree. All random draws happen
    before the first frame is yielded; the keypoints do not depend on the class of a segment
    within an appearance pair. ``cues``: see :class:`EmotionCues` (None: no emotion cue, the
    default sample)."""
    track = _animate(subject, segments, n_frames, fps, height, width, rng, cues)
    painter = _Painter(subject, track, height, width, rng)
    kp = np.zeros((n_frames, N_KEYPOINTS, 3), np.float32)
    kp[..., :2] = np.where(track.visible[..., None], track.points, 0.0)
    kp[..., 2] = track.visible
    for t in range(n_frames):
        yield painter.frame(t), kp[t].copy()


_BODY_IDX = np.arange(0, 25)
_FACE_IDX = np.arange(FACE0, LHAND0)
_HAND_IDX = np.arange(LHAND0, N_KEYPOINTS)
_TIPS = np.concatenate([b + np.array([4, 8, 12, 16, 20]) for b in (LHAND0, RHAND0)])


def openpose_noise(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[T, 137, 3] clean -> noisy copy like real OpenPose output: gaussian jitter (per axis about
    1.2 px body, 1.7 px face, 2.1 px hands for a person filling a 180-pixel-high frame; scaled with
    the person's size and growing as the confidence drops) plus a small constant per-point bias,
    confidences in 0.3-0.95, random dropped points set to (0, 0, 0) (fingers and
    face more often) and occasional whole-hand drop-outs for a few frames. Never modifies its input."""
    kp = np.asarray(keypoints, np.float32)
    n = kp.shape[0]
    out = kp.copy()
    seen = kp[..., 2] > 0
    both = seen[:, 2] & seen[:, 5]
    shoulders = np.linalg.norm(kp[both, 2, :2] - kp[both, 5, :2], axis=1)
    size = float(np.median(shoulders)) / 50.0 if len(shoulders) else 1.0  # ~50 px shoulders at 180 px height

    mean = np.empty(N_KEYPOINTS, np.float32)
    mean[_BODY_IDX], mean[_FACE_IDX], mean[_HAND_IDX] = 0.78, 0.68, 0.55
    conf = np.clip(mean + 0.1 * rng.standard_normal((n, N_KEYPOINTS)), 0.3, 0.95).astype(np.float32)
    sigma = np.empty(N_KEYPOINTS, np.float32)
    sigma[_BODY_IDX], sigma[_FACE_IDX], sigma[_HAND_IDX] = 1.5, 1.8, 2.0
    scale = sigma * size * (1.6 - conf)
    bias = 0.4 * size * rng.standard_normal((1, N_KEYPOINTS, 2))
    out[..., :2] += (scale[..., None] * rng.standard_normal((n, N_KEYPOINTS, 2)) + bias).astype(np.float32)
    out[..., 2] = conf

    p_drop = np.full(N_KEYPOINTS, 0.01)
    p_drop[_FACE_IDX], p_drop[_HAND_IDX], p_drop[_TIPS] = 0.03, 0.04, 0.08
    drop = rng.random((n, N_KEYPOINTS)) < p_drop
    for base in (LHAND0, RHAND0):
        t = 0
        while True:
            t += int(rng.geometric(1 / 120))
            if t >= n:
                break
            length = int(rng.integers(2, 9))
            drop[t : t + length, base : base + 21] = True
            t += length
    out[drop | ~seen] = 0.0
    return out


# ----------------------------------------------------------------------------------------------
# Emotion cues (``mg sample-data --preset emotion``)
# ----------------------------------------------------------------------------------------------

# Self-touching / fidgeting micro-gestures (self-adaptors: the hands touch the own face, hair, arms
# or hands, or fiddle with an object) and the other ones (open talking gestures, head up).
CALM_LABELS: tuple[int, ...] = (HEAD_UP, ILLUSTRATIVE)
SELF_TOUCH_LABELS: tuple[int, ...] = tuple(c for c in SAMPLE_LABELS if c not in CALM_LABELS)

MOUTH_GAIN = 0.12  # mouth-corner lift per unit of expression intensity, head units (~5 px at 112x112)
BROW_GAIN = 0.09  # brow lift per unit of expression intensity, head units (~4 px at 112x112)
EXPRESSION_CLIP = 2.2  # |intensity| cap, so that extreme draws stay a plausible face
ENERGY_SLOPE = 0.6  # movement energy factor exp(-ENERGY_SLOPE * z_beh), clipped to [0.3, 3]
ROCK_GAIN = 0.012  # restless torso rocking per unit of energy, body units
JIGGLE_GAIN = 0.01  # restless jiggle of the resting hands per unit of energy, body units
TOUCH_SLOPE = 1.5  # P(self-touching gesture) = 1 / (1 + exp(TOUCH_SLOPE * z_beh))
GAP_SLOPE = 0.4  # idle gaps between gestures scale by exp(GAP_SLOPE * z_beh)

# Face template rows moved by the expression: (row, share of the mouth lift, outward share). Rows
# follow the OpenPose 70-point face: 48/54 outer mouth corners, 49/59 and 53/55 their neighbours,
# 60/64 inner corners, 61/67 and 63/65 their neighbours; the lip centre (50-52, 56-58, 62, 66) stays.
_MOUTH_ROWS: tuple[tuple[int, float, float], ...] = (
    (48, 1.0, -0.25),
    (54, 1.0, 0.25),
    (49, 0.45, 0.0),
    (59, 0.45, 0.0),
    (53, 0.45, 0.0),
    (55, 0.45, 0.0),
    (60, 0.8, -0.2),
    (64, 0.8, 0.2),
    (61, 0.35, 0.0),
    (67, 0.35, 0.0),
    (63, 0.35, 0.0),
    (65, 0.35, 0.0),
)
_BROWS = slice(17, 27)
_INNER_BROWS = (21, 22)


@dataclass(frozen=True)
class EmotionCues:
    """What the emotion preset adds to one video.

    ``expression`` [T]: signed facial expression intensity per frame; +1 lifts the mouth corners by
    :data:`MOUTH_GAIN` and the brows by :data:`BROW_GAIN` head units (a smile with raised brows),
    -1 pulls them down (mouth corners down, brows lowered, inner brows drawn down further).
    ``energy``: factor on every idle motion (lean, sway, head roll / yaw / nod, hand drift on the
    table); 1 is the default sample's motion. ``rock`` [T] (torso sway, body units, moves the neck,
    shoulders and head sideways) and ``jiggle`` [2, T, 2] (resting hands, body units) are restless
    motion on top, already scaled by ``energy``."""

    expression: np.ndarray
    energy: float
    rock: np.ndarray
    jiggle: np.ndarray


def emotion_cues(rng: np.random.Generator, z_face: float, z_beh: float, n: int, fps: float) -> EmotionCues:
    """Cues of one video from its latent strengths. The expression is ``z_face * a(t)`` plus noise:
    ``a(t) = clip(0.5 + 0.8 * slow noise, 0, 1)`` comes and goes over about a second and is 0 (a
    neutral face) in about a quarter of the frames; the noise is a fast smooth part (std 0.3,
    0.5 s knots) and an independent per-frame part (std 0.15). Energy is
    ``exp(-ENERGY_SLOPE * z_beh)`` clipped to [0.3, 3]: losers (low ``z_beh``) move more; the
    restless rocking (:data:`ROCK_GAIN`, 0.6 s knots) and hand jiggle (:data:`JIGGLE_GAIN`, 0.4 s
    knots) have amplitudes proportional to it."""
    active = np.clip(0.5 + 0.8 * _smooth_noise(rng, n, fps, 1.2), 0.0, 1.0)
    noise = 0.3 * _smooth_noise(rng, n, fps, 0.5) + 0.15 * rng.standard_normal(n)
    expression = np.clip(z_face * active + noise, -EXPRESSION_CLIP, EXPRESSION_CLIP)
    energy = float(np.clip(math.exp(-ENERGY_SLOPE * z_beh), 0.3, 3.0))
    rock = ROCK_GAIN * energy * _smooth_noise(rng, n, fps, 0.6)
    jiggle = (
        JIGGLE_GAIN
        * energy
        * np.stack([np.stack([_smooth_noise(rng, n, fps, 0.4) for _ in range(2)], 1) for _ in range(2)])
    )
    return EmotionCues(expression=expression, energy=energy, rock=rock, jiggle=jiggle)


def expression_offsets(intensity: np.ndarray, n_points: int) -> np.ndarray:
    """[T, n_points, 2] head-template offsets (head units, y down) of an expression intensity [T]."""
    i = np.asarray(intensity, np.float64)
    out = np.zeros((len(i), n_points, 2))
    lift = MOUTH_GAIN * i
    for row, share, outward in _MOUTH_ROWS:
        out[:, row, 1] = -share * lift
        out[:, row, 0] = outward * lift
    out[:, _BROWS, 1] = -(BROW_GAIN * i)[:, None]
    out[:, list(_INNER_BROWS), 1] += (0.5 * BROW_GAIN * np.maximum(-i, 0.0))[:, None]
    return out


def plan_emotion_segments(
    rng: np.random.Generator, z_beh: float, seconds: float, fps: float
) -> tuple[list[tuple[int, int, int]], int]:
    """Segment plan of an emotion-preset video of ``seconds`` (same format as :func:`plan_segments`).
    Gestures last 1-2 s, idle gaps ``uniform(0.3, 1.2) * exp(GAP_SLOPE * z_beh)`` s, so losers make
    more gestures; each is self-touching (:data:`SELF_TOUCH_LABELS`) with probability
    ``1 / (1 + exp(TOUCH_SLOPE * z_beh))``, else one of :data:`CALM_LABELS`. At least one gesture."""
    n = max(1, round(seconds * fps))
    p_touch = 1.0 / (1.0 + math.exp(TOUCH_SLOPE * z_beh))
    gap = math.exp(GAP_SLOPE * z_beh)
    t = rng.uniform(0.3, 0.8)
    segments: list[tuple[int, int, int]] = []
    while True:
        dur = rng.uniform(1.0, 2.0)
        touch = rng.random() < p_touch
        pool = SELF_TOUCH_LABELS if touch else CALM_LABELS
        label = int(pool[int(rng.integers(len(pool)))])
        start, end = round(t * fps), round((t + dur) * fps) - 1
        if end > n - 1 - round(0.3 * fps):
            if segments:
                break
            end = max(start + 2, n - 1 - round(0.3 * fps))
        segments.append((label, start, end))
        t += dur + rng.uniform(0.3, 1.2) * gap
    return segments, n
