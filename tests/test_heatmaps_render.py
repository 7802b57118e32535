"""The vectorised heatmap renderer against a plain per-person, per-frame, per-joint reference.

The reference below follows the published algorithm (mmaction2 GeneratePoseTarget, use_score=True)
step by step: float32 keypoints, window bounds ``max(int(lo - 3 sigma), 0)`` and
``min(int(hi + 3 sigma) + 1, n)`` in float32 arithmetic (NumPy 2 rules), a score test
``score < eps -> skip``, a limb shorter than one pixel drawn as the joint at its start point with
the start score, persons merged by maximum. Pixel values are evaluated either exactly (float64) or
with the reference's own float32 formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mgcli.heatmaps import render
from mgcli.heatmaps.render import COCO17_LIMBS, generate

EPS = 1e-4


# ---------------------------------------------------------------------------------------------
# Reference
# ---------------------------------------------------------------------------------------------


def _bounds(lo: np.float32, hi: np.float32, sigma: float, n: int) -> tuple[int, int]:
    """Half-open pixel range of a window, as the reference computes it (float32 - Python float)."""
    return max(int(lo - 3 * sigma), 0), min(int(hi + 3 * sigma) + 1, n)


def _joint(canvas: np.ndarray, centre: np.ndarray, value: np.float32, sigma: float, exact: bool) -> None:
    h, w = canvas.shape
    if value < EPS:
        return
    x0, x1 = _bounds(centre[0], centre[0], sigma, w)
    y0, y1 = _bounds(centre[1], centre[1], sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    ft = np.float64 if exact else np.float32
    xs = np.arange(x0, x1, dtype=ft)
    ys = np.arange(y0, y1, dtype=ft)[:, None]
    cx, cy = ft(centre[0]), ft(centre[1])
    patch = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 2 / sigma**2) * ft(value)
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def _limb(
    canvas: np.ndarray, a: np.ndarray, b: np.ndarray, va: np.float32, vb: np.float32, sigma: float, exact: bool
) -> None:
    h, w = canvas.shape
    value = min(va, vb)
    if value < EPS:
        return
    x0, x1 = _bounds(min(a[0], b[0]), max(a[0], b[0]), sigma, w)
    y0, y1 = _bounds(min(a[1], b[1]), max(a[1], b[1]), sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    ab2 = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2  # float32, as in the reference
    if ab2 < 1:
        _joint(canvas, a, va, sigma, exact)
        return
    if exact:
        xs = np.arange(x0, x1, dtype=np.float64)
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]
        ax, ay, dx, dy = float(a[0]), float(a[1]), float(b[0]) - float(a[0]), float(b[1]) - float(a[1])
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / (dx * dx + dy * dy), 0, 1)
        d2 = (xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2
    else:  # the reference's float32 formulation: projection coefficient from squared distances
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        da2 = (xs - a[0]) ** 2 + (ys - a[1]) ** 2
        db2 = (xs - b[0]) ** 2 + (ys - b[1]) ** 2
        t = (da2 - db2 + ab2) / 2.0 / ab2
        px, py = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        d2 = np.where(t <= 0, da2, np.where(t >= 1, db2, (xs - px) ** 2 + (ys - py) ** 2))
    patch = np.exp(-d2 / 2.0 / sigma**2) * value
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def reference(kp, score, size, sigma, kind="joint", limbs=COCO17_LIMBS, exact=True) -> np.ndarray:  # type: ignore[no-untyped-def]
    kp = np.asarray(kp).astype(np.float32)
    score = np.asarray(score).astype(np.float32)
    persons, frames, joints, _ = kp.shape
    channels = joints if kind == "joint" else len(limbs)
    out = np.zeros((channels, frames, *size), np.float64)
    for t in range(frames):
        for c in range(channels):
            for m in range(persons):
                if kind == "joint":
                    _joint(out[c, t], kp[m, t, c], score[m, t, c], sigma, exact)
                else:
                    i, j = limbs[c]
                    _limb(out[c, t], kp[m, t, i], kp[m, t, j], score[m, t, i], score[m, t, j], sigma, exact)
    return out


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def messy_clip(seed: int, size: tuple[int, int], persons: int = 3, frames: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints inside and partly outside the image, overlapping persons, zero and sub-eps
    scores, short and zero-length limbs, points far outside."""
    rng = np.random.default_rng(seed)
    h, w = size
    kp = np.stack(
        [rng.uniform(-12, w + 12, (persons, frames, 17)), rng.uniform(-12, h + 12, (persons, frames, 17))], -1
    )
    if persons > 1:
        kp[1] = kp[0] + rng.normal(0, 1.5, kp[0].shape)  # person 1 overlaps person 0
    score = rng.uniform(0, 1, (persons, frames, 17))
    score[rng.random(score.shape) < 0.1] = 0.0
    score[rng.random(score.shape) < 0.05] = 5e-5  # below eps
    score[rng.random(score.shape) < 0.05] = 2e-4  # just above
    # Short limbs: (0, 1) zero length, (1, 3) shorter than a pixel, (5, 7) just over a pixel.
    kp[:, :, 1] = kp[:, :, 0]
    kp[:, :, 3] = kp[:, :, 1] + rng.uniform(-0.65, 0.65, (persons, frames, 2))
    kp[:, :, 7] = kp[:, :, 5] + np.array([0.8, 0.7])
    kp[-1, :, 16] = (1e4, -1e4)  # far outside
    kp[-1, :, 15] = (w / 2, -500.0)  # limb (13, 15) crosses into the image from far away
    return kp.astype(np.float32), score.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Against the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["joint", "limb"])
