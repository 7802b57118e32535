"""Named keypoint layouts: joint names, left/right flips, limbs, and conversion between layouts.

Every joint has a canonical name shared across layouts (``left_shoulder``, ``right_thumb4``,
``face_36``...), so converting is a lookup by name. A target joint missing from the source is
derived when a rule exists (``neck`` = mean of the shoulders) or left empty (zeros, score 0).

Layouts:

- ``openpose137``: OpenPose BODY_25 + 70 face points + 21 left-hand + 21 right-hand points
  (the release's ``{vid}_openpose.xlsx``).
- ``openpose35``: BODY_25 + the five fingertips of the left, then the right hand (the release's
  ``{vid}_light_hand.csv``).
- ``body25``: OpenPose BODY_25.
- ``coco17``: COCO keypoints; limbs and flip lists as PoseConv3D uses them.
- ``mediapipe33``: MediaPipe Pose landmarks.
- ``mediapipe75``: MediaPipe Holistic: the 33 pose landmarks + 21 left-hand + 21 right-hand points.
- ``upper22``: the upper-body subset of the MiGA 2023 winner: nose, shoulder centre, shoulders,
  elbows, hands (wrists), eyes, ears, five right and five left fingertips.

"left"/"right" are the person's own sides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mgcli.errors import MgError

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
BODY25 = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
BODY25_LIMBS = (
    (1, 8),
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (8, 9),
    (9, 10),
    (10, 11),
    (8, 12),
    (12, 13),
    (13, 14),
    (1, 0),
    (0, 15),
    (15, 17),
    (0, 16),
    (16, 18),
    (14, 19),
    (19, 20),
    (14, 21),
    (11, 22),
    (22, 23),
    (11, 24),
)
COCO17 = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# PoseConv3D's COCO limbs (mmaction2 GeneratePoseTarget defaults), in this order.
COCO17_LIMBS = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (0, 5),
    (5, 7),
    (7, 9),
    (0, 6),
    (6, 8),
    (8, 10),
    (5, 11),
    (11, 13),
    (13, 15),
    (6, 12),
    (12, 14),
    (14, 16),
    (11, 12),
)
MEDIAPIPE33 = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky_knuckle",
    "right_pinky_knuckle",
    "left_index_knuckle",
    "right_index_knuckle",
    "left_thumb_knuckle",
    "right_thumb_knuckle",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
MEDIAPIPE33_LIMBS = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
)


def _hand(side: str) -> tuple[str, ...]:
    return (f"{side}_hand_root",) + tuple(f"{side}_{f}{k}" for f in FINGERS for k in range(1, 5))


def _hand_limbs(offset: int) -> tuple[tuple[int, int], ...]:
    limbs = []
    for f in range(5):
        chain = [0] + [1 + 4 * f + k for k in range(4)]
        limbs += [(offset + a, offset + b) for a, b in zip(chain, chain[1:], strict=False)]
    return tuple(limbs)


# OpenPose face: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips 48-67, pupils 68-69.
_FACE_MIRROR = {
    **{i: 16 - i for i in range(17)},
    **{17 + i: 26 - i for i in range(5)},
    27: 27,
    28: 28,
    29: 29,
    30: 30,
    31: 35,
    32: 34,
    33: 33,
    36: 45,
    37: 44,
    38: 43,
    39: 42,
    40: 47,
    41: 46,
    48: 54,
    49: 53,
    50: 52,
    51: 51,
    55: 59,
    56: 58,
    57: 57,
    60: 64,
    61: 63,
    62: 62,
    65: 67,
    66: 66,
    68: 69,
}
_FACE_MIRROR.update({b: a for a, b in list(_FACE_MIRROR.items())})
_FACE_CHAINS = (range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36))
_FACE_LOOPS = (range(36, 42), range(42, 48), range(48, 60), range(60, 68))


def _face_limbs(offset: int) -> tuple[tuple[int, int], ...]:
    limbs = []
    for chain in _FACE_CHAINS:
        c = list(chain)
        limbs += list(zip(c, c[1:], strict=False))
    for loop in _FACE_LOOPS:
        c = list(loop)
        limbs += list(zip(c, c[1:] + c[:1], strict=True))
    return tuple((offset + a, offset + b) for a, b in limbs)


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    if name.startswith("face_"):
        return f"face_{_FACE_MIRROR[int(name[5:])]}"
    for a, b in (("mouth_left", "mouth_right"),):
        if name == a:
            return b
        if name == b:
            return a
    return name


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    center: int  # the joint a skeleton graph is centred on (for GCNs)
    description: str = ""

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @cached_property
    def flip_index(self) -> np.ndarray:
        """Permutation of joints under a horizontal flip (left <-> right)."""
        pos = {n: i for i, n in enumerate(self.joints)}
        return np.array([pos.get(_mirror_name(n), i) for i, n in enumerate(self.joints)], np.int64)

    @cached_property
    def limb_flip_index(self) -> np.ndarray:
        """Permutation of limbs under a horizontal flip."""
        fi = self.flip_index
        pos = {frozenset(limb): i for i, limb in enumerate(self.limbs)}
        return np.array(
            [pos.get(frozenset((int(fi[a]), int(fi[b]))), i) for i, (a, b) in enumerate(self.limbs)], np.int64
        )

    @cached_property
    def parents(self) -> np.ndarray:
        """``int64 [V]``: each joint's parent on a breadth-first spanning tree of the limbs, rooted at ``center``.

        Neighbours are visited in limb-list order, so the tree is deterministic. The centre is its own
        parent, and so is every joint the limbs do not connect to the centre (e.g. openpose137's face).
        """
        return _bfs(self)[0]

    @cached_property
    def inward(self) -> tuple[tuple[int, int], ...]:
        """``(child, parent)`` edges towards the centre: every limb whose ends lie at hop distances
        differing by one, oriented from the farther joint to the nearer (a joint may have several).

        Limbs between joints equally far from the centre (coco17's hip-hip limb; pyskl's COCO graph
        omits it too) and joints not connected to the centre give no edge. In limb-list order.
        """
        hops = _bfs(self)[1]
        edges = []
        for a, b in self.limbs:
            if hops[a] < 0 or hops[b] < 0 or abs(int(hops[a]) - int(hops[b])) != 1:
                continue
            edges.append((a, b) if hops[a] > hops[b] else (b, a))
        return tuple(edges)

    @cached_property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """``(joint, parent)`` for every joint in joint order (the centre and unconnected joints pair with
        themselves: a zero bone)."""
        return tuple((v, int(p)) for v, p in enumerate(self.parents))

    @cached_property
    def adjacency(self) -> np.ndarray:
        """``float32 [3, V, V]``: the "spatial" partition of ST-GCN / 2s-AGCN: identity, inward, outward.

        Convention (that of 2s-AGCN's and pyskl's ``Graph``): ``A[k][i, j]`` is the weight from joint ``i``
        to joint ``j``, and features ``x [..., V]`` (joints on the last axis) aggregate as ``x @ A[k]``,
        ``(x @ A)[j] = sum_i x[i] * A[i, j]``. The un-normalised ``In`` has ``In[parent, child] = 1`` for
        every inward edge ``(child, parent)`` (2s-AGCN's ``edge2mat``), so with ``x @ A[1]`` a joint
        receives its parent's (the nearer joint's) features, and with ``Out = In.T`` (``A[2]``) a joint
        receives its children's. Both are column-normalised as 2s-AGCN's ``normalize_digraph``
        (``A @ diag(1 / column sums)``; a zero column, e.g. the centre's in ``In``, stays zero), so each
        joint takes the mean over its senders. ``A[0]`` is the identity (every joint, connected or not).
        """
        v = self.num_joints
        inward = np.zeros((v, v), np.float32)
        for child, parent in self.inward:
            inward[parent, child] = 1.0
        return np.stack([np.eye(v, dtype=np.float32), _normalize_columns(inward), _normalize_columns(inward.T)])

    @property
    def left(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.joints) if n.startswith("left_") or self._face_side(n) == "left")

    @property
    def right(self) -> tuple[int, ...]:
        return tuple(i for i, n in enumerate(self.joints) if n.startswith("right_") or self._face_side(n) == "right")

    @staticmethod
    def _face_side(name: str) -> str | None:
        # The face is indexed from the person's right (jaw point 0) to the left.
        if not name.startswith("face_"):
            return None
        i = int(name[5:])
        j = _FACE_MIRROR[i]
        return None if i == j else ("right" if i < j else "left")


def _bfs(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first search over the limbs from ``layout.center``: ``(parents [V], hops [V])``.

    Neighbours are visited in limb-list order. Unreachable joints are their own parent with hops -1.
    """
    v = layout.num_joints
    neighbours: list[list[int]] = [[] for _ in range(v)]
    for a, b in layout.limbs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    parents = np.arange(v, dtype=np.int64)
    hops = np.full(v, -1, np.int64)
    hops[layout.center] = 0
    queue = deque([layout.center])
    while queue:
        u = queue.popleft()
        for w in neighbours[u]:
            if hops[w] < 0:
                hops[w] = hops[u] + 1
                parents[w] = u
                queue.append(w)
    return parents, hops


def _normalize_columns(a: np.ndarray) -> np.ndarray:
    """``a @ diag(1 / column sums)`` (2s-AGCN's ``normalize_digraph``); zero columns stay zero."""
    sums = a.sum(axis=0)
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return (a * scale[None, :]).astype(np.float32)


OPENPOSE137 = BODY25 + tuple(f"face_{i}" for i in range(70)) + _hand("left") + _hand("right")
OPENPOSE35 = BODY25 + tuple(f"left_{f}4" for f in FINGERS) + tuple(f"right_{f}4" for f in FINGERS)
UPPER22 = (
    (
        "nose",
        "neck",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
    )
    + tuple(f"right_{f}4" for f in FINGERS)
    + tuple(f"left_{f}4" for f in FINGERS)
)
MEDIAPIPE75 = MEDIAPIPE33 + _hand("left") + _hand("right")


def _tips_limbs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    pos = {n: i for i, n in enumerate(names)}
    return tuple((pos[f"{s}_wrist"], pos[f"{s}_{f}4"]) for s in ("left", "right") for f in FINGERS)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "openpose137",
            OPENPOSE137,
            BODY25_LIMBS + _face_limbs(25) + _hand_limbs(95) + _hand_limbs(116) + ((4, 116), (7, 95)),
            1,
            "OpenPose BODY_25 + face 70 + hands 2x21 (release xlsx)",
        ),
        Layout(
            "openpose35",
            OPENPOSE35,
            BODY25_LIMBS + _tips_limbs(OPENPOSE35),
            1,
            "OpenPose BODY_25 + 5 fingertips per hand (release light_hand csv)",
        ),
        Layout("body25", BODY25, BODY25_LIMBS, 1, "OpenPose BODY_25"),
        Layout("coco17", COCO17, COCO17_LIMBS, 0, "COCO 17 keypoints"),
        Layout("mediapipe33", MEDIAPIPE33, MEDIAPIPE33_LIMBS, 0, "MediaPipe Pose landmarks"),
        Layout(
            "mediapipe75",
            MEDIAPIPE75,
            MEDIAPIPE33_LIMBS + _hand_limbs(33) + _hand_limbs(54) + ((15, 33), (16, 54)),
            0,
            "MediaPipe Holistic: pose 33 + hands 2x21",
        ),
        Layout(
            "upper22",
            UPPER22,
            ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (0, 8), (0, 9), (8, 10), (9, 11))
            + _tips_limbs(UPPER22),
            1,
            "upper body of the MiGA 2023 winner",
        ),
    )
}

