"""Pseudo-heatmaps of keypoints and limbs, vectorised in PyTorch (PoseConv3D's GeneratePoseTarget).

The maps are the ones mmaction2's ``GeneratePoseTarget`` draws with ``use_score=True``; only the
way of computing them differs. Pixel centres sit on integer coordinates.

Joint of a person with keypoint ``(mx, my)`` and score ``s``::

    value(x, y) = s * exp(-((x - mx)^2 + (y - my)^2) / (2 sigma^2))

inside the window ``int(mx - 3 sigma) <= x <= int(mx + 3 sigma)`` (same for ``y``) clipped to the
image, 0 outside. ``int`` truncates toward zero, so a keypoint less than ``3 sigma + 1`` pixels
left of (or above) the image still lights column (row) 0. A score below ``eps`` draws nothing, and
a keypoint far outside the image has an empty window, so it draws nothing either.

Limb ``(a, b)``: a gaussian of the squared distance from the pixel to the segment a-b (to the
nearer end point where the projection falls outside the segment) with peak ``min(s_a, s_b)``,
inside the bounding box of a and b grown by ``3 sigma`` on each side (same truncation and
clipping). Nothing is drawn when ``min(s_a, s_b) < eps``. A limb shorter than one pixel
(``|b - a|^2 < 1``) is drawn as the joint gaussian of ``a``, with peak ``s_a`` (not the minimum).

Persons are merged by a pixel-wise maximum over an all-zero background. Window bounds, the
short-limb test and the ``eps`` test use the coordinates' dtype (float32 by default), as the
reference does under NumPy 2.

How it is computed
------------------
Only window pixels are evaluated (windows are a few pixels wide, the image is not). All (person,
channel, frame) instances are evaluated at once and scattered into the zero-filled output, with
an ``amax`` reduction when there are several persons, which is the maximum over persons. No
Python loop runs over persons, channels or frames; the only loops run over chunks that keep the
per-pixel temporaries below ``_CHUNK_BYTES`` (one chunk for a typical clip).

Joints: the gaussian is separable and the window is a rectangle, so an instance is the outer
product of a masked column profile and a masked row profile (carrying the score) over a patch the
size of the batch's largest window, moved inside the image where it would stick out.

Limbs: window columns are cut into strips of ``_SEG`` pixels and a strip's rows into segments, so
every window pixel is ``(segment, j)`` with ``j < _SEG`` (pixels past the end of a window row repeat
its last pixel: same index, same value, no masking). Along a segment the distance across the
limb's line and the overshoots before ``a`` and past ``b`` are affine in ``j``, and down a strip
affine in the row. Per strip they are computed in float64 at the row where each is nearest to 0
(its "anchor"), so the float32 values of a segment, anchor value + rows from the anchor * slope,
are rounded relative to the distance they represent rather than to the image size. The squared
distance to the segment is ``across^2 + max(0, before, past)^2``. A short limb is the same
computation with direction ``(1, 0)`` and length 0.

Both use ``exp2`` with the constants folded in (4x faster than ``exp`` on CPU); arguments are
clamped at -126 (below, ``exp2`` takes a slow path) and values at that floor set to 0, which changes
values by less than 1.2e-38.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mgcli.pose.layouts import COCO17_LIMBS  # PoseConv3D's default skeleton, defined once

__all__ = ["COCO17_LIMBS", "BatchRender", "generate", "pack_keypoints"]


_SEG = 8  # pixels per limb-window segment
_CHUNK_BYTES = 8 << 20  # bound on the largest per-pixel temporary (the int64 scatter index)
_EXP2_FLOOR = -126.0  # exp2 below this is the slow path (float32 underflow)
_TINY = 2.0**_EXP2_FLOOR  # exp2(_EXP2_FLOOR), exact in float32 and float64
_LOG2E = 1.0 / math.log(2.0)
_EXACT_INDEX = 2**24  # float32 holds every integer below this exactly
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def generate(
    keypoint: np.ndarray | torch.Tensor,
    keypoint_score: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    sigma: float,
    kind: str = "joint",
    limbs: Sequence[tuple[int, int]] | None = None,
    eps: float = 1e-4,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Render the PoseConv3D pseudo-heatmaps of a clip.

    Args:
        keypoint: ``[M, T, V, 2]`` (x, y) in output-pixel coordinates, numpy array or tensor.
        keypoint_score: ``[M, T, V]``. A joint whose score is below ``eps`` (a limb whose
            smaller end score is) is not drawn. NaN scores and NaN or infinite coordinates draw
            nothing.
        size: ``(H, W)`` of the maps.
        sigma: standard deviation of the gaussian, in pixels.
        kind: ``"joint"`` -> ``[V, T, H, W]``; ``"limb"`` -> ``[len(limbs), T, H, W]``.
        limbs: ``(a, b)`` joint-index pairs for ``kind="limb"`` (default :data:`COCO17_LIMBS`).
        eps: score threshold (mmaction2: 1e-4).
        device: where to compute; default: the keypoint tensor's device, else the CPU.
        dtype: floating output dtype. float64 is computed in float64 (window bounds included),
            the rest in float32.

    Returns:
        The maps, maximum over persons, on ``device``, outside autograd, contiguous.
    """
    if kind not in ("joint", "limb"):
        raise ValueError(f"kind must be 'joint' or 'limb', not {kind!r}")
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, not {sigma}")
    height, width = (int(n) for n in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be two positive integers, not {size}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, not {dtype}")
    if device is None:
        device = keypoint.device if isinstance(keypoint, torch.Tensor) else "cpu"
    device = torch.device(device)
    work = torch.float64 if dtype == torch.float64 else torch.float32

    with torch.no_grad():
        kp = torch.as_tensor(keypoint, device=device)
        score = torch.as_tensor(keypoint_score, device=device)
        if kp.ndim != 4 or kp.shape[-1] != 2:
            raise ValueError(f"keypoint must be [M, T, V, 2], got {tuple(kp.shape)}")
        if score.shape != kp.shape[:3]:
            raise ValueError(f"keypoint_score must be {tuple(kp.shape[:3])}, got {tuple(score.shape)}")
        persons, frames, joints, _ = kp.shape
        if kind == "joint":
            channels = joints
        else:
            pairs = np.asarray(COCO17_LIMBS if limbs is None else limbs, dtype=np.int64).reshape(-1, 2)
            if ((pairs < 0) | (pairs >= joints)).any():
                raise ValueError(f"limbs must be pairs of joint indices in 0..{joints - 1}")
            limbs = tuple(map(tuple, pairs.tolist()))
            channels = len(limbs)
        out = _Output((channels, frames, height, width), work, device)
        if persons and out.numel:
            # [M, V, T, 3] = (x, y, score): channel-major like the output, so instance (m, c, t)
            # lands in output frame c * T + t. Contiguous: elementwise results inherit the layout
            # of their inputs, and strided layouts are several times slower.
            pose = torch.cat([kp.to(work), score.to(work)[..., None]], -1).transpose(1, 2).contiguous()
            if kind == "joint":
                _joint_maps(pose, sigma, eps, out)
            else:
                _limb_maps(pose, limbs, sigma, eps, out)
        result = out.tensor()
        return result if result.dtype == dtype else result.to(dtype)


def pack_keypoints(keypoint: np.ndarray, keypoint_score: np.ndarray) -> torch.Tensor:
    """Keypoints ``[..., V, 2]`` and scores ``[..., V]`` as one float32 tensor ``[..., V, 3]``
    (x, y, score): what a sample carries when its heatmaps are rendered later (:class:`BatchRender`)."""
    return torch.from_numpy(np.concatenate([keypoint, keypoint_score[..., None]], -1).astype(np.float32, copy=False))


@dataclass(frozen=True)
class BatchRender:
    """Render a batch of packed keypoints ``[B, M, T, V, 3]`` (:func:`pack_keypoints`; clips with
    fewer persons padded with score-0 persons, which draw nothing) into heatmaps ``[B, C, T, H, W]``
    with one :func:`generate` call on the batch's device: the clips become consecutive frames of
    one volume. Each clip's maps are the ones :func:`generate` draws for it alone."""

    size: tuple[int, int]
    sigma: float
    kind: str = "joint"
    limbs: tuple[tuple[int, int], ...] | None = None

    def __call__(self, packed: torch.Tensor) -> torch.Tensor:
        b, m, t, v, _ = packed.shape
        pts = packed.transpose(0, 1).reshape(m, b * t, v, 3)
        vol = generate(pts[..., :2], pts[..., 2], self.size, self.sigma, kind=self.kind, limbs=self.limbs)
        return vol.view(vol.shape[0], b, t, *vol.shape[2:]).transpose(0, 1).contiguous()


class _Output:
    """The zero-filled output, allocated on first use, right before the first scatter: the
    planning runs before a clip-sized buffer is written through the caches, and part of the buffer
    is still cached when the scatter reaches it."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        self.shape, self.dtype, self.device = shape, dtype, device
        self.numel = math.prod(shape)
        self._flat: torch.Tensor | None = None

    @property
    def flat(self) -> torch.Tensor:
        if self._flat is None:
            n = self.numel
            if self.device.type == "cpu" and self.dtype in _NUMPY_DTYPES:
                # NumPy's zeros (calloc; huge pages requested for large arrays) measured 5-15%
                # faster than torch.zeros per clip here.
                self._flat = torch.from_numpy(np.zeros(n, _NUMPY_DTYPES[self.dtype]))
            else:
                self._flat = torch.zeros(n, dtype=self.dtype, device=self.device)
        return self._flat

    def tensor(self) -> torch.Tensor:
        return self.flat.view(self.shape)


def _window(
    lo: torch.Tensor, hi: torch.Tensor | None, sigma: float, width: int, height: int
) -> tuple[torch.Tensor, ...]:
    """The reference's windows ``[int(lo - 3 sigma), int(hi + 3 sigma)]`` of [P, 2] (x, y) bounds
    (``hi=None``: same as ``lo``), clipped to the image, inclusive, as floats: (first, last), empty
    where first > last (also for NaN). Same arithmetic as the reference: +-3 sigma in the
    coordinates' dtype, truncation toward 0."""
    offset, last_pixel = _constants(sigma, width, height, lo.dtype, lo.device)
    ext = (lo[None] if hi is None else torch.stack([lo, hi])).add(offset).trunc_()  # [2, P, 2]
    return ext[0].clamp_(min=0), ext[1].clamp_(max=last_pixel)


@functools.lru_cache(maxsize=64)
def _constants(
    sigma: float, width: int, height: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """(-3 sigma, +3 sigma) as [2, 1, 1] and the last pixel (W - 1, H - 1)."""
    return (
        torch.tensor([-3 * sigma, 3 * sigma], dtype=dtype, device=device).view(2, 1, 1),
        torch.tensor([width - 1, height - 1], dtype=dtype, device=device),
    )


@functools.lru_cache(maxsize=64)
def _patch_offsets(ky: int, kx: int, width: int, device: torch.device) -> torch.Tensor:
    """[ky, kx, 1] flat offsets of a patch's pixels from its top-left pixel."""
    return (
        torch.arange(ky, device=device)[:, None, None] * width + torch.arange(kx, device=device)[:, None]
    ).contiguous()


def _chunks(total: int, bytes_per_item: int) -> range:
    """Start of each chunk of items, with chunk size * bytes_per_item <= _CHUNK_BYTES."""
    return range(0, total, max(1, _CHUNK_BYTES // max(bytes_per_item, 1)))


def _joint_maps(pose: torch.Tensor, sigma: float, eps: float, out: _Output) -> None:
    """pose [M, V, T, 3] -> out [V, T, H, W]."""
    dev, work = pose.device, pose.dtype
    persons, joints, frames, _ = pose.shape
    _, _, height, width = out.shape
    pts = pose.view(-1, 3)  # instance (m, v, t)
    xy = pts[:, :2]
    first, last = _window(xy, None, sigma, width, height)
    keep = (first <= last).all(1).logical_and_(pts[:, 2] >= eps)  # False for NaN
    inst = keep.nonzero().squeeze(1)
    if inst.numel() == 0:
        return
    pts, first, last = torch.cat([pts, first, last], 1)[inst].split([3, 2, 2], 1)
    # Patch: the batch's largest window (per axis), moved inside the image where it sticks out.
    kx, ky = (int(n) for n in (last - first).amax(0).tolist())
    kx, ky = kx + 1, ky + 1
    origin = torch.minimum(first, torch.tensor([width - kx, height - ky], dtype=work, device=dev))
    # Masked 1-D gaussians along both axes at once: [K, P, 2].
    pix = origin + torch.arange(max(kx, ky), dtype=work, device=dev)[:, None, None]
    g = (pix - pts[:, :2]).square_().mul_(-_LOG2E / (2 * sigma * sigma)).clamp_(min=_EXP2_FLOOR).exp2_()
    g.mul_((pix >= first).logical_and_(pix <= last))
    cols, rows = g[:kx, :, 0], g[:ky, :, 1].mul_(pts[:, 2].clamp(min=0))
    base = (
        (inst % (joints * frames)).mul_(height * width).add_(torch.add(origin[:, 0], origin[:, 1], alpha=width).long())
    )
    offsets = _patch_offsets(ky, kx, width, dev)
    chunks = _chunks(inst.numel(), 8 * kx * ky)
    for i in chunks:
        sl = slice(i, i + chunks.step)
        values = rows[:, None, sl] * cols[None, :, sl]  # [ky, kx, P]
        index = base[sl] + offsets
        # One person: instances never share a frame and patches stay inside theirs.
        if persons == 1:
            out.flat.scatter_(0, index.view(-1), values.view(-1))
        else:
            out.flat.scatter_reduce_(0, index.view(-1), values.view(-1), "amax")


@functools.lru_cache(maxsize=64)
def _limb_ends(limbs: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
    return torch.tensor([a for a, _ in limbs] + [b for _, b in limbs], device=device)


# Per-limb-instance features (float64 columns) used by _limb_basis; (rx, ry) is the window's
# top-left pixel relative to a, (ux, uy) the unit direction times k.
_FEATURES = (
    "rx_ux",
    "rx_uy",
    "ry_ux",
    "ry_uy",
    "ux",
    "uy",
    "length",
    "logv",
    "w",
    "x0",
    "y0",
    "h",
    "first_strip",
    "frame",
    "one",
)


@functools.lru_cache(maxsize=64)
def _limb_basis(q: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """[24, 15]: instance features -> 11 strip quantities at the window origin, their change per
    strip of q columns, and the instance's window height and first strip number. The strip
    quantities: across, before, past (values at the strip's first pixel), flat output index of
    that pixel, change of across per pixel (uy), change of past per pixel (ux; before changes by
    -ux), log2 peak, offset of the window's last column, change of across/before/past per row.
    Entries are 0, +-1, q, W, H*W: the float64 products are exact."""
    at_origin = [
        {"rx_uy": 1, "ry_ux": -1},
        {"rx_ux": -1, "ry_uy": -1},
        {"rx_ux": 1, "ry_uy": 1, "length": -1},
        {"x0": 1, "y0": width, "frame": height * width},
        {"uy": 1},
        {"ux": 1},
        {"logv": 1},
        {"w": 1, "one": -1},
        {"ux": -1},
        {"uy": -1},
        {"uy": 1},
    ]
    per_strip = [{"uy": q}, {"ux": -q}, {"ux": q}, {"one": q}, {}, {}, {}, {"one": -q}, {}, {}, {}]
    basis = torch.zeros(24, len(_FEATURES), dtype=torch.float64)
    for row, terms in enumerate([*at_origin, *per_strip, {"h": 1}, {"first_strip": 1}]):
        for name, coef in terms.items():
            basis[row, _FEATURES.index(name)] = coef
    return basis.to(device)


@functools.lru_cache(maxsize=16)
def _unit_x(device: torch.device) -> torch.Tensor:
    return torch.tensor([1.0, 0.0], dtype=torch.float64, device=device)


@functools.lru_cache(maxsize=64)
def _frame_one(instances: int, frames: int, device: torch.device) -> torch.Tensor:
    """[P0, 2] float64: (output frame of the instance, 1); instance (m, c, t) -> c * T + t."""
    frame = torch.arange(instances, dtype=torch.float64, device=device).remainder_(frames)
    return torch.stack([frame, torch.ones_like(frame)], 1)


def _limb_maps(pose: torch.Tensor, limbs: tuple[tuple[int, int], ...], sigma: float, eps: float, out: _Output) -> None:
    """pose [M, V, T, 3] -> out [C, T, H, W]."""
    dev, work = pose.device, pose.dtype
    persons, _, frames, _ = pose.shape
    _, _, height, width = out.shape
    nlimb, q = len(limbs), _SEG
    # [2, P0, 3]: start and end point of instance (m, c, t).
    ab = (
        pose.index_select(1, _limb_ends(limbs, dev))
        .view(persons, 2, nlimb * frames, 3)
        .transpose(0, 1)
        .reshape(2, -1, 3)
    )
    a, b = ab[0, :, :2], ab[1, :, :2]

    # The reference's decisions, in its arithmetic: short limb, window, skip rule.
    d = b - a
    short = (d * d).sum(1) < 1
    vmin = ab[:, :, 2].amin(0)
    other = torch.where(short[:, None], a, b)  # a short limb is drawn at a, in a's window
    first, last = _window(torch.minimum(a, other), torch.maximum(a, other), sigma, width, height)
    keep = (first <= last).all(1).logical_and_(vmin >= eps).logical_and_(torch.isfinite(d).all(1))
    peak = torch.where(short, ab[0, :, 2], vmin)

    # Instances, float64, lengths in units where the gaussian is exp2(-d^2). Dropped instances
    # stay, with no strips.
    a64, d64, first64, last64, short64, peak64 = (
        torch.cat([a, d, first, last, short[:, None], peak[:, None]], 1).double().split([2, 2, 2, 2, 1, 1], 1)
    )
    k = math.sqrt(_LOG2E / 2) / sigma
    direction = torch.lerp(d64, _unit_x(dev), short64)
    length = torch.linalg.vector_norm(direction, dim=1, keepdim=True)
    ku = direction.mul_(k / length)  # unit direction * k; (1, 0) * k for a short limb
    klen = length.mul_(k).mul_(1.0 - short64)  # short limb: length 0
    size = last64 - first64 + 1  # window (w, h)
    nseg = torch.where(keep[:, None], size[:, :1].div(q).ceil_(), 0.0)  # strips of q columns
    outer = ((first64 - a64)[:, :, None] * ku[:, None, :]).view(-1, 4)  # rx*ux, rx*uy, ry*ux, ry*uy
    features = torch.cat(
        [
            outer,
            ku,
            klen,
            peak64.clamp_(min=0).log2_(),
            size[:, :1],
            first64,
            size[:, 1:],
            torch.cumsum(nseg, 0).sub_(nseg),
            _frame_one(nseg.numel(), nlimb * frames, dev),
        ],
        1,
    )
    table = _limb_basis(q, height, width, dev) @ features.t()  # [24, P0]
    count = torch.where(keep[:, None], nseg * size[:, 1:], 0.0)  # segments: strips x rows
    strips, total = (int(n) for n in torch.stack([nseg.sum(), count.sum()]).tolist())
    if total == 0:
        return

    # Strips: window columns [c*q, c*q + q) of an instance, all rows. Quantities at the strip's
    # first column: across, before, past at the row where each is closest to 0 ("anchor" row;
    # values elsewhere are anchor value + rows from the anchor * change per row, which keeps the
    # float32 rounding relative to the distance), flat output index (row 0), change of across per
    # pixel, change of past per pixel, log2 peak, offset of the window's last column, the three
    # anchor rows, the three changes per row, the strip's first segment.
    owner = torch.repeat_interleave(nseg.view(-1).long(), output_size=strips)
    g = torch.gather(table, 1, owner.expand(24, strips))
    col = torch.arange(strips, dtype=torch.float64, device=dev).sub_(g[23])
    strip = torch.addcmul(g[:11], col, g[11:22])
    rows = g[22]
    anchor = torch.div(strip[:3], strip[8:11]).neg_().round_().nan_to_num_(0.0)
    anchor = torch.minimum(anchor.clamp_(min=0), rows - 1)
    strip[:3].addcmul_(anchor, strip[8:11])
    first_row = torch.cumsum(rows, 0) - rows
    base = strip[3].clone()
    strip = torch.cat([strip[:8], anchor, strip[8:11], first_row[None]]).to(work)

    # Segments: one window row of a strip, [15, total] (rows as above; 0-3 for this segment).
    owner = torch.repeat_interleave(rows.long(), output_size=total)
    seg = torch.gather(strip, 1, owner.expand(15, total))
    if total < _EXACT_INDEX or work == torch.float64:  # integers up to `total` are exact in `work`
        row = torch.arange(total, dtype=work, device=dev).sub_(seg[14])  # row in the window
    else:
        row = torch.arange(total, dtype=torch.float64, device=dev).sub_(first_row.index_select(0, owner)).to(work)
    seg[:3].addcmul_(row - seg[8:11], seg[11:14])
    exact = out.numel < _EXACT_INDEX or work == torch.float64  # flat indices are exact in `work`
    if exact:
        seg[3].add_(row, alpha=width)
    else:
        base = base.index_select(0, owner).add_(row.double(), alpha=width)

    j = torch.arange(q, dtype=work, device=dev)[:, None]
    chunks = _chunks(total, 8 * q)
    for i in chunks:
        p = seg[:, i : i + chunks.step]
        jc = torch.minimum(j, p[7])  # [q, S]; past the row's end: repeat its last pixel
        across = torch.addcmul(p[0], p[4], jc)
        over = torch.addcmul(p[1], p[5], jc, value=-1)
        torch.maximum(over, torch.addcmul(p[2], p[5], jc), out=over).clamp_(min=0)
        e = torch.addcmul(p[6], across, across, value=-1).addcmul_(over, over, value=-1)
        e.clamp_(min=_EXP2_FLOOR).exp2_()
        torch.nn.functional.threshold_(e, _TINY, 0.0)  # values at the floor -> exactly 0
        index = (jc.add_(p[3]) if exact else jc.double().add_(base[i : i + chunks.step])).long()
        if persons == 1:  # instances never share a frame; repeated pixels carry equal values
            out.flat.scatter_(0, index.view(-1), e.view(-1))
        else:
            out.flat.scatter_reduce_(0, index.view(-1), e.view(-1), "amax")
