"""``mg extract-faces``: aligned 112x112 face crops sampled over every whole video into ``faces.h5``.

Sampling: crop ``k`` of a video stands for time ``k / fps`` seconds, i.e. frame
``round(k * video_fps / fps)``, for every such frame inside the video (the whole duration, not only
the gesture clips); a rate above the video's keeps each frame once. Frames are decoded in one
sequential pass (frames between samples are only grabbed), so at most one frame is held.

Faces (see :mod:`mgcli.faces.align`): ``openpose`` aligns the release's 70 OpenPose face points of
the sampled frame; ``mediapipe`` runs MediaPipe's bundled face detector and face mesh on it
(largest face); ``auto`` takes ``openpose`` for videos with a ``{vid}_openpose.xlsx`` and
``mediapipe`` for the others. A frame without a face gets score 0 and an empty JPEG. Skeleton
rows past the end of the sheet count as frames without a face.

Safe to interrupt, like ``mg extract-pose``: each finished video is written atomically as its own
part file in ``.{faces.h5}.parts/``; when all are done they are merged into ``faces.h5`` (atomically)
and the folder is removed. ``--resume`` keeps the finished parts. A video that cannot be read is
reported and left out while the others complete. Labels and splits come from
:func:`mgcli.dataset.emotion.emotion_videos` (the release's label files, ``--emotion-labels``,
``--protocol``); they are applied when merging, so they are not part of a run's settings.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import pandas as pd
from rich.table import Table

from mgcli import __version__
from mgcli.dataset.formats import read_openpose_xlsx
from mgcli.dataset.release import Release, probe_video
from mgcli.errors import DataError, MgError
from mgcli.faces.align import (
    CROP_SIZE,
    OP_FACE_FIRST,
    OP_FACE_POINTS,
    MediaPipeFaces,
    fit_five_points,
    openpose_smoothed_points,
    warp_crop,
)
from mgcli.io.atomic import AtomicOutput, check_output
from mgcli.io.faces import JPEG, FacesFile, FacesWriter
from mgcli.io.frames import encode_jpeg
from mgcli.io.h5 import ensure_room
from mgcli.pose.extract import _prepare_parts, collect, parts_dir_for

SOURCES = ("auto", "openpose", "mediapipe")
TAIL_SLACK = 5  # frames a container's frame count may overstate the decodable frames by
OPENPOSE_SMOOTH_SECONDS = 0.1  # OpenPose face points averaged over +-0.1 s (see align.openpose_smoothed_points)
PREVIEW_COLUMNS = 8
PREVIEW_MAX = 64  # crops in a preview montage, evenly spaced over the video

ProgressFn = Callable[[str, int, int], None]  # (video id, crops done, crops to do)


@dataclass(frozen=True)
class FacesOptions:
    fps: float = 2.0
    source: str = "auto"
    quality: int = 90
    workers: int = 1

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise MgError(f"--source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise MgError(f"--fps must be a positive number, not {self.fps:g}")
        if not 1 <= self.quality <= 100:
            raise MgError(f"JPEG quality must be between 1 and 100, not {self.quality}")
        if self.workers < 1:
            raise MgError(f"--workers must be at least 1, not {self.workers}")

    def fingerprint(self, out: Path) -> dict[str, Any]:
        d = asdict(self)
        d.pop("workers")
        d.update(out=str(out), size=CROP_SIZE, mgcli_version=__version__, stage="extract-faces")
        return json.loads(json.dumps(d))


@dataclass
class FaceJob:
    video_id: str
    split: str
    video: Path | None
    openpose_xlsx: Path | None
    source: str  # openpose | mediapipe (resolved for this video)


@dataclass
class FaceOutcome:
    video_id: str
    ok: bool
    message: str = ""
    source: str = ""
    frames: int = 0  # of the video
    crops: int = 0  # sampled frames
    found: int = 0  # sampled frames with a face
    seconds: float = 0.0
    skipped: bool = False  # finished by an earlier run (--resume)


@dataclass
class FacesReport:
    out: Path
    fps: float
    source: str
    outcomes: list[FaceOutcome] = field(default_factory=list)
    preview: Path | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FaceOutcome]:
        return [o for o in self.outcomes if not o.ok]


def sample_frames(num_frames: int, video_fps: float, fps: float) -> np.ndarray:
    """Frame numbers (int64, increasing, unique) sampled at ``fps`` over a video of ``num_frames``
    frames at ``video_fps``: ``round(k * video_fps / fps)`` for k = 0, 1, ... inside the video."""
    if num_frames <= 0:
        return np.zeros(0, np.int64)
    step = video_fps / fps
    k = np.arange(int(math.ceil(num_frames / step)) + 1)
    idx = np.floor(k * step + 0.5).astype(np.int64)
    return np.unique(idx[idx < num_frames])


# --------------------------------------------------------------------------- one video


class _Finder:
    """The per-frame face finder of a video: ``(crop_rgb | None, score)`` for a BGR frame."""

    def __init__(
        self, source: str, faces70: np.ndarray | None, mediapipe: Callable[[], MediaPipeFaces], radius: int = 0
    ) -> None:
        self.source = source
        self.radius = radius
        self.faces70 = faces70
        self.mediapipe = mediapipe

    def __call__(self, t: int, frame_bgr: np.ndarray) -> tuple[np.ndarray | None, float]:
        if self.source == "openpose":
            assert self.faces70 is not None
            if t >= len(self.faces70):
                return None, 0.0
            pts, score = openpose_smoothed_points(self.faces70, t, self.radius)
            m = fit_five_points(pts)
            if m is None:
                return None, 0.0
            return warp_crop(frame_bgr, m), score
        found = self.mediapipe().find(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        if found is None:
            return None, 0.0
        pts, score, mouth_centre = found
        m = fit_five_points(pts, mouth_centre=mouth_centre)
        if m is None:
            return None, 0.0
        return warp_crop(frame_bgr, m), score


def _decode_samples(path: Path, wanted: np.ndarray, total: int, on_frame: Callable[[int, np.ndarray], None]) -> int:
    """One sequential pass calling ``on_frame(t, bgr)`` for each wanted frame; the frame count
    actually decodable (a container may overstate it by up to :data:`TAIL_SLACK`); DataError for a
    video that ends earlier (truncated)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError("cannot open video", path)
    try:
        last = int(wanted[-1]) if len(wanted) else -1
        pos = 0
        for t in wanted.tolist():
            while pos < t:
                if not cap.grab():
                    return _short(path, pos, total)
                pos += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                return _short(path, pos, total)
            pos += 1
            on_frame(t, frame)
        return max(total, last + 1)
    finally:
        cap.release()