# Joints a target may need that some sources lack, derived from others (mean of the listed).
DERIVED: dict[str, tuple[str, ...]] = {
    "neck": ("left_shoulder", "right_shoulder"),
    "mid_hip": ("left_hip", "right_hip"),
    "left_wrist": ("left_hand_root",),
    "right_wrist": ("right_hand_root",),
    "left_hand_root": ("left_wrist",),
    "right_hand_root": ("right_wrist",),
}
# MediaPipe Pose's hand points are knuckles; they stand in for fingertips when nothing better exists.
FALLBACK: dict[str, str] = {
    "left_thumb4": "left_thumb_knuckle",
    "right_thumb4": "right_thumb_knuckle",
    "left_index4": "left_index_knuckle",
    "right_index4": "right_index_knuckle",
    "left_pinky4": "left_pinky_knuckle",
    "right_pinky4": "right_pinky_knuckle",
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise MgError(f"unknown keypoint layout {name!r} (known: {', '.join(LAYOUTS)})") from None


@dataclass(frozen=True)
class Conversion:
    """How each target joint is made: the source joints averaged (empty: no source, zeros)."""

    source: Layout
    target: Layout
    parts: tuple[tuple[int, ...], ...]

    @property
    def missing(self) -> list[str]:
        return [self.target.joints[i] for i, p in enumerate(self.parts) if not p]


def conversion(source: str | Layout, target: str | Layout) -> Conversion:
    src = get_layout(source) if isinstance(source, str) else source
    dst = get_layout(target) if isinstance(target, str) else target
    pos = {n: i for i, n in enumerate(src.joints)}
    parts = []
    for name in dst.joints:
        if name in pos:
            parts.append((pos[name],))
        elif name in DERIVED and all(n in pos for n in DERIVED[name]):
            parts.append(tuple(pos[n] for n in DERIVED[name]))
        elif name in FALLBACK and FALLBACK[name] in pos:
            parts.append((pos[FALLBACK[name]],))
        else:
            parts.append(())
    return Conversion(src, dst, tuple(parts))


def convert(
    keypoint: np.ndarray, score: np.ndarray, source: str | Layout, target: str | Layout
) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``keypoint [..., V_src, 2]`` and ``score [..., V_src]`` to the target layout.

    A derived joint is the mean of its parts, with the smallest of their scores (zero when any
    part is undetected); a joint with no source is zeros with score 0.
    """
    conv = conversion(source, target)
    if keypoint.shape[-2] != conv.source.num_joints:
        raise MgError(
            f"keypoints have {keypoint.shape[-2]} joints, layout {conv.source.name} has {conv.source.num_joints}"
        )
    out_kp = np.zeros(keypoint.shape[:-2] + (conv.target.num_joints, 2), np.float32)
    out_sc = np.zeros(score.shape[:-1] + (conv.target.num_joints,), np.float32)
    for j, part in enumerate(conv.parts):
        if not part:
            continue
        idx = list(part)
        out_kp[..., j, :] = keypoint[..., idx, :].mean(axis=-2)
        out_sc[..., j] = score[..., idx].min(axis=-1)
    return out_kp, out_sc
