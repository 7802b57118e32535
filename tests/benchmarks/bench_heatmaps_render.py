"""Benchmark: vectorised heatmap rendering against a per-frame NumPy loop (run by `make bench`).

Both render the same clips on one CPU thread: a COCO-17 skeleton filling a 64x64 frame, moving
over 48 frames, sigma 0.6 (PoseConv3D's setting), one or two persons. The NumPy side does what
mmaction2's GeneratePoseTarget does: for every frame, every joint (limb), every person, draw the
window patch and merge it with a maximum. Times are medians over 25 rounds; a round times one
reference call, then ten calls of `generate`, and the speed-up is the median of the per-round
ratios, so a slow spell of the machine hits both sides alike. Every call returns a fresh array.
(``make bench-peers`` times mmaction2's own GeneratePoseTarget.) Then, for one person, where the
time of a call goes: writing the output volume, the fixed cost of a call, the per-instance work.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

from mgcli.heatmaps.render import COCO17_LIMBS, generate

SIGMA = 0.6
SIZE = 64
FRAMES = 48
EPS = 1e-4

# COCO-17 joints of a standing person in a 64x64 frame (x right, y down; person's left on the right).
_TEMPLATE = np.array(
    [
        (32, 8),
        (34, 6.5),
        (30, 6.5),
        (36.5, 7.5),
        (27.5, 7.5),
        (41, 16),
        (23, 16),
        (45, 27),
        (19, 27),
        (47, 37),
        (17, 37),
        (38, 36),
        (26, 36),
        (39, 48),
        (25, 48),
        (40, 59),
        (24, 59),
    ],
    np.float32,
)


def skeleton_clip(rng: np.random.Generator, persons: int, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [M, T, 17, 2] and scores [M, T, 17] of people gesturing; the second person is
    smaller and shifted right, overlapping the first."""
    kp = np.empty((persons, frames, 17, 2), np.float32)
    t = np.arange(frames)[:, None, None]
    for m in range(persons):
        base = _TEMPLATE * (1.0 - 0.2 * m) + np.array([14.0 * m, 4.0 * m])
        amplitude = rng.uniform(0, 4, (17, 2))
        amplitude[:5] *= 0.3  # the head moves less than the arms
        phase = rng.uniform(0, 2 * np.pi, (17, 1))
        kp[m] = base + amplitude * np.sin(4 * np.pi * t / frames + phase) + rng.normal(0, 0.5, (frames, 17, 2))
    return kp, rng.uniform(0.4, 1.0, (persons, frames, 17)).astype(np.float32)


# ---- the per-frame NumPy reference (the steps of mmaction2's GeneratePoseTarget, float32) ----


def _bounds(lo: float, hi: float, sigma: float, n: int) -> tuple[int, int]:
    return max(int(lo - 3 * sigma), 0), min(int(hi + 3 * sigma) + 1, n)


def _draw_joint(canvas: np.ndarray, centres: np.ndarray, values: np.ndarray, sigma: float) -> None:
    """One joint of every person, into one frame's map."""
    h, w = canvas.shape
    for centre, value in zip(centres, values, strict=False):
        if value < EPS:
            continue
        x0, x1 = _bounds(centre[0], centre[0], sigma, w)
        y0, y1 = _bounds(centre[1], centre[1], sigma, h)
        xs = np.arange(x0, x1, 1, np.float32)
        ys = np.arange(y0, y1, 1, np.float32)
        if not (len(xs) and len(ys)):
            continue
        ys = ys[:, None]
        patch = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / 2 / sigma**2) * value
        canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def _draw_limb(
    canvas: np.ndarray, starts: np.ndarray, ends: np.ndarray, vstart: np.ndarray, vend: np.ndarray, sigma: float
) -> None:
    """One limb of every person, into one frame's map."""
    h, w = canvas.shape
    for a, b, va, vb in zip(starts, ends, vstart, vend, strict=False):
        value = min(va, vb)
        if value < EPS:
            continue
        x0, x1 = _bounds(min(a[0], b[0]), max(a[0], b[0]), sigma, w)
        y0, y1 = _bounds(min(a[1], b[1]), max(a[1], b[1]), sigma, h)
        xs = np.arange(x0, x1, 1, np.float32)
        ys = np.arange(y0, y1, 1, np.float32)
        if not (len(xs) and len(ys)):
            continue
        ys = ys[:, None]
        zx, zy = np.zeros_like(xs), np.zeros_like(ys)
        da2 = (xs - a[0]) ** 2 + (ys - a[1]) ** 2
        db2 = (xs - b[0]) ** 2 + (ys - b[1]) ** 2
        ab2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
        if ab2 < 1:  # shorter than a pixel: the joint at a, with a's score
            _draw_joint(canvas, a[None], va[None], sigma)
            continue
        t = (da2 - db2 + ab2) / 2.0 / ab2  # projection of the pixel on a -> b, in units of |ab|
        before, after = t <= 0, t >= 1
        between = 1 - before - after
        pixel = np.stack([xs + zy, ys + zx], axis=-1)
        foot = a + np.stack([t, t], axis=-1) * (b - a)
        off = pixel - foot
        dl2 = off[:, :, 0] ** 2 + off[:, :, 1] ** 2
        d2 = before * da2 + after * db2 + between * dl2
        patch = np.exp(-d2 / 2.0 / sigma**2) * value
        canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def numpy_reference(kp: np.ndarray, score: np.ndarray, kind: str, limbs=COCO17_LIMBS) -> np.ndarray:  # type: ignore[no-untyped-def]
    """[T, C, H, W] like the reference: a loop over frames, then channels, then persons."""
    kp = kp.astype(np.float32)
    _, frames, joints, _ = kp.shape
    channels = joints if kind == "joint" else len(limbs)
    out = np.zeros((frames, channels, SIZE, SIZE), np.float32)
    for t in range(frames):
        pts, values = kp[:, t], score[:, t]  # [M, V, 2], [M, V]
        for c in range(channels):
            if kind == "joint":
                _draw_joint(out[t, c], pts[:, c], values[:, c], SIGMA)
            else:
                i, j = limbs[c]
                _draw_limb(out[t, c], pts[:, i], pts[:, j], values[:, i], values[:, j], SIGMA)
    return out