def _short(path: Path, decoded: int, total: int) -> int:
    if decoded >= total - TAIL_SLACK and decoded > 0:
        return decoded
    raise DataError(f"video ends after {decoded} of its {total} frames (truncated or corrupt?)", path)


def process_video(
    job: FaceJob,
    opts: FacesOptions,
    part_path: Path,
    mediapipe: Callable[[], MediaPipeFaces],
    progress: ProgressFn | None = None,
) -> FaceOutcome:
    """Crops of one video into its part file (written atomically). Never raises for bad input."""
    t0 = time.perf_counter()
    out = AtomicOutput(part_path, overwrite=True)
    try:
        if job.video is None:
            raise DataError(f"missing video {job.video_id}.mp4", job.video_id)
        info = probe_video(job.video)
        faces70 = None
        if job.source == "openpose":
            assert job.openpose_xlsx is not None
            kp = read_openpose_xlsx(job.openpose_xlsx)
            faces70 = np.ascontiguousarray(kp[:, OP_FACE_FIRST : OP_FACE_FIRST + OP_FACE_POINTS])
            del kp
        finder = _Finder(job.source, faces70, mediapipe, round(OPENPOSE_SMOOTH_SECONDS * info.fps))
        wanted = sample_frames(info.frames, info.fps, opts.fps)
        jpegs: list[np.ndarray] = []
        frames: list[int] = []
        scores: list[float] = []
        empty = np.zeros(0, np.uint8)

        def on_frame(t: int, bgr: np.ndarray) -> None:
            crop, score = finder(t, bgr)
            jpegs.append(empty if crop is None else encode_jpeg(crop, opts.quality))
            frames.append(t)
            scores.append(score if crop is not None else 0.0)
            if progress is not None and len(frames) % 8 == 0:
                progress(job.video_id, len(frames), len(wanted))

        total = _decode_samples(job.video, wanted, info.frames, on_frame)
        if progress is not None:
            progress(job.video_id, len(frames), len(frames))
        ensure_room(part_path.parent, sum(j.nbytes for j in jpegs) + 12 * len(frames), part_path)
        with h5py.File(out.tmp, "w") as f:
            ds = f.create_dataset("jpeg", shape=(len(jpegs),), dtype=JPEG)
            for i, j in enumerate(jpegs):
                ds[i] = j
            f.create_dataset("frame", data=np.asarray(frames, np.int64))
            f.create_dataset("score", data=np.asarray(scores, np.float32))
            f.attrs.update(video_id=job.video_id, source=job.source, fps=float(info.fps), num_frames=int(total))
        out.commit()
        found = int(sum(len(j) > 0 for j in jpegs))
        return FaceOutcome(job.video_id, True, "", job.source, int(total), len(frames), found, time.perf_counter() - t0)
    except MgError as e:
        out.discard()
        return FaceOutcome(job.video_id, False, str(e), job.source, seconds=time.perf_counter() - t0)
    except Exception as e:  # a decoder or model failure on one video must not stop the others
        out.discard()
        last = traceback.extract_tb(e.__traceback__)[-1]
        msg = f"{job.video or job.video_id}: {type(e).__name__}: {e} ({Path(last.filename).name}:{last.lineno})"
        return FaceOutcome(job.video_id, False, msg, job.source, seconds=time.perf_counter() - t0)