@pytest.mark.parametrize("sigma", [0.6, 1.0])
@pytest.mark.parametrize("size", [(48, 64), (64, 48), (37, 53)])
def test_matches_reference(kind: str, sigma: float, size: tuple[int, int]) -> None:
    kp, score = messy_clip(100 * (kind == "limb") + 10 * int(sigma * 10) + size[0], size)
    got = generate(kp, score, size, sigma, kind=kind).numpy()
    assert got.shape == (17, 6, *size) and got.dtype == np.float32
    for exact in (True, False):
        want = reference(kp, score, size, sigma, kind, exact=exact)
        assert np.abs(got - want).max() <= 1e-5, f"exact={exact}"
    assert got.max() > 0.1  # the clip does draw something


@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_float64_is_the_exact_algorithm(kind: str) -> None:
    # In float64 only the window decisions are float32 (as in the reference), and the values match
    # the exactly evaluated reference to rounding.
    kp, score = messy_clip(21, (40, 44), persons=3, frames=5)
    got = generate(kp, score, (40, 44), 0.6, kind=kind, dtype=torch.float64).numpy()
    assert np.abs(got - reference(kp, score, (40, 44), 0.6, kind)).max() <= 1e-12


@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_one_frame_many_persons_overlapping(kind: str) -> None:
    rng = np.random.default_rng(3)
    kp = (np.array([20.0, 20.0]) + rng.normal(0, 3, (6, 1, 17, 2))).astype(np.float32)
    score = rng.uniform(0.05, 1, (6, 1, 17)).astype(np.float32)
    got = generate(kp, score, (40, 40), 1.0, kind=kind).numpy()
    assert np.abs(got - reference(kp, score, (40, 40), 1.0, kind)).max() <= 1e-5


def test_limbs_of_any_length_and_direction() -> None:
    # Long limbs in all directions, their ends in and out of the image.
    rng = np.random.default_rng(11)
    kp = rng.uniform(-30, 130, (2, 20, 17, 2)).astype(np.float32)
    score = rng.uniform(0.2, 1, (2, 20, 17)).astype(np.float32)
    limbs = [(i, j) for i in range(0, 17, 3) for j in range(1, 17, 4) if i != j]
    got = generate(kp, score, (96, 100), 0.6, kind="limb", limbs=limbs).numpy()
    assert np.abs(got - reference(kp, score, (96, 100), 0.6, "limb", limbs)).max() <= 1e-5
    assert np.abs(got - reference(kp, score, (96, 100), 0.6, "limb", limbs, exact=False)).max() <= 1e-5


# ---------------------------------------------------------------------------------------------
# What mmaction2's tests and the published algorithm pin down
# ---------------------------------------------------------------------------------------------