# ---- timing ----


def _interleaved(ref, ours, rounds: int = 25, inner: int = 10) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(median ref time, median ours time, median per-round ratio). Each round times one reference
    call and `inner` calls of ours right after it, so a slow spell of the machine hits both."""
    ref_t, ours_t, ratio = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ref()
        r = time.perf_counter() - t0
        ts = []
        for _ in range(inner):
            t0 = time.perf_counter()
            ours()
            ts.append(time.perf_counter() - t0)
        o = float(np.median(ts))
        ref_t.append(r)
        ours_t.append(o)
        ratio.append(r / o)
    return float(np.median(ref_t)), float(np.median(ours_t)), float(np.median(ratio))


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"heatmap rendering, 1 CPU thread, {FRAMES} frames, {SIZE}x{SIZE}, sigma {SIGMA}, torch {torch.__version__}")
    print(f"{'case':<34s} {'numpy loop':>11s} {'generate':>10s} {'speed-up':>9s} {'max |diff|':>11s}")
    cases = [
        ("17 joints, 1 person", "joint", 1),
        ("17 joints, 2 persons", "joint", 2),
        ("17 limbs, 1 person", "limb", 1),
        ("17 limbs, 2 persons", "limb", 2),
    ]
    for label, kind, persons in cases:
        kp, score = skeleton_clip(rng, persons)
        ref = numpy_reference(kp, score, kind).transpose(1, 0, 2, 3)
        ours = generate(kp, score, (SIZE, SIZE), SIGMA, kind=kind).numpy()
        diff = float(np.abs(ref - ours).max())
        ours_fn = functools.partial(generate, kp, score, (SIZE, SIZE), SIGMA, kind=kind)
        for _ in range(20):  # warm-up
            ours_fn()
        ref_t, ours_t, speedup = _interleaved(functools.partial(numpy_reference, kp, score, kind), ours_fn)
        print(f"{label:<34s} {ref_t * 1e3:8.2f} ms {ours_t * 1e3:7.3f} ms {speedup:8.1f}x {diff:11.1e}")
    for kind in ("joint", "limb"):
        profile(rng, kind)


def _median_ms(fn, reps: int = 200) -> float:  # type: ignore[no-untyped-def]
    for _ in range(10):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def _write_floor(shape: tuple[int, ...]) -> np.ndarray:
    """What any renderer must do at least: a zeroed output, every cache line of it written."""
    out = np.zeros(shape, np.float32)
    out.reshape(-1)[::16] = 0.5
    return out


def profile(rng: np.random.Generator, kind: str) -> None:
    """Where the time of the 1-person case goes, from the outside: writing the output volume (the
    floor), the fixed cost of a call (a one-frame clip: Python and torch op dispatch) and the rest,
    which grows with the instances (windows, gaussians, indices, scatter)."""
    kp, score = skeleton_clip(rng, 1)
    total = _median_ms(lambda: generate(kp, score, (SIZE, SIZE), SIGMA, kind=kind))
    floor = _median_ms(lambda: _write_floor((17, FRAMES, SIZE, SIZE)))
    fixed = _median_ms(lambda: generate(kp[:, :1], score[:, :1], (SIZE, SIZE), SIGMA, kind=kind))
    rest = total - floor - fixed
    parts = {"floor": floor, "fixed": fixed, "rest": rest}
    share = {k: f"{v:.2f} ms ({100 * v / total:.0f} %)" for k, v in parts.items()}
    print(
        f"17 {kind}s, 1 person, {total:.2f} ms: writing the output {share['floor']}, per call {share['fixed']}, "
        f"per instance {share['rest']}"
    )


if __name__ == "__main__":
    main()
