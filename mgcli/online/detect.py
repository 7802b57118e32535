"""``mg detect``: a trained clip model slid over whole videos, per-frame scores, then segments.

For every video of a ``poses.h5`` (extracted with ``--scope all``, or from a release's skeleton
files, which cover every frame), windows of ``window`` frames at ``stride`` cover the video (the
last one ends on its last frame; a video shorter than a window is one window). Each window is
cut, normalised and viewed exactly as the model's test view cuts a labelled clip (the same
functions: :func:`mgcli.data.skeleton.clip_skeleton` and ``skeleton_test_views`` for skeleton
models, :func:`mgcli.heatmaps.build.compact_clip` and ``render_test_views`` for PoseConv3D), the
model's softmax is averaged over the test views, and a frame's score is the mean of the windows
that contain it. Memory is one video's windows at a time.

Segments (:func:`segments`) come from the per-frame scores: a frame is *active* for its best
gesture class when that class beats the background class (when the model has one: trained on a
``poses.h5`` of ``extract-pose --background``) and its score is at least ``threshold``; runs of
active frames of one class are segments; two segments of one class at most ``merge_gap`` frames
apart are merged; segments shorter than ``min_len`` frames are dropped; a segment's score is the
mean score of its class over its frames; and temporal NMS (class-agnostic, one person makes one
gesture at a time) drops a segment that overlaps a better one by more than ``nms_iou``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

from mgcli.dataset.background import BACKGROUND
from mgcli.errors import MgError
from mgcli.io.atomic import atomic_output, check_output
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.detections import DETECTION_COLUMNS, write_detections
from mgcli.io.poses import PosesFile, VideoPoses
from mgcli.online.options import DetectOptions
from mgcli.pose.layouts import Layout, get_layout

SCORES_SCHEMA = "mgcli.framescores/1"


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Start frames of windows of ``window`` frames every ``stride`` frames over ``num_frames``,
    the last one ending on the last frame (one window of the whole video when it is shorter)."""
    if num_frames <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, num_frames - window + 1, stride, dtype=np.int64)
    if starts[-1] != num_frames - window:
        starts = np.append(starts, num_frames - window)
    return starts


