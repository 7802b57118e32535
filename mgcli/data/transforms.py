"""The transforms every dataset shares: PoseConv3D's sampling, PoseCompact, resize, crops, flip.

Keypoint transforms move coordinates (``[M, T, V, 2]`` pixels) and track the size of the virtual
image they live in; heatmaps are rendered afterwards by :func:`mgcli.heatmaps.generate`. Frame
transforms work on uint8 ``[t, 3, H, W]`` tensors. The semantics follow mmaction2/pyskl:

- :func:`uniform_sample`: ``clip_len`` indices from ``num_frames``; train mode draws one random
  frame per segment (random start when the clip is shorter, random repeats when it is at most
  twice as long); test mode draws ``num_clips`` such clips from a fixed seed (255), so test views
  are deterministic.
- :func:`compact_box` / :func:`pose_compact`: the tight box around every non-zero keypoint of the
  clip, grown by ``padding``, at least ``hw_ratio`` (1: square), image padding allowed; nothing
  happens when the box is smaller than ``threshold`` pixels (:class:`CompactConfig`).
- :func:`random_crop_box`: RandomResizedCrop's box (area range, log-uniform aspect 3/4-4/3, 10
  attempts, else a centre square), used for keypoints (:func:`random_resized_crop`) and frames alike.
- :func:`resize`, :func:`center_crop`, :func:`flip` (``x -> W - x`` for non-zero x, left/right
  joints swapped from the layout) on keypoints; :func:`resize_frames`, :func:`crop_padded` on frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TEST_SEED = 255


@dataclass(frozen=True)
class CompactConfig:
    """PoseCompact's box: ``padding`` grows the tight keypoint box, ``threshold`` (pixels) is the
    smallest box that counts, ``hw_ratio`` the least height/width ratio (1: square)."""

    padding: float = 0.25
    threshold: int = 10
    hw_ratio: float | None = 1.0


# ------------------------------------------------------------------------------------- sampling


def _one_clip(num_frames: int, clip_len: int, rng: np.random.Generator) -> np.ndarray:
    if num_frames < clip_len:
        start = int(rng.integers(0, num_frames))
        return np.arange(start, start + clip_len)
    if num_frames < 2 * clip_len:
        extra = rng.choice(clip_len + 1, num_frames - clip_len, replace=False)
        offset = np.zeros(clip_len + 1, np.int64)
        offset[extra] = 1
        return np.arange(clip_len) + np.cumsum(offset)[:-1]
    bounds = np.arange(clip_len + 1) * num_frames // clip_len
    return bounds[:-1] + rng.integers(0, np.diff(bounds))


def uniform_sample(
    num_frames: int, clip_len: int, num_clips: int = 1, test: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``[num_clips * clip_len]`` frame indices in ``[0, num_frames)`` (wrapping short clips)."""
    if num_frames < 1:
        raise ValueError("a clip needs at least one frame")
    gen = np.random.default_rng(TEST_SEED) if test else (rng or np.random.default_rng())
    inds = np.concatenate([_one_clip(num_frames, clip_len, gen) for _ in range(num_clips)])
    return inds % num_frames


# ------------------------------------------------------------------------------------- PoseCompact


def compact_box(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    cfg: CompactConfig = CompactConfig(),
    allow_imgpad: bool = True,
) -> tuple[int, int, int, int] | None:
    """PoseCompact's box ``(x0, y0, x1, y1)`` in pixels (may reach outside the image when
    ``allow_imgpad``), or None when the keypoints span less than ``cfg.threshold`` pixels."""
    kp = np.nan_to_num(np.asarray(keypoint, np.float32))
    h, w = img_shape
    x, y = kp[..., 0], kp[..., 1]
    nz_x, nz_y = x[x != 0], y[y != 0]
    if not nz_x.size or not nz_y.size:
        return None
    min_x, max_x, min_y, max_y = nz_x.min(), nz_x.max(), nz_y.min(), nz_y.max()
    if max_x - min_x < cfg.threshold or max_y - min_y < cfg.threshold:
        return None
    cx, cy = (max_x + min_x) / 2, (max_y + min_y) / 2
    half_w = (max_x - min_x) / 2 * (1 + cfg.padding)
    half_h = (max_y - min_y) / 2 * (1 + cfg.padding)
    if cfg.hw_ratio is not None:
        half_h = max(cfg.hw_ratio * half_w, half_h)
        half_w = max(1 / cfg.hw_ratio * half_h, half_w)
    x0, x1, y0, y1 = cx - half_w, cx + half_w, cy - half_h, cy + half_h
    if allow_imgpad:
        return int(x0), int(y0), int(x1), int(y1)
    return int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))


def pose_compact(
    keypoint: np.ndarray, img_shape: tuple[int, int], cfg: CompactConfig = CompactConfig()
) -> tuple[np.ndarray, tuple[int, int]]:
    """Keypoints moved into the padded tight box of the clip, and that box's ``(h, w)``."""
    kp = np.nan_to_num(np.array(keypoint, np.float32, copy=True))
    box = compact_box(kp, img_shape, cfg)
    if box is None:
        return kp, (int(img_shape[0]), int(img_shape[1]))
    x0, y0, x1, y1 = box
    x, y = kp[..., 0], kp[..., 1]
    x[x != 0] -= x0
    y[y != 0] -= y0
    return kp, (y1 - y0, x1 - x0)


