"""``mg extract-pose``: skeletons per video into ``poses.h5``, plus the RGB clip cache ``frames.h5``.

How a run is made safe to interrupt: every finished video is written (atomically) as its own part
file in ``.{poses.h5}.parts/`` beside the output; when all videos are done the parts are merged
into ``poses.h5`` and ``frames.h5`` (atomically too) and the part folder is removed. ``--resume``
keeps the finished parts and redoes only the videos without one, so a ``kill -9`` at any moment
loses at most the video in progress and never duplicates one. A video that cannot be read is
reported and left out while the others complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import pandas as pd

from mgcli import __version__
from mgcli.dataset.background import BACKGROUND, with_background
from mgcli.dataset.labels import DEFAULT_LABEL_MAP, LabelMap
from mgcli.dataset.release import probe_video
from mgcli.errors import DataError, MgError, OutputExistsError
from mgcli.io.atomic import AtomicOutput, check_output, refuse_inputs
from mgcli.io.frames import FramesWriter, encode_jpeg, resize_short_side, write_clip_jpegs
from mgcli.io.h5 import ensure_room
from mgcli.io.poses import PosesWriter, VideoPoses
from mgcli.pose.backends import BackendSpec, PoseBackend
from mgcli.pose.layouts import convert, get_layout
from mgcli.pose.sources import VideoJob, infer_img_shape, load_release_skeleton, missing_skeleton, plan
from mgcli.pose.tracking import Tracker, assemble

ProgressFn = Callable[[str, int, int], None]  # (video id, frames done, frames to do)
SKELETON_SLACK = 25  # frames a clip may run past a skeleton-only video's last skeleton row


@dataclass(frozen=True)
class ExtractOptions:
    source: str = "auto"  # auto | skeleton | video
    backend: BackendSpec | None = None
    layout: str | None = None  # target layout; None keeps the source's
    skeleton_file: str = "auto"  # auto | xlsx | light_hand
    max_persons: int = 1
    frames_out: Path | None = None
    frame_size: int = 256
    jpeg_quality: int = 90
    scope: str = "clips"  # video source: run the model on frames inside clips, or on all frames
    img_shape: tuple[int, int] | None = None  # skeleton-only releases: the frame size, if known
    workers: int = 1
    background: int = 0  # background clips per training / validation video (mgcli.dataset.background)
    background_window: int = 64  # frames per background clip

    def __post_init__(self) -> None:
        choices = {
            "source": ("auto", "skeleton", "video"),
            "skeleton_file": ("auto", "xlsx", "light_hand"),
            "scope": ("clips", "all"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                flag = "--" + name.replace("_", "-")
                raise MgError(f"{flag} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        bounds = {
            "max_persons": (1, None),
            "frame_size": (16, None),
            "jpeg_quality": (1, 100),
            "workers": (1, None),
            "background": (0, None),
            "background_window": (2, None),
        }
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if value < lo or (hi is not None and value > hi):
                flag = "--" + name.replace("_", "-")
                allowed = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
                raise MgError(f"{flag} must be {allowed}, not {value}")
        if self.img_shape is not None and min(self.img_shape) < 1:
            raise MgError(f"--img-shape must be positive, not {self.img_shape[0]}x{self.img_shape[1]}")

    def fingerprint(self, out: Path) -> dict[str, Any]:
        d = asdict(self)
        d.pop("workers")
        d["frames_out"] = str(self.frames_out) if self.frames_out else None
        d["out"] = str(out)
        d["mgcli_version"] = __version__
        return json.loads(json.dumps(d))


@dataclass
class VideoOutcome:
    video_id: str
    ok: bool
    message: str = ""
    frames: int = 0
    processed: int = 0
    clips: int = 0
    seconds: float = 0.0
    skipped: bool = False  # finished by an earlier run (--resume)


@dataclass
class ExtractReport:
    poses: Path
    frames: Path | None
    layout: str
    source: str
    outcomes: list[VideoOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if not o.ok]


# --------------------------------------------------------------------------- one video


def _decode(
    job: VideoJob,
    pose_mask: np.ndarray | None,
    frames_group: h5py.Group | None,
    opts: ExtractOptions,
    on_batch: Callable[[list[int], list[np.ndarray]], None],
    progress: ProgressFn | None,
    batch_size: int,
) -> int:
    """One sequential pass over the video: frames inside clips go to the clip cache, frames in
    ``pose_mask`` to the pose model (in batches). Returns the number of frames decoded."""
    assert job.video is not None
    clips = job.clips.sort_values("start")
    last = int(clips["end"].max()) if len(clips) else -1
    if pose_mask is not None and pose_mask.any():
        last = max(last, int(np.flatnonzero(pose_mask).max()))
    starts = clips["start"].to_numpy()
    ends = clips["end"].to_numpy()
    ids = clips["clip_id"].tolist()
    position = {cid: i for i, cid in enumerate(ids)}
    cache_mask = np.zeros(last + 1, bool)
    if frames_group is not None:
        for s, e in zip(starts, ends, strict=True):
            cache_mask[s : e + 1] = True
    buffers: dict[str, list[np.ndarray]] = {}
    next_clip = 0
    batch_idx: list[int] = []
    batch_rgb: list[np.ndarray] = []
    cap = cv2.VideoCapture(str(job.video))
    if not cap.isOpened():
        raise DataError("cannot open video", job.video)
    try:
        for t in range(last + 1):
            want_pose = pose_mask is not None and t < len(pose_mask) and pose_mask[t]
            want_cache = cache_mask[t]
            if not (want_pose or want_cache):
                if not cap.grab():
                    raise DataError(f"video ends after {t} frames, but frame {last} is needed (truncated?)", job.video)
                continue
            ok, frame = cap.read()
            if not ok or frame is None:
                raise DataError(f"video ends after {t} frames, but frame {last} is needed (truncated?)", job.video)
            if want_cache and frames_group is not None:
                while next_clip < len(ids) and starts[next_clip] <= t:
                    buffers[ids[next_clip]] = []
                    next_clip += 1
                jpeg = encode_jpeg(resize_short_side(frame, opts.frame_size), opts.jpeg_quality)
                for cid in list(buffers):
                    buffers[cid].append(jpeg)
                    i = position[cid]
                    if ends[i] == t:
                        write_clip_jpegs(frames_group, cid, buffers.pop(cid), range(starts[i], ends[i] + 1))
            if want_pose:
                batch_idx.append(t)
                batch_rgb.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if len(batch_idx) >= batch_size:
                    on_batch(batch_idx, batch_rgb)
                    batch_idx, batch_rgb = [], []
            if progress is not None and t % 25 == 0:
                progress(job.video_id, t + 1, last + 1)
        if batch_idx:
            on_batch(batch_idx, batch_rgb)
    finally:
        cap.release()
    if progress is not None:
        progress(job.video_id, last + 1, last + 1)
    return last + 1


def process_video(
    job: VideoJob,
    opts: ExtractOptions,
    source: str,
    target_layout: str,
    part_path: Path,
    backend: PoseBackend | None,
    progress: ProgressFn | None = None,
) -> VideoOutcome:
    """Extract one video into its part file (written atomically). Never raises for bad input."""
    t0 = time.perf_counter()
    if job.error:
        return VideoOutcome(job.video_id, False, job.error, clips=0)
    out = AtomicOutput(part_path, overwrite=True)
    try:
        with h5py.File(out.tmp, "w") as f:
            frames_group = f.create_group("frames") if opts.frames_out else None
            info = probe_video(job.video) if job.video is not None else None
            if info is not None and len(job.clips) and int(job.clips["end"].max()) >= info.frames:
                late = job.clips.loc[job.clips["end"].idxmax()]
                raise DataError(
                    f"clip {late['clip_id']} ends at frame {late['end']} but the video has {info.frames}", job.video
                )
            if source == "skeleton":
                native, kp, sc = load_release_skeleton(job, opts.skeleton_file)
                # Without the video, the skeleton's length is the video's. Light_hand files leave
                # out trailing frames without a detection, so clips may run a little past it (the
                # frames count as undetected); a clip well past it is a label error.
                if info is None and len(job.clips) and int(job.clips["end"].max()) >= len(kp) + SKELETON_SLACK:
                    late = job.clips.loc[job.clips["end"].idxmax()]
                    found = job.skeleton_file(opts.skeleton_file)
                    raise DataError(
                        f"clip {late['clip_id']} ends at frame {late['end']} but the skeleton has {len(kp)} frames",
                        found[1] if found else job.video_id,
                    )
                total = info.frames if info else max(len(kp), int(job.clips["end"].max()) + 1 if len(job.clips) else 0)
                kp, sc = _fit_length(kp, total), _fit_length(sc, total)
                kp, sc = kp[None], sc[None]  # one person
                img_shape = (info.height, info.width) if info else opts.img_shape or infer_img_shape(kp, sc)
                processed = 0
                if frames_group is not None:
                    if job.video is None:
                        raise DataError(
                            f"--frames-out needs the videos, but {job.video_id}.mp4 is missing", job.video_id
                        )
                    _decode(job, None, frames_group, opts, lambda i, f: None, progress, 1)
            else:
                assert backend is not None and info is not None
                native = backend.layout
                total = info.frames
                img_shape = (info.height, info.width)
                mask = np.zeros(total, bool)
                if opts.scope == "all":
                    mask[:] = True
                else:
                    for s, e in zip(job.clips["start"], job.clips["end"], strict=True):
                        mask[s : min(e, total - 1) + 1] = True
                tracker = Tracker()
                backend.start_video()

                def run(idx: list[int], rgb: list[np.ndarray]) -> None:
                    for t, dets in zip(idx, backend.process(rgb), strict=True):
                        tracker.update(t, dets)

                _decode(job, mask, frames_group, opts, run, progress, backend.batch_size)
                limit = min(opts.max_persons, backend.max_persons or opts.max_persons)
                kp, sc = assemble(tracker.ranked(img_shape), total, get_layout(native).num_joints, limit)
                processed = int(mask.sum())
            if native != target_layout:
                kp, sc = convert(kp, sc, native, target_layout)
            ensure_room(part_path.parent, kp.nbytes + sc.nbytes, part_path)
            f.create_dataset("keypoint", data=kp.astype(np.float32), compression="lzf")
            f.create_dataset("keypoint_score", data=sc.astype(np.float32), compression="lzf")
            f.attrs.update(
                video_id=job.video_id,
                img_shape=np.asarray(img_shape, np.int64),
                fps=float(info.fps) if info else 0.0,
                total_frames=int(total),
                path=str(job.video or ""),
                native_layout=native,
            )
        out.commit()
        return VideoOutcome(job.video_id, True, "", int(total), processed, len(job.clips), time.perf_counter() - t0)
    except MgError as e:
        out.discard()
        return VideoOutcome(job.video_id, False, str(e), clips=len(job.clips), seconds=time.perf_counter() - t0)
    except Exception as e:  # a decoder or model failure on one video must not stop the others
        out.discard()
        last = traceback.extract_tb(e.__traceback__)[-1]
        msg = f"{job.video or job.video_id}: {type(e).__name__}: {e} ({Path(last.filename).name}:{last.lineno})"
        return VideoOutcome(job.video_id, False, msg, clips=len(job.clips), seconds=time.perf_counter() - t0)


def _fit_length(a: np.ndarray, total: int) -> np.ndarray:
    """Pad (no detection) or cut the per-frame rows of a released skeleton to the video length."""
    if len(a) >= total:
        return a[:total]
    pad = np.zeros((total - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


# --------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(spec: BackendSpec | None, queue: Any, threads: int) -> None:
    if spec is not None:
        # Share the cores between workers instead of letting each one's torch use all of them.
        import torch

        torch.set_num_threads(threads)
    _WORKER["backend"] = spec.create() if spec is not None else None
    _WORKER["queue"] = queue


def _worker_run(job: VideoJob, opts: ExtractOptions, source: str, layout: str, part: Path) -> VideoOutcome:
    queue = _WORKER["queue"]
    progress = (lambda vid, done, total: queue.put((vid, done, total))) if queue is not None else None
    return process_video(job, opts, source, layout, part, _WORKER["backend"], progress)


# --------------------------------------------------------------------------- the stage


def parts_dir_for(out: Path) -> Path:
    return out.with_name(f".{out.name}.parts")


def _resolve_source(jobs: list[VideoJob], opts: ExtractOptions) -> str:
    if opts.source in ("skeleton", "video"):
        return opts.source
    has_skeleton = any(j.openpose_xlsx is not None or j.light_hand_csv is not None for j in jobs)
    return "skeleton" if has_skeleton and opts.backend is None else "video"


def extract_pose(
    root: str | Path,
    out: str | Path,
    opts: ExtractOptions,
    label_map: LabelMap = DEFAULT_LABEL_MAP,
    clips_csv: str | Path | None = None,
    test_labels: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    on_start: Callable[[list[VideoJob], str, str], None] | None = None,
    on_progress: ProgressFn | None = None,
    on_video: Callable[[VideoOutcome], None] | None = None,
) -> ExtractReport:
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    # Frame counts are checked per video, so one unreadable video does not stop the others.
    jobs, table = plan(
        root,
        label_map,
        Path(clips_csv) if clips_csv else None,
        Path(test_labels) if test_labels else None,
        check_frames=False,
    )
    class_names = list(label_map.names)
    if opts.background:
        table = with_background(table, label_map.num_classes, opts.background, opts.background_window)
        jobs = [replace(j, clips=table[table["video_id"] == j.video_id]) for j in jobs]
        class_names.append(BACKGROUND)
    source = _resolve_source(jobs, opts)
    spec = opts.backend or (BackendSpec("mediapipe") if source == "video" else None)
    if source == "video":
        missing = [j.video_id for j in jobs if j.video is None]
        if missing:
            raise DataError(f"--source video needs every video; missing {missing[0]}.mp4 ({len(missing)} in all)", root)
        probe = spec.create()  # fails early and clearly when the backend is not installed
        natives = [probe.layout]
        src_desc = f"video:{probe.describe()}"
        probe.close()
    else:
        found = [j.skeleton_file(opts.skeleton_file) for j in jobs]
        for j, f in zip(jobs, found, strict=True):
            if f is None:
                raise missing_skeleton(j, opts.skeleton_file)
        natives = sorted({f[0] for f in found if f is not None})
        src_desc = f"release:{'+'.join(natives)}"
    if opts.layout is None and len(natives) > 1:
        raise MgError(
            f"videos come in different layouts ({', '.join(natives)}); choose one with --layout "
            "(e.g. --layout openpose35)"
        )
    target = opts.layout or natives[0]
    get_layout(target)

    parts = parts_dir_for(out)
    fingerprint = {**opts.fingerprint(out), "backend": asdict(spec) if spec else None}
    _prepare_parts(parts, fingerprint, out, opts.frames_out, overwrite, resume, root)
    done = {p.stem for p in parts.glob("*.h5") if _part_is_whole(p)}
    todo = [j for j in jobs if j.video_id not in done]
    if on_start:
        on_start(todo, source, target)
    outcomes = [
        VideoOutcome(j.video_id, True, "", clips=len(j.clips), skipped=True) for j in jobs if j.video_id in done
    ]
    for o in outcomes:
        if on_video:
            on_video(o)
    spec_for_workers = spec if source == "video" else None
    if opts.workers <= 1 or len(todo) <= 1:
        backend = spec_for_workers.create() if spec_for_workers else None
        try:
            for job in todo:
                o = process_video(job, opts, source, target, parts / f"{job.video_id}.h5", backend, on_progress)
                outcomes.append(o)
                if on_video:
                    on_video(o)
        finally:
            if backend is not None:
                backend.close()
    else:
        outcomes += _run_parallel(todo, opts, source, target, parts, spec_for_workers, on_progress, on_video)

    ok_ids = {o.video_id for o in outcomes if o.ok}
    if not ok_ids:
        first = next(o for o in outcomes if not o.ok)
        raise DataError(f"none of the {len(outcomes)} videos could be processed; the first: {first.message}", root)
    kept = table[table["video_id"].isin(ok_ids)].reset_index(drop=True)
    _merge(parts, sorted(ok_ids), kept, out, opts, target, src_desc, class_names)
    shutil.rmtree(parts, ignore_errors=True)
    order = {j.video_id: i for i, j in enumerate(jobs)}
    outcomes.sort(key=lambda o: order[o.video_id])
    return ExtractReport(out, opts.frames_out, target, src_desc, outcomes, time.perf_counter() - t0)


def _part_is_whole(path: Path) -> bool:
    """Whether a finished video's part file reads back whole; a damaged one (a disk error, a copy
    cut short) is removed, and its video done again."""
    try:
        with h5py.File(path, "r") as f:
            f["keypoint"][()]
            f["keypoint_score"][()]
            for ds in f["frames"].values() if "frames" in f else ():
                ds[()]
            int(f.attrs["total_frames"])
        return True
    except (OSError, KeyError, ValueError, RuntimeError):
        path.unlink(missing_ok=True)
        return False


def _prepare_parts(
    parts: Path,
    fingerprint: dict[str, Any],
    out: Path,
    frames_out: Path | None,
    overwrite: bool,
    resume: bool,
    root: Path | None = None,
) -> None:
    settings = parts / "settings.json"
    if parts.exists():
        if resume:
            try:
                previous = json.loads(settings.read_text()) if settings.is_file() else None
            except (OSError, ValueError):
                previous = None
            if previous != fingerprint:
                raise MgError(
                    "the interrupted run used other settings; rerun with the same options or use --overwrite", parts
                )
            for stale in parts.glob(".*.tmp-*"):
                stale.unlink(missing_ok=True)
            return
        if not overwrite:
            raise OutputExistsError(
                "an interrupted run left its finished videos here: pass --resume to continue it, "
                "or --overwrite to start again",
                parts,
            )
        shutil.rmtree(parts)
    if frames_out is not None:
        refuse_inputs(frames_out, [out])
    for path in (out, frames_out):
        if path is not None:
            check_output(path, overwrite, inputs=[root])
    parts.mkdir(parents=True)
    tmp = parts / ".settings.json.tmp"
    tmp.write_text(json.dumps(fingerprint, indent=2))
    os.replace(tmp, settings)


def _run_parallel(
    todo: list[VideoJob],
    opts: ExtractOptions,
    source: str,
    target: str,
    parts: Path,
    spec: BackendSpec | None,
    on_progress: ProgressFn | None,
    on_video: Callable[[VideoOutcome], None] | None,
) -> list[VideoOutcome]:
    outcomes = []
    # Spawned, not forked: pose libraries (MediaPipe, torch) do not survive a fork of a process
    # that already loaded them.
    ctx = get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // opts.workers)
    with ctx.Manager() as manager:
        queue = manager.Queue() if on_progress else None
        with ProcessPoolExecutor(
            opts.workers, mp_context=ctx, initializer=_init_worker, initargs=(spec, queue, threads)
        ) as pool:
            pending = {pool.submit(_worker_run, j, opts, source, target, parts / f"{j.video_id}.h5") for j in todo}
            outcomes += collect(pending, queue, on_progress, on_video)
    return outcomes


def collect(
    pending: set[Any], queue: Any, on_progress: Callable[..., None] | None, on_video: Callable[[Any], None] | None
) -> list[Any]:
    """The results of worker futures as they finish, relaying the workers' progress messages
    (``queue``, or None) to ``on_progress`` and each result to ``on_video`` meanwhile."""
    outcomes = []
    while pending:
        finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        while queue is not None and not queue.empty():
            on_progress(*queue.get())  # type: ignore[misc]
        for fut in finished:
            o = fut.result()
            outcomes.append(o)
            if on_video:
                on_video(o)
    return outcomes


def _merge(
    parts: Path,
    video_ids: list[str],
    clips: pd.DataFrame,
    out: Path,
    opts: ExtractOptions,
    layout: str,
    source: str,
    class_names: list[str],
) -> None:
    # Outputs of an interrupted run that got as far as merging are ours to replace.
    with PosesWriter(out, layout, source, class_names, overwrite=True) as w:
        for vid in video_ids:
            with h5py.File(parts / f"{vid}.h5", "r") as f:
                w.add_video(
                    VideoPoses(
                        vid,
                        f["keypoint"][()],
                        f["keypoint_score"][()],
                        tuple(int(x) for x in f.attrs["img_shape"]),
                        float(f.attrs["fps"]),
                        int(f.attrs["total_frames"]),
                        str(f.attrs["path"]),
                    )
                )
        w.set_clips(clips)
    if opts.frames_out is None:
        return
    with FramesWriter(opts.frames_out, opts.frame_size, opts.jpeg_quality, class_names, overwrite=True) as fw:
        for vid in video_ids:
            with h5py.File(parts / f"{vid}.h5", "r") as f:
                for cid, ds in f["frames"].items():
                    fw.add_encoded(cid, list(ds[()]), ds.attrs["frame_index"])
        fw.set_clips(clips)
