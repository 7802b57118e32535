"""``mg build-heatmaps``: PoseConv3D heatmap volumes per clip, and the loader that trains on them.

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

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.heatmaps.pipeline import PoseViewConfig, center_crop, flip, pose_compact, resize, train_view, uniform_sample
from mgcli.heatmaps.render import generate
from mgcli.io.h5 import ProcessLocalArtifact
from mgcli.io.heatmaps import HeatmapsFile, HeatmapsWriter
from mgcli.io.poses import PosesFile
from mgcli.pose.layouts import Layout, convert, get_layout


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


def channels(layout: Layout, kind: str) -> tuple[int, np.ndarray]:
    """Number of heatmap channels and their permutation under a horizontal flip."""
    if kind == "joint":
        return layout.num_joints, layout.flip_index
    if kind == "limb":
        return len(layout.limbs), layout.limb_flip_index
    raise MgError(f"--kind must be joint or limb, not {kind!r}")


def render_clip(
    keypoint: np.ndarray, score: np.ndarray, img_shape: tuple[int, int], layout: Layout, opts: BuildOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PoseCompact + resize to ``size`` + render: (keypoints, scores, volume [C, T, size, size])."""
    kp, shape = pose_compact(keypoint, img_shape, opts.padding, opts.threshold, opts.hw_ratio)
    kp, _ = resize(kp, shape, (opts.size, opts.size))
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
) -> dict[str, float]:
    t0 = time.perf_counter()
    with PosesFile(poses_path) as poses:
        layout = get_layout(opts.layout or poses.layout)
        channels(layout, opts.kind)
        clips = poses.clips[poses.clips["split"].isin(opts.splits)].reset_index(drop=True)
        if clips.empty:
            raise MgError(f"no clips in splits {', '.join(opts.splits)}", poses_path)
        sampling = {**asdict(opts), "splits": list(opts.splits), "stored": "all clip frames, compacted"}
        with HeatmapsWriter(
            out, opts.kind, layout.name, opts.sigma, (opts.size, opts.size), sampling, opts.dtype,
            poses.class_names, overwrite,
        ) as w:  # fmt: skip
            for vid, group in clips.groupby("video_id", sort=True):
                video = poses[str(vid)]
                for c in group.itertuples():
                    kp = video.keypoint[:, c.start : c.end + 1]
                    sc = video.keypoint_score[:, c.start : c.end + 1]
                    if layout.name != poses.layout:
                        kp, sc = convert(kp, sc, poses.layout, layout)
                    if kp.shape[1] != c.end - c.start + 1:
                        raise MgError(f"clip {c.clip_id} runs past the end of video {vid}'s skeleton", poses_path)
                    ckp, csc, vol = render_clip(kp, sc, video.img_shape, layout, opts)
                    w.add(c.clip_id, vol, c.label, c.split)
                    w.f.create_dataset(f"keypoints/{c.clip_id}", data=ckp, compression="lzf")
                    w.f.create_dataset(f"scores/{c.clip_id}", data=csc, compression="lzf")
                    if progress:
                        progress(1, len(clips))
            w.set_clips(clips)
    size = Path(out).stat().st_size
    return {"clips": float(len(clips)), "seconds": time.perf_counter() - t0, "bytes_per_clip": size / len(clips)}