def running_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median over a centred window of ``window`` frames along axis 0 (the edges repeat)."""
    if window <= 1 or len(x) < 3:
        return x
    half = window // 2
    padded = np.pad(x, [(half, half)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, window, axis=0), axis=-1)


def follow_person(keypoint: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Keypoints ``[M, T, V, 2]`` moved frame by frame so that the person's ``centre`` ``[T, 2]``
    stays at its mean: someone walking about keeps one place, their pose and size are kept.
    Undetected joints (0, 0) stay (0, 0)."""
    kp = np.nan_to_num(np.asarray(keypoint, np.float32))
    seen = (kp != 0).any(-1, keepdims=True)
    moved = kp - (centre - centre.mean(0))[None, :, None]
    return np.where(seen, moved, 0.0).astype(np.float32)


# ------------------------------------------------------------------------------------- keypoints


def resize(
    keypoint: np.ndarray, img_shape: tuple[int, int], size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """Scale to ``size = (h, w)``; ``h = -1`` or ``w = -1`` keeps the ratio with the other side
    as the short side (mmaction2's ``Resize(scale=(-1, s))``)."""
    h, w = img_shape
    new_h, new_w = size
    if new_h == -1 or new_w == -1:
        new_h, new_w = short_side_size(h, w, max(new_h, new_w))
    kp = np.array(keypoint, np.float32, copy=True)
    kp[..., 0] *= new_w / w
    kp[..., 1] *= new_h / h
    return kp, (new_h, new_w)


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """``(h, w)`` with the short side scaled to ``short``, aspect kept (mmaction2 rounding)."""
    f = short / min(h, w)
    return int(h * f + 0.5), int(w * f + 0.5)


def random_crop_box(
    h: int,
    w: int,
    rng: np.random.Generator,
    area_range: tuple[float, float] = (0.08, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
    max_attempts: int = 10,
) -> tuple[int, int, int, int]:
    """mmaction2's RandomResizedCrop box ``(x0, y0, crop_w, crop_h)`` in an ``h x w`` image: up to
    ``max_attempts`` draws of area fraction and log-uniform aspect ratio, else a centre square."""
    ratios = np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1]), max_attempts))
    areas = rng.uniform(*area_range, max_attempts) * h * w
    crop_w = np.round(np.sqrt(areas * ratios)).astype(np.int64)
    crop_h = np.round(np.sqrt(areas / ratios)).astype(np.int64)
    for cw, ch in zip(crop_w, crop_h, strict=True):
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), int(cw), int(ch)
    side = min(h, w)
    return (w - side) // 2, (h - side) // 2, side, side


def _shift(keypoint: np.ndarray, x0: int, y0: int) -> np.ndarray:
    return np.asarray(keypoint, np.float32) - np.array([x0, y0], np.float32)


def random_resized_crop(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    rng: np.random.Generator,
    area_range: tuple[float, float] = (0.56, 1.0),
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[np.ndarray, tuple[int, int]]:
    """Keypoints in a :func:`random_crop_box` of the image, and the crop's ``(h, w)``."""
    x0, y0, cw, ch = random_crop_box(img_shape[0], img_shape[1], rng, area_range, aspect_range)
    return _shift(keypoint, x0, y0), (ch, cw)


def center_crop(keypoint: np.ndarray, img_shape: tuple[int, int], size: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = img_shape
    return _shift(keypoint, (w - size) // 2, (h - size) // 2), (size, size)


def flip(
    keypoint: np.ndarray, score: np.ndarray, img_width: int, flip_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror horizontally (non-zero x only, as PoseConv3D) and swap left/right joints."""
    kp = np.array(keypoint, np.float32, copy=True)
    x = kp[..., 0]
    x[x != 0] = img_width - x[x != 0]
    return kp[..., flip_index, :], np.asarray(score)[..., flip_index]


# ------------------------------------------------------------------------------------- frames


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of uint8 ``[t, 3, H, W]`` to ``size = (h, w)`` (antialiased when shrinking)."""
    h, w = frames.shape[-2:]
    if (h, w) == tuple(size):
        return frames
    shrink = size[0] < h or size[1] < w
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def crop_padded(frames: torch.Tensor, box: np.ndarray) -> torch.Tensor:
    """``frames [u, 3, H, W]`` cut to ``box`` (fractions ``(x0, y0, x1, y1)`` of the frame),
    zero-padded where the box reaches outside the frame."""
    h, w = frames.shape[-2:]
    x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    pad = (max(0, -x0), max(0, x1 - w), max(0, -y0), max(0, y1 - h))
    if any(pad):
        frames = F.pad(frames, pad)
        x0, x1, y0, y1 = x0 + pad[0], x1 + pad[0], y0 + pad[2], y1 + pad[2]
    return frames[..., y0:y1, x0:x1]