def frame_scores(probs: np.ndarray, starts: np.ndarray, ends: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame scores ``[T, K]``: the mean of the probabilities ``[N, K]`` of the windows
    ``[start, end]`` (inclusive) containing each frame; zeros where no window does."""
    k = probs.shape[1]
    acc = np.zeros((num_frames + 1, k + 1), np.float64)
    rows = np.concatenate([probs, np.ones((len(probs), 1))], 1)
    np.add.at(acc, starts, rows)
    np.add.at(acc, np.minimum(ends, num_frames - 1) + 1, -rows)
    acc = np.cumsum(acc[:-1], 0)
    count = acc[:, -1:]
    return np.where(count > 0.5, acc[:, :-1] / np.maximum(count, 1), 0.0).astype(np.float32)


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first, last) of each run of equal values."""
    if not len(values):
        return []
    cut = np.flatnonzero(np.diff(values)) + 1
    firsts = np.concatenate([[0], cut])
    lasts = np.concatenate([cut - 1, [len(values) - 1]])
    return [(int(values[a]), int(a), int(b)) for a, b in zip(firsts, lasts, strict=True)]


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def segments(scores: np.ndarray, opts: DetectOptions, background: int | None = None) -> pd.DataFrame:
    """Segments ``label,start,end,score`` (frames inclusive, best first) of per-frame scores
    ``[T, K]``; ``background`` is the index of the no-gesture class, if the model has one."""
    t, k = scores.shape
    gesture = np.ones(k, bool)
    if background is not None:
        gesture[background] = False
    fg = np.where(gesture, scores, -1.0)
    best = fg.argmax(1)
    conf = fg[np.arange(t), best]
    active = conf >= opts.threshold
    if background is not None:
        active &= conf > scores[:, background]
    active &= scores.sum(1) > 0  # frames no window covered
    label = np.where(active, best, -1)
    found = [[c, a, b] for c, a, b in _runs(label) if c >= 0]
    merged: list[list[int]] = []
    last: dict[int, list[int]] = {}  # each class's latest segment
    for c, a, b in found:  # join a class's segments across short gaps (other runs in between are kept)
        prev = last.get(c)
        if prev is not None and a - prev[2] - 1 <= opts.merge_gap:
            prev[2] = b
        else:
            last[c] = [c, a, b]
            merged.append(last[c])
    rows = [(c, a, b, float(scores[a : b + 1, c].mean())) for c, a, b in merged if b - a + 1 >= opts.min_len]
    rows.sort(key=lambda r: -r[3])
    kept: list[tuple[int, int, int, float]] = []
    for r in rows:
        if all(_iou((r[1], r[2]), (q[1], q[2])) <= opts.nms_iou for q in kept):
            kept.append(r)
    return pd.DataFrame(kept, columns=["label", "start", "end", "score"])


class WindowViews(torch.utils.data.Dataset):
    """The test views of one video's windows, for :func:`mgcli.train.predict.predict`."""

    def __init__(self, views: Callable[[int, int], dict[str, torch.Tensor]], starts: np.ndarray, window: int, n: int):
        self.views, self.starts = views, starts
        self.ends = np.minimum(starts + window - 1, n - 1)
        self.clip_ids = [f"w{int(s)}" for s in starts]
        self.labels = np.full(len(starts), -1, np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        return self.views(int(self.starts[i]), int(self.ends[i])), -1


@dataclass
class WindowSource:
    """How a model's test views are cut from a window of a video, and the model options the data fixes."""

    options: Callable[[str], dict[str, Any]]  # for the layout of the poses file: the model options it fixes
    make: Callable[[VideoPoses, str], Callable[[int, int], dict[str, torch.Tensor]]]  # (video, src layout)


def window_source(
    cfg: Any, kind: str, heatmaps: Path | None, where: Path, num_clips: int = 0, trained_layout: str | None = None
) -> WindowSource:
    """The window views of a skeleton (``poses``) or PoseConv3D (``heatmaps``) model (``num_clips``
    test clips per window instead of the view's, when given; a skeleton model's windows are
    converted to the layout it trained on, ``trained_layout``, when its view names none)."""
    from mgcli.data import view_config

    if kind not in ("poses", "heatmaps"):
        raise MgError(
            "mg detect slides skeleton (agcn) and PoseConv3D models over poses.h5; "
            f"this model reads {kind or 'other data'}",
            where,
        )
    view = view_config(kind, cfg.data.view, where)
    if num_clips:
        view = dataclasses.replace(view, num_clips=num_clips)
    if kind == "poses":
        from mgcli.data.skeleton import clip_skeleton, skeleton_test_views

        def layout_for(src: str) -> Layout:  # the view's, else the one it trained on, else the file's
            return get_layout(view.layout or trained_layout or src)

        def make_skeleton(video: VideoPoses, src: str) -> Callable[[int, int], dict[str, torch.Tensor]]:
            layout = layout_for(src)

            def views(a: int, b: int) -> dict[str, torch.Tensor]:
                kp, sc = clip_skeleton(video, a, b, src, layout, view, f"{video.video_id}@{a}", where)
                return {"x": skeleton_test_views(kp, sc, layout, view)}

            return views

        def skeleton_options(src: str) -> dict[str, Any]:
            return {"in_channels": 3, "num_person": view.num_person, "layout": layout_for(src).name}

        return WindowSource(skeleton_options, make_skeleton)
    # PoseConv3D: windows compacted and rendered as build-heatmaps and the test view do
    from mgcli.data.base import clip_keypoints
    from mgcli.data.heatmaps import channels, render_test_views
    from mgcli.heatmaps.build import BuildOptions, compact_clip
    from mgcli.io.heatmaps import HeatmapsFile

    path = heatmaps or Path(cfg.data.path)
    if not path.is_file():
        raise MgError(
            "a PoseConv3D model is detected with its training heatmaps' build options: "
            "give --heatmaps heatmaps-*.h5 (the file it trained on, or one built the same way)",
            path,
        )
    with HeatmapsFile(path) as hf:
        fields = {f.name for f in dataclasses.fields(BuildOptions)}
        sampling = {k: v for k, v in hf.sampling.items() if k in fields and k != "splits"}
        opts = BuildOptions(**{**sampling, "kind": hf.heatmap_kind, "sigma": hf.sigma, "size": hf.size[0]})
        layout: Layout = get_layout(hf.layout)
    sigma = view.sigma or opts.sigma
    num_channels, _ = channels(layout, opts.kind)

    def make_heatmaps(video: VideoPoses, src: str) -> Callable[[int, int], dict[str, torch.Tensor]]:
        def views(a: int, b: int) -> dict[str, torch.Tensor]:
            kp, sc = clip_keypoints(video, slice(a, b + 1), src, layout, f"{video.video_id}@{a}", where)
            kp = compact_clip(kp, video.img_shape, layout, opts)
            vol = render_test_views(kp, sc, (opts.size, opts.size), layout, opts.kind, sigma, view)
            return {"x": vol}

        return views

    return WindowSource(lambda src: {"in_channels": num_channels}, make_heatmaps)


def read_detector(
    checkpoint: str | Path, heatmaps: str | Path | None = None, num_clips: int = 0
) -> tuple[dict, Any, str, WindowSource]:
    """A checkpoint ``mg detect`` can slide: (its state, config, data kind, window source); one
    clear error for a file that is not a model checkpoint or a model that reads other data."""
    from mgcli.models import MODELS
    from mgcli.train.config import config_from_dict

    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    if not isinstance(state, dict) or "state_dict" not in state or "config" not in state:
        raise MgError("not a model checkpoint of mg train-branch / train-fused (model.pt)", checkpoint)
    cfg = config_from_dict(state["config"], checkpoint)
    spec = MODELS.get(cfg.model.get("name", ""))
    kind = spec.input_kind if spec is not None else ""
    trained = state.get("data_options", {}).get("layout")
    hm = Path(heatmaps) if heatmaps else None
    return state, cfg, kind, window_source(cfg, kind, hm, checkpoint, num_clips, trained)


@dataclass
class DetectResult:
    detections: pd.DataFrame
    videos: int
    frames: int
    windows: int
    seconds: float
    class_names: list[str]
    files: list[Path]


@torch.no_grad()
def detect(
    checkpoint: str | Path,
    poses: str | Path,
    out: str | Path,
    opts: DetectOptions | None = None,
    scores_out: str | Path | None = None,
    heatmaps: str | Path | None = None,
    overwrite: bool = False,
    use_cuda: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DetectResult:
    """Detect micro-gestures in every video of ``poses`` (``opts.split``'s videos): writes the
    detections CSV ``out`` and, with ``scores_out``, the per-frame scores HDF5."""
    from mgcli.data import artifact_kind
    from mgcli.train.build import build_for_data
    from mgcli.train.distributed import Context
    from mgcli.train.predict import predict
    from mgcli.train.progress import Reporter

    t0 = time.perf_counter()
    opts = opts or DetectOptions()
    checkpoint, poses, out = Path(checkpoint), Path(poses), Path(out)
    check_output(out, overwrite, inputs=(checkpoint, poses))
    if scores_out is not None:
        check_output(scores_out, overwrite, inputs=(checkpoint, poses, out))
    if artifact_kind(poses) != "poses":
        raise MgError("mg detect reads a poses.h5 (mg extract-pose, --scope all for video sources)", poses)
    state, cfg, kind, source = read_detector(checkpoint, heatmaps, opts.num_clips)
    class_names = list(state["class_names"])
    background = class_names.index(BACKGROUND) if BACKGROUND in class_names else None
    ctx = Context(device=torch.device("cuda") if use_cuda and torch.cuda.is_available() else torch.device("cpu"))
    rows: list[pd.DataFrame] = []
    with PosesFile(poses) as pf:
        if opts.split == "all":
            vids = pf.video_ids
        else:
            vids = sorted(set(pf.clips.loc[pf.clips["split"] == opts.split, "video_id"].astype(str)))
            if not vids:
                raise MgError(f"no {opts.split} videos in the clip table (--split all scans every video)", poses)
        model = build_for_data(
            cfg, len(class_names), kind, source.options(pf.layout), checkpoint, load_pretrained=False
        )
        try:
            model.load_inference_state(state["state_dict"])
        except MgError as e:
            raise MgError(e.message, checkpoint) from None
        model.to(ctx.device)
        amp = cfg.train.amp and ctx.device.type == "cuda"
        frames = windows = 0
        with ExitStack() as stack:  # the scores file: closed, then published (or discarded on error)
            h5 = None
            if scores_out is not None:
                h5 = stack.enter_context(h5py.File(stack.enter_context(atomic_output(scores_out, overwrite)), "w"))
                h5.attrs.update(
                    schema=SCORES_SCHEMA,
                    class_names=json.dumps(class_names),
                    checkpoint=str(checkpoint),
                    **{k: v for k, v in dataclasses.asdict(opts).items() if k != "split"},
                )
            for i, vid in enumerate(vids):
                video = pf[vid]
                n = video.keypoint.shape[1]
                starts = window_starts(n, opts.window, opts.stride)
                ds = WindowViews(source.make(video, pf.layout), starts, opts.window, n)
                preds = predict(model, ds, ctx, opts.batch_size, 0, amp, False, Reporter())
                fs = frame_scores(preds.probs, ds.starts, ds.ends, n)
                seg = segments(fs, opts, background)
                seg.insert(0, "video_id", vid)
                rows.append(seg)
                if h5 is not None:
                    h5.create_dataset(f"videos/{vid}", data=fs.astype(np.float16), compression="gzip")
                frames += n
                windows += len(starts)
                if progress:
                    progress(i + 1, len(vids))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(DETECTION_COLUMNS))
    table = table.sort_values(["video_id", "start"], kind="stable").reset_index(drop=True)
    write_detections(out, table, overwrite=True)
    files = [out] + ([Path(scores_out)] if scores_out is not None else [])
    return DetectResult(table, len(vids), frames, windows, time.perf_counter() - t0, class_names, files)