class HeatmapClips(ProcessLocalArtifact, torch.utils.data.Dataset):
    """Training / evaluation samples from a heatmaps artifact.

    ``train=True``: one random view per clip ``[C, clip_len, train_size, train_size]`` rendered
    from the stored keypoints. ``train=False``: ``2 * num_clips`` fixed views (each sampled clip and
    its flip) ``[2 * num_clips, C, clip_len, test_size, test_size]`` cut from the stored volume, or,
    when ``test_size`` differs from the stored size, rendered from the stored keypoints.
    Each DataLoader worker opens its own HDF5 handle.
    """

    artifact = HeatmapsFile

    def __init__(
        self, path: str | Path, split: str, train: bool, cfg: PoseViewConfig = PoseViewConfig(), seed: int = 0
    ) -> None:
        super().__init__(path)
        with HeatmapsFile(self.path) as hm:
            self.kind, self.layout, self.sigma = hm.heatmap_kind, get_layout(hm.layout), hm.sigma
            self.size = hm.size
            table = hm.clips[hm.clips["split"] == split].reset_index(drop=True)
            self.class_names = hm.class_names
        if table.empty:
            raise MgError(f"no {split} clips", self.path)
        self.clip_ids: list[str] = table["clip_id"].tolist()
        self.labels = table["label"].to_numpy(np.int64)
        self.train, self.cfg, self.seed = train, cfg, seed
        self.num_channels, self.channel_flip = channels(self.layout, self.kind)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        cid = self.clip_ids[i]
        f = self.open().f
        if self.train:
            rng = np.random.default_rng([self.seed, self._epoch, i])
            kp, sc, shape = train_view(
                f[f"keypoints/{cid}"][()], f[f"scores/{cid}"][()], self.size, self.layout.flip_index, self.cfg, rng
            )
            limbs = self.layout.limbs if self.kind == "limb" else None
            x = generate(kp, sc, shape, self.sigma, kind=self.kind, limbs=limbs)
            return x, int(self.labels[i])
        return self.test_views(cid), int(self.labels[i])

    def test_views(self, clip_id: str) -> torch.Tensor:
        if self.cfg.test_size != self.size[0]:
            return self.rendered_test_views(clip_id)
        vol = self.open().read(clip_id)  # [C, T, H, W]
        inds = uniform_sample(vol.shape[1], self.cfg.clip_len, self.cfg.num_clips, test=True)
        views = vol[:, inds].reshape(vol.shape[0], self.cfg.num_clips, self.cfg.clip_len, *vol.shape[2:])
        views = np.moveaxis(views, 1, 0)  # [N, C, T, H, W]
        s = self.cfg.test_size
        h, w = views.shape[-2:]
        top, left = (h - s) // 2, (w - s) // 2
        if top < 0 or left < 0:
            raise MgError(f"test size {s} is larger than the stored heatmaps ({h}x{w})", self.path)
        views = views[..., top : top + s, left : left + s]
        # PoseConv3D flips keypoints as x -> W - x (pixel centres on integers), so the flipped view
        # is the mirror shifted by one column: column j shows column W - j; column 0 shows what lay
        # just outside the right edge (nothing: the volume ends there).
        flipped = np.zeros_like(views)
        flipped[..., 1:] = views[..., :0:-1]
        flipped = flipped[:, self.channel_flip]
        return torch.from_numpy(np.ascontiguousarray(np.concatenate([views, flipped])))

    def rendered_test_views(self, clip_id: str) -> torch.Tensor:
        """Test views at a size other than the stored one, rendered from the stored keypoints as
        PoseConv3D does: fixed uniform sampling, short side resized to ``test_size``, centre crop,
        and each clip again with its keypoints flipped. ``[2 * num_clips, C, clip_len, S, S]``."""
        f = self.open().f
        kp, sc = f[f"keypoints/{clip_id}"][()], f[f"scores/{clip_id}"][()]
        inds = uniform_sample(kp.shape[1], self.cfg.clip_len, self.cfg.num_clips, test=True)
        s = self.cfg.test_size
        kp, shape = resize(kp[:, inds], self.size, (-1, s))
        kp, shape = center_crop(kp, shape, s)
        sc = sc[:, inds]
        limbs = self.layout.limbs if self.kind == "limb" else None
        out = []
        for k, c in ((kp, sc), flip(kp, sc, shape[1], self.layout.flip_index)):
            vol = generate(k, c, shape, self.sigma, kind=self.kind, limbs=limbs)  # [C, N * T, S, S]
            out.append(vol.reshape(vol.shape[0], self.cfg.num_clips, self.cfg.clip_len, *shape).transpose(0, 1))
        return torch.cat(out).contiguous()



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
        kp, sc = hm.f[f"keypoints/{clip_id}"][()], hm.f[f"scores/{clip_id}"][()]
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
