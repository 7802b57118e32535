"""``mg embed``: one embedding stream per video into ``embeddings.h5`` (:mod:`mgcli.io.embeddings`).

Three streams, the inputs of the emotion models (MiGA 2025 Track 3):

- ``face`` (``--model swinface``): every crop of ``faces.h5`` (``mg extract-faces``) through the
  SwinFace backbone (512-d); steps without a face (score below ``min_face_score``) are kept but
  marked invalid, so the time axis stays the sampling's.
- ``context`` (``--model mvit-v2-s``): the whole video in windows of ``frames`` frames taken every
  ``step`` raw frames (a window spans ``(frames - 1) x step + 1`` raw frames), one window every
  ``stride`` raw frames and a last one ending at the video's end; each
  window's frames are resized (short side) and centre-cropped to ``size``, and the MViTv2 class
  token (768-d for v2-S) is its embedding, dated at the window's centre. The default stride is
  the span (windows that just touch: every frame is in one window); a longer one skips frames. Frames are streamed: at
  most one window's span is held.
- ``gesture`` (``--model gestures``): a trained micro-gesture classifier's per-clip probabilities
  (scores CSVs of ``mg evaluate`` / ``mg ensemble``, every split), dated at each clip's centre:
  the iMiGUE premise that micro-gestures reveal hidden emotion, as a third stream.

Weights (``--weights``): for SwinFace a SwinFace checkpoint (see :mod:`mgcli.models.swinface`);
for MViT ``kinetics400`` (torchvision's enum, where downloads work), a torchvision-layout state
dict, or an mgcli ``model.pt`` of an ``mvit_v2_s`` run (built with that run's sizes); random init
otherwise (said in the report and stored in the file's ``weights`` attribute).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from mgcli.errors import DataError, MgError
from mgcli.io.atomic import check_output
from mgcli.io.embeddings import EmbeddingsWriter, VideoEmbeddings
from mgcli.io.frames import resize_short_side

Progress = Callable[[int, int], None]


@dataclass
class EmbedReport:
    out: Path
    stream: str
    dim: int
    weights: str
    videos: int = 0
    steps: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def _device(use_cuda: bool) -> torch.device:
    return torch.device("cuda") if use_cuda and torch.cuda.is_available() else torch.device("cpu")


def _batched(
    model: Callable[[torch.Tensor], torch.Tensor], items: Iterator[np.ndarray], batch: int, device
) -> Iterator[np.ndarray]:
    """``model`` over ``items`` (uint8 arrays), ``batch`` at a time on ``device``; float32 rows out."""
    chunk: list[np.ndarray] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == batch:
            yield _run(model, chunk, device)
            chunk = []
    if chunk:
        yield _run(model, chunk, device)


@torch.no_grad()
def _run(model: Callable[[torch.Tensor], torch.Tensor], chunk: list[np.ndarray], device: torch.device) -> np.ndarray:
    x = torch.from_numpy(np.stack(chunk)).to(device, non_blocking=True)
    return model(x).float().cpu().numpy()


# --------------------------------------------------------------------------- face stream


def embed_faces(
    faces: str | Path,
    out: str | Path,
    weights: str | Path | None = None,
    batch_size: int = 64,
    min_face_score: float = 0.5,
    overwrite: bool = False,
    use_cuda: bool = True,
    progress: Progress | None = None,
) -> EmbedReport:
    """SwinFace embeddings of every crop of ``faces.h5``."""
    from mgcli.io.faces import FacesFile
    from mgcli.models.swinface import swinface

    out = Path(out)
    check_output(out, overwrite, inputs=(Path(faces),))
    device = _device(use_cuda)
    model = swinface(pretrained=weights).to(device).eval()
    source = "; ".join(r.describe() for r in getattr(model, "load_reports", [])) or "random init"
    dim = int(model.out_dim)
    report = EmbedReport(out, "face", dim, source)
    with FacesFile(faces) as ff, EmbeddingsWriter(out, "face", "swinface", dim, overwrite, weights=source) as w:
        videos = ff.videos
        for i, vid in enumerate(videos["video_id"].astype(str)):
            crops, frames, scores = ff.crops(vid)
            valid = (np.asarray(scores) >= min_face_score) & (
                crops.reshape(len(crops), -1).any(1) if len(crops) else True
            )
            rows = [c.transpose(2, 0, 1) for c in crops]  # [3, 112, 112] RGB uint8
            vecs = [v for part in _batched(model, iter(rows), batch_size, device) for v in part]
            vectors = np.stack(vecs) if vecs else np.zeros((0, dim), np.float32)
            w.add_video(VideoEmbeddings(vid, vectors, frames, valid))
            report.videos += 1
            report.steps += len(vectors)
            if progress:
                progress(i + 1, len(videos))
        w.set_videos(videos)
    return report


# --------------------------------------------------------------------------- context stream


@dataclass(frozen=True)
class WindowSpec:
    frames: int = 16  # frames per window (the model's clip length)
    step: int = 4  # raw frames between a window's frames
    stride: int = 0  # raw frames between window starts (0: the span, windows that just touch)
    size: int = 224  # crop size (the model's)

    @property
    def span(self) -> int:
        return (self.frames - 1) * self.step + 1

    @property
    def every(self) -> int:
        return self.stride or self.span


def video_windows(path: str | Path, spec: WindowSpec) -> Iterator[tuple[int, np.ndarray]]:
    """``(centre frame, uint8 [3, frames, size, size] RGB)`` windows of a video, streamed (see the
    module doc); raises DataError for a video that cannot be opened or has no frames."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError("cannot open video", path)
    buf: deque[np.ndarray] = deque(maxlen=spec.span)
    last_end = -1
    j = -1
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            j += 1
            small = resize_short_side(frame, spec.size, upscale=True)
            h, w = small.shape[:2]
            y0, x0 = (h - spec.size) // 2, (w - spec.size) // 2
            buf.append(cv2.cvtColor(small[y0 : y0 + spec.size, x0 : x0 + spec.size], cv2.COLOR_BGR2RGB))
            start = j - spec.span + 1
            if start >= 0 and start % spec.every == 0:
                yield _window(buf, spec, start)
                last_end = j
    finally:
        cap.release()
    if j < 0:
        raise DataError("video has no readable frames", path)
    if last_end < j:  # the tail (or a video shorter than one window): a window ending at the last frame
        yield _window(buf, spec, max(j - spec.span + 1, 0))


