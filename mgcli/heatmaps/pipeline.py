"""PoseConv3D's pose pipeline on keypoints: sampling, PoseCompact, resize, crops, flip.

Everything here moves keypoint coordinates (``[M, T, V, 2]`` pixels) and tracks the size of the
virtual image they live in; heatmaps are rendered afterwards by :func:`mgcli.heatmaps.generate`.
The semantics follow mmaction2/pyskl:

- :func:`uniform_sample`: ``clip_len`` indices from ``num_frames``; train mode draws one random
  frame per segment (random start when the clip is shorter, random repeats when it is at most
  twice as long); test mode draws ``num_clips`` such clips from a fixed seed (255), so test views
  are deterministic.
- :func:`pose_compact`: the tight box around every non-zero keypoint of the clip, grown by
  ``padding``, at least ``hw_ratio`` (1: square), image padding allowed; nothing happens when the
  box is smaller than ``threshold`` pixels.
- :func:`resize`, :func:`random_resized_crop` (area 0.56-1, aspect 3/4-4/3, 10 attempts, else a
  centre crop), :func:`center_crop`, :func:`flip` (``x -> W - x`` for non-zero x, left/right
  joints swapped from the layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEST_SEED = 255


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


def pose_compact(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    padding: float = 0.25,
    threshold: int = 10,
    hw_ratio: float | tuple[float, float] | None = 1.0,
    allow_imgpad: bool = True,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Keypoints moved into the padded tight box of the clip, and that box's ``(h, w)``."""
    kp = np.nan_to_num(np.array(keypoint, np.float32, copy=True))
    box = compact_box(kp, img_shape, padding, threshold, hw_ratio, allow_imgpad)
    if box is None:
        return kp, (int(img_shape[0]), int(img_shape[1]))
    x0, y0, x1, y1 = box
    x, y = kp[..., 0], kp[..., 1]
    x[x != 0] -= x0
    y[y != 0] -= y0
    return kp, (y1 - y0, x1 - x0)


def compact_box(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    padding: float = 0.25,
    threshold: int = 10,
    hw_ratio: float | tuple[float, float] | None = 1.0,
    allow_imgpad: bool = True,
) -> tuple[int, int, int, int] | None:
    """PoseCompact's box ``(x0, y0, x1, y1)`` in pixels (may reach outside the image when
    ``allow_imgpad``), or None when the keypoints span less than ``threshold`` pixels."""
    kp = np.nan_to_num(np.asarray(keypoint, np.float32))
    h, w = img_shape
    x, y = kp[..., 0], kp[..., 1]
    nz_x, nz_y = x[x != 0], y[y != 0]
    if not nz_x.size or not nz_y.size:
        return None
    min_x, max_x, min_y, max_y = nz_x.min(), nz_x.max(), nz_y.min(), nz_y.max()
    if max_x - min_x < threshold or max_y - min_y < threshold:
        return None
    cx, cy = (max_x + min_x) / 2, (max_y + min_y) / 2
    half_w = (max_x - min_x) / 2 * (1 + padding)
    half_h = (max_y - min_y) / 2 * (1 + padding)
    if hw_ratio is not None:
        r0, r1 = (hw_ratio, hw_ratio) if np.isscalar(hw_ratio) else hw_ratio  # type: ignore[misc]
        half_h = max(r0 * half_w, half_h)
        half_w = max(1 / r1 * half_h, half_w)
    x0, x1, y0, y1 = cx - half_w, cx + half_w, cy - half_h, cy + half_h
    if allow_imgpad:
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
    else:
        x0, y0 = int(max(0, x0)), int(max(0, y0))
        x1, y1 = int(min(w, x1)), int(min(h, y1))
    return x0, y0, x1, y1


def resize(keypoint: np.ndarray, img_shape: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Scale to ``size = (h, w)``; ``h = -1`` or ``w = -1`` keeps the ratio with the other side
    as the short side (mmaction2's ``Resize(scale=(-1, s))``)."""
    h, w = img_shape
    new_h, new_w = size
    if new_h == -1 or new_w == -1:
        short = max(new_h, new_w)
        f = short / min(h, w)
        new_h, new_w = int(h * f + 0.5), int(w * f + 0.5)
    kp = np.array(keypoint, np.float32, copy=True)
    kp[..., 0] *= new_w / w
    kp[..., 1] *= new_h / h
    return kp, (new_h, new_w)


def _crop(keypoint: np.ndarray, x0: int, y0: int) -> np.ndarray:
    return np.asarray(keypoint, np.float32) - np.array([x0, y0], np.float32)


def random_resized_crop(
    keypoint: np.ndarray,
    img_shape: tuple[int, int],
    rng: np.random.Generator,
    area_range: tuple[float, float] = (0.56, 1.0),
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
    max_attempts: int = 10,
) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = img_shape
    ratios = np.exp(rng.uniform(np.log(aspect_ratio_range[0]), np.log(aspect_ratio_range[1]), max_attempts))
    areas = rng.uniform(*area_range, max_attempts) * h * w
    crop_w = np.round(np.sqrt(areas * ratios)).astype(np.int64)
    crop_h = np.round(np.sqrt(areas / ratios)).astype(np.int64)
    for cw, ch in zip(crop_w, crop_h, strict=True):
        if cw <= w and ch <= h:
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
            return _crop(keypoint, x0, y0), (int(ch), int(cw))
    side = min(h, w)
    return _crop(keypoint, (w - side) // 2, (h - side) // 2), (side, side)


def center_crop(keypoint: np.ndarray, img_shape: tuple[int, int], size: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = img_shape
    return _crop(keypoint, (w - size) // 2, (h - size) // 2), (size, size)


def flip(keypoint: np.ndarray, score: np.ndarray, img_width: int, flip_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror horizontally (non-zero x only, as PoseConv3D) and swap left/right joints."""
    kp = np.array(keypoint, np.float32, copy=True)
    x = kp[..., 0]
    x[x != 0] = img_width - x[x != 0]
    return kp[..., flip_index, :], np.asarray(score)[..., flip_index]


@dataclass(frozen=True)
class PoseViewConfig:
    """One PoseConv3D view: frames, sizes and augmentation (defaults: the paper's pose branch)."""

    clip_len: int = 48
    num_clips: int = 10  # test views (each also flipped)
    resize_short: int = 64  # train: short side before the random crop
    train_size: int = 56  # train: final size after the crop
    test_size: int = 64  # test: centre crop size
    area_range: tuple[float, float] = (0.56, 1.0)
    flip_ratio: float = 0.5
    padding: float = 0.25
    threshold: int = 10
    hw_ratio: float = 1.0


def train_view(
    keypoint: np.ndarray,
    score: np.ndarray,
    compact_shape: tuple[int, int],
    flip_index: np.ndarray,
    cfg: PoseViewConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """One random training view of compacted keypoints ``[M, T, V, 2]`` (all frames of a clip):
    sample ``clip_len`` frames, resize, random-resized-crop, resize to ``train_size``, maybe flip.
    Returns keypoints and scores ``[M, clip_len, V]`` in output pixels and the output size."""
    inds = uniform_sample(keypoint.shape[1], cfg.clip_len, 1, test=False, rng=rng)
    kp, sc = keypoint[:, inds], score[:, inds]
    kp, shape = resize(kp, compact_shape, (-1, cfg.resize_short))
    kp, shape = random_resized_crop(kp, shape, rng, cfg.area_range)
    kp, shape = resize(kp, shape, (cfg.train_size, cfg.train_size))
    if rng.random() < cfg.flip_ratio:
        kp, sc = flip(kp, sc, shape[1], flip_index)
    return kp, sc, shape