class _LazyMediaPipe:
    """Creates MediaPipe's models on first use only (never for a run on OpenPose points alone)."""

    def __init__(self) -> None:
        self.faces: MediaPipeFaces | None = None

    def __call__(self) -> MediaPipeFaces:
        if self.faces is None:
            self.faces = MediaPipeFaces()
        return self.faces

    def close(self) -> None:
        if self.faces is not None:
            self.faces.close()
            self.faces = None


# --------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(queue: Any) -> None:
    cv2.setNumThreads(1)
    _WORKER["mediapipe"] = _LazyMediaPipe()
    _WORKER["queue"] = queue


def _worker_run(job: FaceJob, opts: FacesOptions, part: Path) -> FaceOutcome:
    queue = _WORKER["queue"]
    progress = (lambda vid, done, total: queue.put((vid, done, total))) if queue is not None else None
    return process_video(job, opts, part, _WORKER["mediapipe"], progress)


def _run_parallel(
    todo: list[FaceJob],
    opts: FacesOptions,
    parts: Path,
    on_progress: ProgressFn | None,
    on_video: Callable[[FaceOutcome], None] | None,
) -> list[FaceOutcome]:
    outcomes = []
    ctx = get_context("spawn")  # MediaPipe does not survive a fork of a process that loaded it
    with ctx.Manager() as manager:
        queue = manager.Queue() if on_progress else None
        with ProcessPoolExecutor(opts.workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
            pending = {pool.submit(_worker_run, j, opts, parts / f"{j.video_id}.h5") for j in todo}
            outcomes += collect(pending, queue, on_progress, on_video)
    return outcomes


# --------------------------------------------------------------------------- the stage


def plan_faces(
    root: str | Path,
    source: str = "auto",
    labels_file: str | Path | None = None,
    protocol: str | None = None,
) -> tuple[list[FaceJob], pd.DataFrame]:
    """The jobs (one per video of :func:`~mgcli.dataset.emotion.emotion_videos`, its source
    resolved) and that table. ``--source openpose`` needs every video's ``{vid}_openpose.xlsx``."""
    from mgcli.dataset.emotion import emotion_videos

    release = Release(root)
    table = emotion_videos(release, labels_file, protocol)
    if not len(table):
        raise DataError("no videos to take faces from", release.root)
    jobs = []
    for vid, split in zip(table["video_id"], table["split"], strict=True):
        entry = release.videos[vid]
        if source == "auto":
            src = "openpose" if entry.openpose_xlsx is not None else "mediapipe"
        else:
            src = source
        jobs.append(FaceJob(vid, split, entry.video, entry.openpose_xlsx, src))
    if source == "openpose":
        missing = [j.video_id for j in jobs if j.openpose_xlsx is None]
        if missing:
            raise DataError(
                f"--source openpose needs {{vid}}_openpose.xlsx for every video; missing for "
                f"{', '.join(missing[:5])} ({len(missing)} in all)",
                release.root,
            )
    return jobs, table


def preview_path(out: Path, vid: str) -> Path:
    return out.with_name(f"faces-{vid}.png")


def extract_faces(
    root: str | Path,
    out: str | Path,
    opts: FacesOptions = FacesOptions(),
    labels_file: str | Path | None = None,
    protocol: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    preview: str | None = None,
    on_start: Callable[[list[FaceJob]], None] | None = None,
    on_progress: ProgressFn | None = None,
    on_video: Callable[[FaceOutcome], None] | None = None,
) -> FacesReport:
    """Write ``faces.h5`` for the release at ``root`` (see the module doc); with ``preview`` (a
    video id) also the montage ``faces-{vid}.png`` beside it (:func:`write_preview`)."""
    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    jobs, table = plan_faces(root, opts.source, labels_file, protocol)
    if preview is not None and preview not in set(table["video_id"]):
        raise MgError(f"--preview {preview}: not one of the {len(table)} videos (e.g. {jobs[0].video_id})", root)
    png = preview_path(out, preview) if preview is not None else None
    parts = parts_dir_for(out)
    if png is not None and not parts.exists():
        check_output(png, overwrite)
    _prepare_parts(parts, opts.fingerprint(out), out, None, overwrite, resume, root)
    done = {p.stem for p in parts.glob("*.h5") if _part_is_whole(p)}
    todo = [j for j in jobs if j.video_id not in done]
    if on_start:
        on_start(todo)
    outcomes = []
    for j in jobs:
        if j.video_id in done:
            o = FaceOutcome(j.video_id, True, "", j.source, skipped=True)
            outcomes.append(o)
            if on_video:
                on_video(o)
    if opts.workers <= 1 or len(todo) <= 1:
        mediapipe = _LazyMediaPipe()
        try:
            for job in todo:
                o = process_video(job, opts, parts / f"{job.video_id}.h5", mediapipe, on_progress)
                outcomes.append(o)
                if on_video:
                    on_video(o)
        finally:
            mediapipe.close()
    else:
        outcomes += _run_parallel(todo, opts, parts, on_progress, on_video)

    ok_ids = sorted(o.video_id for o in outcomes if o.ok)
    if not ok_ids:
        first = next(o for o in outcomes if not o.ok)
        raise DataError(f"none of the {len(outcomes)} videos could be processed; the first: {first.message}", root)
    sources = _merge(parts, ok_ids, table, out, opts)
    shutil.rmtree(parts, ignore_errors=True)
    order = {j.video_id: i for i, j in enumerate(jobs)}
    outcomes.sort(key=lambda o: order[o.video_id])
    report = FacesReport(out, opts.fps, sources, outcomes, warnings=list(table.attrs.get("warnings", [])))
    if png is not None and preview in ok_ids:
        report.preview = write_preview(out, preview, png, overwrite=True)
    elif png is not None:
        report.warnings.append(f"no preview: video {preview} failed")
    report.seconds = time.perf_counter() - t0
    return report


def _part_is_whole(path: Path) -> bool:
    """Whether a finished video's part reads back whole; a damaged one is removed (done again)."""
    try:
        with h5py.File(path, "r") as f:
            n = len(f["jpeg"])
            if not (len(f["frame"][()]) == len(f["score"][()]) == n):
                raise ValueError("lengths differ")
            int(f.attrs["num_frames"])
            str(f.attrs["source"])
        return True
    except (OSError, KeyError, ValueError, RuntimeError):
        path.unlink(missing_ok=True)
        return False


def _merge(parts: Path, video_ids: list[str], table: pd.DataFrame, out: Path, opts: FacesOptions) -> str:
    """Parts into ``faces.h5``; returns the file's ``source`` (the per-video sources joined by +)."""
    rows = []
    for vid in video_ids:
        with h5py.File(parts / f"{vid}.h5", "r") as f:
            rows.append((vid, str(f.attrs["source"]), float(f.attrs["fps"]), int(f.attrs["num_frames"])))
    sources = "+".join(sorted({r[1] for r in rows}))
    detector = MediaPipeFaces.describe() if "mediapipe" in sources else ""
    extra = pd.DataFrame(rows, columns=["video_id", "source", "fps", "num_frames"])
    videos = table[table["video_id"].isin(video_ids)].merge(extra, on="video_id").sort_values("video_id")
    # Outputs of an interrupted run that got as far as merging are ours to replace.
    with FacesWriter(out, opts.fps, sources, CROP_SIZE, opts.quality, overwrite=True, detector=detector) as w:
        for vid in video_ids:
            with h5py.File(parts / f"{vid}.h5", "r") as f:
                w.add_video(vid, list(f["jpeg"][()]), f["frame"][()], f["score"][()])
        w.set_videos(videos.reset_index(drop=True))
    return sources


# --------------------------------------------------------------------------- preview and summary


def montage(crops: np.ndarray, columns: int = PREVIEW_COLUMNS, gap: int = 2) -> np.ndarray:
    """RGB crops [K, S, S, 3] as one grid image (``columns`` wide, rows as needed, grey gaps)."""
    k, s = len(crops), crops.shape[1] if len(crops) else CROP_SIZE
    cols = max(1, min(columns, k))
    rows = max(1, math.ceil(k / cols))
    img = np.full((rows * (s + gap) + gap, cols * (s + gap) + gap, 3), 128, np.uint8)
    for i, crop in enumerate(crops):
        r, c = divmod(i, cols)
        y, x = gap + r * (s + gap), gap + c * (s + gap)
        img[y : y + s, x : x + s] = crop
    return img


def write_preview(faces: str | Path, vid: str, png: str | Path, overwrite: bool = False) -> Path:
    """A PNG montage of up to :data:`PREVIEW_MAX` crops of ``vid`` (evenly spaced over the video,
    :data:`PREVIEW_COLUMNS` per row; frames without a face are black)."""
    with FacesFile(faces) as ff:
        n = len(ff.frames(vid))
        rows = np.unique(np.linspace(0, n - 1, min(n, PREVIEW_MAX)).round().astype(np.int64)) if n else []
        crops, _, _ = ff.crops(vid, rows)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(montage(crops), cv2.COLOR_RGB2BGR))
    if not ok:
        raise MgError("PNG encoding failed", png)
    with AtomicOutput(png, overwrite) as tmp:
        tmp.write_bytes(buf.tobytes())
    return Path(png)


def faces_table(report: FacesReport) -> Table:
    """The summary: one row per video (status, source, frames, crops, faces found, time)."""
    table = Table(title=f"extract-faces: {report.source} at {report.fps:g} fps", title_justify="left")
    for col in ("video", "status", "source", "frames", "crops", "faces", "seconds"):
        table.add_column(col, justify="left" if col in ("video", "status", "source") else "right")
    for o in report.outcomes:
        status = "[dim]done earlier[/]" if o.skipped else "[green]ok[/]" if o.ok else f"[red]failed[/]: {o.message}"
        shown = o.ok and not o.skipped
        nums = [f"{v:,}" if shown else "-" for v in (o.frames, o.crops, o.found)]
        table.add_row(o.video_id, status, o.source, *nums, f"{o.seconds:.1f}")
    return table
