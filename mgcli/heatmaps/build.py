"""``mg build-heatmaps``: PoseConv3D heatmap volumes per clip (the loader that trains on them is
:class:`mgcli.data.heatmaps.HeatmapClips`).

What is precomputed and what happens at load time
-------------------------------------------------
For every clip, ``build-heatmaps`` stores two things in ``heatmaps-*.h5``:

- ``/keypoints/{clip}`` and ``/scores/{clip}``: the clip's keypoints after PoseCompact, scaled
  to ``size x size`` (all frames, all persons). Tiny.
- ``/heatmaps/{clip}``: the rendered volume ``[C, T_clip, size, size]`` of every frame of the clip
  (uint8, gzip, one chunk per clip).

Test views read the stored volume: ``num_clips`` fixed frame samples, a centre crop, and the
flipped copy (mirror + left/right channel swap, PoseConv3D's "double"), so evaluation renders
nothing. Training views must be random (frames, crop, flip) exactly as PoseConv3D draws them, so
they are rendered at load time from the stored keypoints with the vectorised
:func:`mgcli.heatmaps.generate`, which takes about a millisecond per clip on one CPU thread: the
data loader keeps up with any model, and nothing 10-view-sized is ever stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgcli.data.base import clip_keypoints
from mgcli.data.transforms import CompactConfig, follow_person, pose_compact, resize, running_median
from mgcli.errors import MgError
from mgcli.heatmaps.render import generate
from mgcli.io.heatmaps import HeatmapsFile, HeatmapsWriter
from mgcli.io.poses import PosesFile
from mgcli.pose.layouts import Layout, get_layout


@dataclass(frozen=True)
class BuildOptions:
    kind: str = "joint"  # joint | limb
    sigma: float = 0.6
    size: int = 64
    padding: float = 0.25
    threshold: int = 10
    hw_ratio: float = 1.0
    dtype: str = "uint8"
    splits: tuple[str, ...] = ("train", "val", "test")
    layout: str | None = None  # convert the poses to this layout first (None: as recorded)
    # clip: PoseConv3D's PoseCompact (one box for the clip); frame: first every frame is moved so
    # that the mid-point of the (first) person's shoulders stays put (shoulder_track), then
    # PoseCompact: the box follows someone who walks about (scaling every frame to one body size
    # as well trained worse: README, "Real skeletons"); auto: frame for clips where the person
    # moves about (moves_about), else clip.
    compact: str = "auto"

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise MgError(f"--sigma must be positive, not {self.sigma}")
        if self.size < 8:
            raise MgError(f"--size must be at least 8 pixels, not {self.size}")
        if not 0 <= self.padding <= 4:
            raise MgError(f"--padding must be between 0 and 4, not {self.padding}")
        if self.kind not in ("joint", "limb"):
            raise MgError(f"--kind must be joint or limb, not {self.kind!r}")
        if self.compact not in COMPACT_MODES:
            raise MgError(f"--compact must be one of {', '.join(COMPACT_MODES)}, not {self.compact!r}")
        if self.dtype not in ("uint8", "float16"):
            raise MgError(f"--dtype must be uint8 or float16, not {self.dtype!r}")


# --compact auto follows the person when, over the clip, their shoulder width changes by more than
# SCALE_CHANGE (90th over 10th percentile: walking up to the camera) or the mid-point of their
# shoulders travels more than TRAVEL shoulder widths (passing by). A seated interviewee (iMiGUE,
# the bundled sample) stays well inside both.
SCALE_CHANGE = 1.5
TRAVEL = 2.0
COMPACT_MODES = ("auto", "clip", "frame")


def _shoulders(keypoint: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The first person's shoulders ``[T, 2]`` each and the frames where both are seen, or None."""
    if not {"left_shoulder", "right_shoulder"} <= set(layout.joints):
        return None
    ls, rs = keypoint[0, :, layout.index("left_shoulder")], keypoint[0, :, layout.index("right_shoulder")]
    seen = (ls != 0).any(-1) & (rs != 0).any(-1)
    return (ls, rs, seen) if seen.sum() >= 2 else None


def moves_about(keypoint: np.ndarray, layout: Layout) -> bool:
    """Whether the first person of a clip ``[M, T, V, 2]`` walks about (see SCALE_CHANGE, TRAVEL);
    False for layouts without shoulders or clips where they are seen in fewer than two frames."""
    found = _shoulders(keypoint, layout)
    if found is None:
        return False
    ls, rs, seen = found
    width = np.linalg.norm(ls[seen] - rs[seen], axis=-1)
    mid = (ls[seen] + rs[seen]) / 2
    median = max(float(np.median(width)), 1e-3)
    scale = np.percentile(width, 90) / max(float(np.percentile(width, 10)), 1e-3)
    travel = float(np.linalg.norm(mid.max(0) - mid.min(0))) / median
    return bool(scale > SCALE_CHANGE or travel > TRAVEL)


def shoulder_track(keypoint: np.ndarray, layout: Layout, window: int = 9) -> np.ndarray | None:
    """The mid-point of the first person's shoulders per frame ``[T, 2]``, smoothed by a running
    median of ``window`` frames (frames where a shoulder is missing take the nearest frame's), or
    None when the shoulders are not seen."""
    found = _shoulders(keypoint, layout)
    if found is None:
        return None
    ls, rs, seen = found
    idx = np.flatnonzero(seen)
    nearest = idx[np.abs(np.arange(len(seen))[:, None] - idx[None]).argmin(1)]
    return running_median(((ls + rs) / 2)[nearest], window)