def _one_point_clip(
    points: list[tuple[float, float]], scores: list[float], frames: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    kp = np.array(points, np.float32)[None, None].repeat(frames, 1)
    return kp, np.array(scores, np.float32)[None, None].repeat(frames, 1)


def test_joint_peak_and_neighbour() -> None:
    kp, score = _one_point_clip([(24, 24), (40, 40), (24, 40)], [1.0, 1.0, 1.0])
    maps = generate(kp, score, (64, 64), 1.0).numpy()
    assert maps.shape == (3, 8, 64, 64)
    np.testing.assert_allclose(maps[:, 1], maps[:, 0])
    assert maps[0, 0, 24, 24] == pytest.approx(1.0, abs=1e-6)
    for y, x in [(24, 25), (24, 23), (25, 24), (23, 24)]:
        assert maps[0, 0, y, x] == pytest.approx(math.exp(-0.5), abs=1e-6)  # 0.6065
    assert maps[0, 0].max() == maps[0, 0, 24, 24]
    assert maps[2, 0, 40, 24] == pytest.approx(1.0, abs=1e-6)


def test_window_is_a_truncated_box() -> None:
    kp, score = _one_point_clip([(24, 24)], [1.0], frames=1)
    m = generate(kp, score, (64, 64), 1.0).numpy()[0, 0]
    assert m[24, 27] == pytest.approx(math.exp(-4.5), abs=1e-7)  # 3 sigma away: inside
    assert m[27, 27] == pytest.approx(math.exp(-9.0), abs=1e-7)  # the box's corner, not a disc
    assert m[24, 28] == 0 and m[28, 24] == 0 and m[24, 20] == 0  # past int(mx +- 3 sigma)
    assert np.count_nonzero(m) == 7 * 7


def test_window_bounds_truncate_toward_zero() -> None:
    # int() truncates toward zero: at x = -2.5, int(-2.5 + 1.8) = 0, so column 0 is lit (a floor
    # would give an empty window); at x = -3, int(-1.2) + 1 = 0 and nothing is drawn.
    kp, score = _one_point_clip([(-2.5, 10), (-3.0, 30)], [1.0, 1.0], frames=1)
    m = generate(kp, score, (40, 40), 0.6).numpy()[:, 0]
    assert m[0, 10, 0] == pytest.approx(math.exp(-(2.5**2) / 0.72), rel=1e-5)
    assert np.count_nonzero(m[0]) == 4 and np.count_nonzero(m[0][:, 1:]) == 0  # rows 8..11
    assert not m[1].any()


@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_zero_scores_draw_nothing(kind: str) -> None:
    kp, score = _one_point_clip([(24, 24), (40, 40), (24, 40)], [0.0, 0.0, 0.0])
    maps = generate(kp, score, (64, 64), 1.0, kind=kind, limbs=((0, 1), (1, 2), (0, 2)))
    assert maps.shape == (3, 8, 64, 64) and not maps.any()


@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_keypoints_outside_the_image_draw_nothing(kind: str) -> None:
    kp, score = _one_point_clip([(124, 124), (140, 140), (124, 140)], [1.0, 1.0, 1.0])
    assert not generate(kp, score, (64, 64), 1.0, kind=kind, limbs=((0, 1), (1, 2), (0, 2))).any()
    kp, score = _one_point_clip([(-124, 24), (-140, 40), (24, -140)], [1.0, 1.0, 1.0])
    assert not generate(kp, score, (64, 64), 1.0, kind=kind, limbs=((0, 1), (1, 0))).any()


def test_eps_rule() -> None:
    kp, score = _one_point_clip([(10, 10), (30, 30), (50, 50)], [5e-5, 1e-4, 2e-4], frames=1)
    m = generate(kp, score, (64, 64), 1.0).numpy()[:, 0]
    assert not m[0].any()  # below eps: skipped
    assert m[1, 30, 30] == pytest.approx(1e-4) and m[2, 50, 50] == pytest.approx(2e-4)  # eps itself is drawn
    assert not generate(kp, score, (64, 64), 1.0, eps=0.5).any()
    # Limbs: the smaller end score decides.
    limbs = ((0, 1), (1, 2))
    m = generate(kp, score, (64, 64), 1.0, kind="limb", limbs=limbs).numpy()[:, 0]
    assert not m[0].any() and m[1].max() == pytest.approx(1e-4)


def test_limb_values() -> None:
    kp, score = _one_point_clip([(24, 24), (40, 24), (24, 40)], [1.0, 0.5, 1.0], frames=1)
    m = generate(kp, score, (64, 64), 1.0, kind="limb", limbs=((0, 1), (0, 2))).numpy()[:, 0]
    assert m[0, 24, 30] == pytest.approx(0.5)  # on the segment: min(s_a, s_b)
    assert m[0, 25, 30] == pytest.approx(0.5 * math.exp(-0.5))  # one pixel off it
    assert m[0, 24, 42] == pytest.approx(0.5 * math.exp(-2.0))  # past b: distance to b
    assert m[0, 24, 44] == 0  # past the window
    assert m[1, 32, 24] == pytest.approx(1.0) and m[1, 32, 25] == pytest.approx(math.exp(-0.5))


def test_short_limb_is_the_start_joint_with_the_start_score() -> None:
    kp, score = _one_point_clip([(20, 20), (20.5, 20.3), (20, 20)], [0.9, 0.5, 0.3], frames=1)
    m = generate(kp, score, (40, 40), 1.0, kind="limb", limbs=((0, 1), (2, 0), (0, 0))).numpy()[:, 0]
    joint = generate(kp, score, (40, 40), 1.0).numpy()[:, 0]
    np.testing.assert_allclose(m[0], joint[0], atol=1e-6)  # at a, peak s_a = 0.9 (not 0.5)
    np.testing.assert_allclose(m[1], joint[2], atol=1e-6)  # zero length: the joint at a (0.3)
    np.testing.assert_allclose(m[2], joint[0], atol=1e-6)
    score[0, 0, 1] = 5e-5  # min(s_a, s_b) < eps: nothing, even though s_a is large
    assert not generate(kp, score, (40, 40), 1.0, kind="limb", limbs=((0, 1),)).any()


@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_nan_and_inf_draw_nothing_and_leave_the_rest(kind: str) -> None:
    kp, score = messy_clip(5, (32, 32), persons=2, frames=3)
    bad = kp.copy()
    bad_score = score.copy()
    bad[0, 0, 4] = np.nan
    bad[1, 1, 6] = (np.inf, 10.0)
    bad[0, 2, 9] = (-np.inf, np.inf)
    bad_score[1, 2, 10] = np.nan
    got = generate(bad, bad_score, (32, 32), 1.0, kind=kind).numpy()
    missing = score.copy()  # what the reference draws when these points are absent
    missing[0, 0, 4] = missing[1, 1, 6] = missing[0, 2, 9] = missing[1, 2, 10] = 0
    assert np.isfinite(got).all()
    assert np.abs(got - reference(kp, missing, (32, 32), 1.0, kind)).max() <= 1e-5


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------


def test_numpy_and_tensor_inputs_agree() -> None:
    kp, score = messy_clip(1, (48, 48), persons=2, frames=4)
    for kind in ("joint", "limb"):
        a = generate(kp, score, (48, 48), 0.6, kind=kind)
        b = generate(torch.from_numpy(kp), torch.from_numpy(score), (48, 48), 0.6, kind=kind)
        c = generate(kp.astype(np.float64), score.astype(np.float64), (48, 48), 0.6, kind=kind)
        d = generate(torch.from_numpy(kp).half().float(), score.tolist(), (48, 48), 0.6, kind=kind)
        assert torch.equal(a, b) and torch.equal(a, c)
        assert d.shape == a.shape


def test_dtype_shape_and_layout() -> None:
    kp, score = messy_clip(2, (30, 40), persons=2, frames=5)
    out = generate(kp, score, (30, 40), 0.6)
    assert out.shape == (17, 5, 30, 40) and out.dtype == torch.float32 and out.is_contiguous()
    assert out.device.type == "cpu" and not out.requires_grad
    assert torch.equal(generate(kp, score, (30, 40), 0.6, device="cpu"), out)
    assert torch.equal(generate(kp, score, np.array([30, 40]), 0.6, device=torch.device("cpu")), out)
    limbs = generate(kp, score, (30, 40), 0.6, kind="limb", limbs=[(0, 1), (5, 6)])
    assert limbs.shape == (2, 5, 30, 40) and limbs.is_contiguous()
    assert generate(kp, score, (30, 40), 0.6, kind="limb").shape == (len(COCO17_LIMBS), 5, 30, 40)
    f64 = generate(kp, score, (30, 40), 0.6, dtype=torch.float64)
    assert f64.dtype == torch.float64 and (f64 - out.double()).abs().max() < 1e-6
    f16 = generate(kp, score, (30, 40), 0.6, kind="limb", dtype=torch.float16)
    assert (
        f16.dtype == torch.float16
        and (f16.float() - generate(kp, score, (30, 40), 0.6, kind="limb")).abs().max() < 1e-3
    )


def test_no_grad_and_inputs_that_require_grad() -> None:
    kp, score = messy_clip(4, (32, 32), persons=1, frames=2)
    kp_t = torch.from_numpy(kp).requires_grad_()
    out = generate(kp_t, torch.from_numpy(score), (32, 32), 1.0, kind="limb")
    assert not out.requires_grad and out.grad_fn is None
    with torch.no_grad():
        again = generate(kp, score, (32, 32), 1.0, kind="limb")
    assert torch.equal(out, again)
    with torch.inference_mode():
        assert torch.equal(generate(kp, score, (32, 32), 1.0, kind="limb"), out)


def test_empty_inputs() -> None:
    assert not generate(np.zeros((0, 4, 17, 2)), np.zeros((0, 4, 17)), (8, 9), 1.0).any()
    assert generate(np.zeros((0, 4, 17, 2)), np.zeros((0, 4, 17)), (8, 9), 1.0).shape == (17, 4, 8, 9)
    assert generate(np.zeros((2, 0, 17, 2)), np.zeros((2, 0, 17)), (8, 9), 1.0, kind="limb").shape == (17, 0, 8, 9)
    assert generate(np.zeros((1, 3, 5, 2)), np.zeros((1, 3, 5)), (8, 9), 1.0, kind="limb", limbs=[]).shape == (
        0,
        3,
        8,
        9,
    )


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((np.zeros((1, 2, 3)), np.zeros((1, 2)), (8, 8), 1.0), {}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 4)), (8, 8), 1.0), {}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 3)), (8, 8), 0.0), {}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 3)), (0, 8), 1.0), {}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 3)), (8, 8), 1.0), {"kind": "bone"}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 3)), (8, 8), 1.0), {"kind": "limb", "limbs": [(0, 3)]}),
        ((np.zeros((1, 2, 3, 2)), np.zeros((1, 2, 3)), (8, 8), 1.0), {"dtype": torch.int32}),
    ],
)
def test_bad_arguments(args, kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        generate(*args, **kwargs)


@pytest.mark.parametrize("kind", ["joint", "limb"])
@pytest.mark.parametrize("persons", [1, 3])
def test_chunked_and_large_index_paths_agree(kind: str, persons: int, monkeypatch: pytest.MonkeyPatch) -> None:
    kp, score = messy_clip(8, (40, 44), persons=persons, frames=5)
    whole = generate(kp, score, (40, 44), 0.6, kind=kind)
    # (Equal up to the last bit or so: vectorised and scalar exp2 may round differently.)
    monkeypatch.setattr(render, "_CHUNK_BYTES", 2048)  # many chunks
    torch.testing.assert_close(generate(kp, score, (40, 44), 0.6, kind=kind), whole, rtol=1e-6, atol=1e-9)
    monkeypatch.setattr(render, "_EXACT_INDEX", 64)  # float64 indices and row numbers
    torch.testing.assert_close(generate(kp, score, (40, 44), 0.6, kind=kind), whole, rtol=1e-6, atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("kind", ["joint", "limb"])
def test_cuda_matches_cpu(kind: str) -> None:
    kp, score = messy_clip(9, (48, 64), persons=3, frames=6)
    cpu = generate(kp, score, (48, 64), 0.6, kind=kind)
    gpu = generate(kp, score, (48, 64), 0.6, kind=kind, device="cuda")
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() <= 1e-5
    on_device = generate(torch.from_numpy(kp).cuda(), torch.from_numpy(score).cuda(), (48, 64), 0.6, kind=kind)
    assert on_device.device.type == "cuda"