def _window(buf: deque[np.ndarray], spec: WindowSpec, start: int) -> tuple[int, np.ndarray]:
    frames = list(buf)
    idx = np.minimum(np.arange(spec.frames) * spec.step, len(frames) - 1)  # short videos repeat the last
    clip = np.stack([frames[k] for k in idx])  # [T, H, W, 3]
    centre = start + int(idx[len(idx) // 2])
    return centre, np.ascontiguousarray(clip.transpose(3, 0, 1, 2))


def context_model(weights: str | Path | None, frames: int, size: int) -> tuple[torch.nn.Module, str, int, int]:
    """The MViT embedder, what was loaded, and its clip length and size (a run's ``model.pt`` fixes
    them)."""
    from mgcli.models import build_model

    if weights is not None and str(weights).endswith(".pt") and Path(weights).is_file():
        from mgcli.io.checkpoint import load_checkpoint
        from mgcli.train.build import without_pretrained

        state = load_checkpoint(weights)
        options = dict(state["config"].get("model", {}))
        name = options.pop("name", "")
        if name != "mvit_v2_s":
            raise MgError(f"expected the model.pt of an mvit_v2_s run, found a {name or 'unknown'} model", weights)
        model = build_model(name, len(state["class_names"]), **without_pretrained(options))
        model.load_inference_state(state["state_dict"])
        return (
            model,
            f"{weights} (an mvit_v2_s run, {len(state['class_names'])} classes)",
            model.temporal_size,
            model.spatial_size[0],
        )
    options: dict[str, Any] = {"frames": frames, "size": size}
    if weights is not None:
        options["pretrained"] = str(weights)
    model = build_model("mvit_v2_s", 1, **options)
    loaded = "; ".join(r.describe() for r in getattr(model, "load_reports", []))
    return model, loaded or (str(weights) if weights else "random init"), frames, size


def embed_context(
    root: str | Path,
    out: str | Path,
    weights: str | Path | None = None,
    spec: WindowSpec = WindowSpec(),
    batch_size: int = 8,
    labels_file: str | Path | None = None,
    protocol: str | None = None,
    overwrite: bool = False,
    use_cuda: bool = True,
    progress: Progress | None = None,
) -> EmbedReport:
    """MViTv2 embeddings of whole-video windows of every video of the release ``root``."""
    from mgcli.dataset.emotion import emotion_videos
    from mgcli.dataset.release import Release

    out = Path(out)
    check_output(out, overwrite)
    release = Release(root)
    table = emotion_videos(release, labels_file, protocol)
    device = _device(use_cuda)
    model, source, frames, size = context_model(weights, spec.frames, spec.size)
    spec = WindowSpec(frames, spec.step, spec.stride, size)
    model = model.to(device).eval()
    dim = int(model.embed_dim)
    report = EmbedReport(out, "context", dim, source)

    def one(vid: str) -> tuple[VideoEmbeddings, float, int]:
        entry = release.videos.get(vid)
        if entry is None or entry.video is None:
            raise DataError("no video file", release.root / vid)
        info = release.video_info(vid)
        centres: list[int] = []

        def windows() -> Iterator[np.ndarray]:
            for c, clip in video_windows(entry.video, spec):
                centres.append(c)
                yield clip

        vecs = [v for part in _batched(model.embed, windows(), batch_size, device) for v in part]
        n_frames = max(int(info.frames) if info else 0, (max(centres) + 1) if centres else 0)
        emb = VideoEmbeddings(vid, np.stack(vecs), np.asarray(centres), np.ones(len(vecs), bool))
        return emb, float(info.fps) if info else 25.0, n_frames

    with EmbeddingsWriter(out, "context", "mvit_v2_s", dim, overwrite, weights=source, window=vars(spec)) as w:
        embed_each_video(table, w, report, one, root, progress)
    return report


def embed_each_video(
    table: pd.DataFrame,
    writer: EmbeddingsWriter,
    report: EmbedReport,
    one: Callable[[str], tuple[VideoEmbeddings, float, int]],
    root: str | Path,
    progress: Progress | None = None,
) -> None:
    """The per-video loop of the release streams: ``one(video_id)`` gives the video's embeddings,
    its fps and frame count; a :class:`DataError` leaves the video out (``report.failed``); the
    videos table is written at the end, and no video at all is an :class:`MgError`."""
    rows = []
    for i, r in enumerate(table.itertuples()):
        vid = str(r.video_id)
        try:
            emb, fps, n_frames = one(vid)
            writer.add_video(emb)
            rows.append((vid, r.split, int(r.label), fps, n_frames))
            report.videos += 1
            report.steps += len(emb.frames)
        except DataError as e:
            report.failed[vid] = e.message
        if progress:
            progress(i + 1, len(table))
    if not rows:
        raise MgError(
            "no video could be embedded: " + "; ".join(f"{k}: {v}" for k, v in report.failed.items())[:400], root
        )
    writer.set_videos(pd.DataFrame(rows, columns=["video_id", "split", "label", "fps", "num_frames"]))


# --------------------------------------------------------------------------- gesture stream


def embed_gestures(
    scores: list[str | Path],
    root: str | Path,
    out: str | Path,
    labels_file: str | Path | None = None,
    protocol: str | None = None,
    overwrite: bool = False,
) -> EmbedReport:
    """Per-clip micro-gesture probabilities of ``scores`` CSVs as a stream over each video of the
    release ``root`` (clip frames from its clip table, dated at the clip's centre)."""
    from mgcli.dataset.emotion import emotion_videos
    from mgcli.dataset.release import Release
    from mgcli.io.scores import read_scores

    out = Path(out)
    check_output(out, overwrite, inputs=tuple(Path(s) for s in scores))
    release = Release(root)
    table = emotion_videos(release, labels_file, protocol)
    clips = release.clips(check_frames=False).set_index("clip_id")
    probs: dict[str, np.ndarray] = {}
    dim = 0
    for path in scores:
        sc = read_scores(path)
        if dim and sc.num_classes != dim:
            raise MgError(f"{sc.num_classes} classes here but {dim} in {scores[0]}", path)
        dim = sc.num_classes
        for cid, p in zip(sc.clip_ids, sc.probs, strict=True):
            if cid in probs:
                raise MgError(f"clip {cid} is scored twice", path)
            probs[cid] = p
    unknown = [c for c in probs if c not in clips.index]
    if unknown:
        raise MgError(f"{len(unknown)} scored clips are not in the release (e.g. {', '.join(unknown[:3])})", scores[0])
    report = EmbedReport(out, "gesture", dim, ", ".join(str(s) for s in scores))
    rows = []
    by_video = clips.loc[list(probs)].reset_index().groupby("video_id")
    with EmbeddingsWriter(out, "gesture", "scores", dim, overwrite, weights=report.weights) as w:
        for r in table.itertuples():
            vid = str(r.video_id)
            if vid not in by_video.groups:
                continue
            g = by_video.get_group(vid).sort_values("start")
            centres = ((g["start"] + g["end"]) // 2).to_numpy(np.int64)
            vectors = np.stack([probs[c] for c in g["clip_id"]])
            w.add_video(VideoEmbeddings(vid, vectors, centres, np.ones(len(g), bool)))
            info = release.video_info(vid)
            n = max(int(info.frames) if info else 0, int(g["end"].max()) + 1)
            rows.append((vid, r.split, int(r.label), float(info.fps) if info else 25.0, n))
            report.videos += 1
            report.steps += len(g)
        if not rows:
            raise MgError("none of the scored clips belongs to a video of the release", scores[0])
        w.set_videos(pd.DataFrame(rows, columns=["video_id", "split", "label", "fps", "num_frames"]))
    return report