def compact_clip(keypoint: np.ndarray, img_shape: tuple[int, int], layout: Layout, opts: BuildOptions) -> np.ndarray:
    """A clip's keypoints ``[M, T, V, 2]`` (image pixels) on the ``size x size`` canvas: PoseCompact,
    or first the box that follows the person (``opts.compact``), then resized."""
    if opts.compact == "frame" or (opts.compact == "auto" and moves_about(keypoint, layout)):
        track = shoulder_track(keypoint, layout)
        if track is not None:
            keypoint = follow_person(keypoint, track)
    kp, shape = pose_compact(keypoint, img_shape, CompactConfig(opts.padding, opts.threshold, opts.hw_ratio))
    return resize(kp, shape, (opts.size, opts.size))[0]


def render_clip(
    keypoint: np.ndarray, score: np.ndarray, img_shape: tuple[int, int], layout: Layout, opts: BuildOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PoseCompact (or the box that follows the person, ``opts.compact``) + resize to ``size`` +
    render: (keypoints, scores, volume [C, T, size, size])."""
    kp = compact_clip(keypoint, img_shape, layout, opts)
    limbs = layout.limbs if opts.kind == "limb" else None
    vol = generate(kp, score, (opts.size, opts.size), opts.sigma, kind=opts.kind, limbs=limbs)
    return kp, np.asarray(score, np.float32), vol.numpy()


@torch.no_grad()
def build_heatmaps(
    poses_path: str | Path,
    out: str | Path,
    opts: BuildOptions = BuildOptions(),
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    failed: dict[str, str] = {}
    with PosesFile(poses_path) as poses:
        layout = get_layout(opts.layout or poses.layout)
        clips = poses.clips[poses.clips["split"].isin(opts.splits)].reset_index(drop=True)
        if clips.empty:
            raise MgError(f"no clips in splits {', '.join(opts.splits)}", poses_path)
        sampling = {**asdict(opts), "splits": list(opts.splits), "stored": "all clip frames, compacted"}
        with HeatmapsWriter(
            out,
            opts.kind,
            layout.name,
            opts.sigma,
            (opts.size, opts.size),
            sampling,
            opts.dtype,
            poses.class_names,
            overwrite,
        ) as w:
            for vid, group in clips.groupby("video_id", sort=True):
                try:
                    video = poses[str(vid)]
                except (MgError, OSError, KeyError, ValueError) as e:  # a damaged video: its clips go
                    failed.update({c: _reason(e) for c in group["clip_id"]})
                    if progress:
                        progress(len(group), len(clips))
                    continue
                for c in group.itertuples():
                    try:
                        kp, sc = clip_keypoints(
                            video, slice(c.start, c.end + 1), poses.layout, layout, c.clip_id, poses_path
                        )
                        ckp, csc, vol = render_clip(kp, sc, video.img_shape, layout, opts)
                    except (MgError, OSError, ValueError, IndexError) as e:  # one bad clip, not the run
                        failed[c.clip_id] = _reason(e)
                    else:
                        w.add(c.clip_id, vol, ckp, csc, c.label, c.split)
                    if progress:
                        progress(1, len(clips))
            if len(failed) == len(clips):
                first = next(iter(failed.items()))
                raise MgError(f"no clip could be built; the first, {first[0]}: {first[1]}", poses_path)
            w.set_clips(clips[~clips["clip_id"].isin(failed)].reset_index(drop=True))
    size = Path(out).stat().st_size
    built = len(clips) - len(failed)
    return {
        "clips": float(built),
        "seconds": time.perf_counter() - t0,
        "bytes_per_clip": size / max(built, 1),
        "failed": failed,
    }


def _reason(e: BaseException) -> str:
    return str(e) if isinstance(e, MgError) else f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"


def preview(path: str | Path, clip_id: str, out_png: str | Path, frames: int = 6) -> Path:
    """A montage of ``frames`` evenly spaced frames of a clip: the heatmaps (max over channels)
    with the skeleton drawn on top, i.e. what the network sees."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mgcli.io.atomic import atomic_output

    with HeatmapsFile(path) as hm:
        if f"heatmaps/{clip_id}" not in hm.f:
            raise MgError(f"no clip {clip_id} (e.g. {hm.clips['clip_id'].iloc[0]})", path)
        vol = hm.read(clip_id)
        kp, sc = hm.keypoints(clip_id)
        layout = get_layout(hm.layout)
        row = hm.clips.set_index("clip_id").loc[clip_id]
        names = hm.class_names
        title = f"{clip_id}  {hm.heatmap_kind} heatmaps  label {row['label']}"
        if 0 <= row["label"] < len(names):
            title += f" ({names[row['label']]})"
    picks = np.linspace(0, vol.shape[1] - 1, min(frames, vol.shape[1])).round().astype(int)
    fig, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 2.6), squeeze=False)
    for ax, t in zip(axes[0], picks, strict=True):
        ax.imshow(vol[:, t].max(0), cmap="magma", vmin=0, vmax=1)
        for m in range(kp.shape[0]):
            for a, b in layout.limbs:
                if sc[m, t, a] > 0.05 and sc[m, t, b] > 0.05:
                    ax.plot(kp[m, t, [a, b], 0], kp[m, t, [a, b], 1], color="cyan", lw=0.8, alpha=0.8)
            ok = sc[m, t] > 0.05
            ax.scatter(kp[m, t, ok, 0], kp[m, t, ok, 1], s=4, c="white")
        ax.set_title(f"frame {t}", fontsize=8)
        ax.set_xlim(-0.5, vol.shape[3] - 0.5)
        ax.set_ylim(vol.shape[2] - 0.5, -0.5)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    with atomic_output(out_png, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out_png
