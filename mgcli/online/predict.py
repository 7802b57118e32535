"""``mg predict``: a trained model on a video that is in no release.

One command chains what the stages do: pose extraction with a video backend (MediaPipe by
default, MMPose with a config and checkpoint) over every frame, :func:`mgcli.online.detect.detect`
over the whole video, and three outputs a person looks at, in the output folder:

- ``segments.csv``: one row per micro-gesture found, ``start_frame,end_frame,start_s,end_s,
  label,class,score`` (frames 0-based and inclusive; seconds from the video's fps);
- ``timeline.png``: the per-frame confidence of the best gesture class (and of "no gesture" when
  the model has a background class) above the segments, classes by colour, against seconds;
- with ``overlay``: the video with the skeleton of the interviewee and the current micro-gesture
  (class and score) drawn on every frame, H.264 through PyAV (frame by frame: memory stays flat).

The intermediate artifacts (``poses.h5``, ``detections.csv``, ``frame-scores.h5``) stay beside
them, so ``mg detect`` can be rerun with other segment settings without extracting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mgcli.dataset.background import BACKGROUND
from mgcli.dataset.release import probe_video
from mgcli.errors import DataError, MgError
from mgcli.io.atomic import atomic_output, check_output
from mgcli.online.detect import DetectOptions, detect, read_detector
from mgcli.online.timeline import draw_segments

OUTPUTS = ("segments.csv", "timeline.png")


@dataclass
class PredictResult:
    segments: pd.DataFrame
    frames: int
    fps: float
    seconds: dict[str, float]  # wall time per stage
    files: list[Path]


def segment_table(det: pd.DataFrame, class_names: list[str], fps: float) -> pd.DataFrame:
    """Detections (``label,start,end,score``) as rows a person reads: frames, seconds, class names."""
    out = pd.DataFrame(
        {
            "start_frame": det["start"].astype(np.int64),
            "end_frame": det["end"].astype(np.int64),
            "start_s": (det["start"] / fps).round(3),
            "end_s": ((det["end"] + 1) / fps).round(3),
            "label": det["label"].astype(np.int64),
            "class": [class_names[int(c)] for c in det["label"]],
            "score": det["score"].round(4),
        }
    )
    return out.sort_values("start_frame", kind="stable").reset_index(drop=True)


def plot_confidence_timeline(
    scores: np.ndarray, det: pd.DataFrame, class_names: list[str], fps: float, out_png: Path, title: str
) -> Path:
    """Per-frame confidence (best gesture class; "no gesture" too when the model has it) above
    the detected segments, against seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bg = class_names.index(BACKGROUND) if BACKGROUND in class_names else None
    fg = scores.copy()
    if bg is not None:
        fg[:, bg] = -1
    t = np.arange(len(scores)) / fps
    span = max(len(t) / fps, 1e-3)
    cmap = plt.get_cmap("tab20")
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(12, 3.4), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, fg.max(1), color="black", linewidth=0.8, label="best gesture class")
    if bg is not None:
        ax.plot(t, scores[:, bg], color="grey", linewidth=0.8, linestyle=":", label="no gesture")
    for r in det.itertuples():
        a, b = r.start, r.end + 1
        ax.fill_between(t[a:b], 0, scores[a:b, int(r.label)], color=cmap(int(r.label) % 20), alpha=0.5)
    draw_segments(bx, det, 0, class_names, 1 / fps, span)
    ax.set_ylim(0, 1)
    ax.set_ylabel("confidence")
    ax.legend(loc="upper right", fontsize=7)
    bx.set_yticks([0.5], ["segments"])
    bx.set_ylim(0, 1)
    bx.set_xlim(0, span)
    bx.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(out_png, True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out_png


def write_overlay(
    video: Path, poses: Path, det: pd.DataFrame, class_names: list[str], out: Path, overwrite: bool
) -> Path:
    """The video with person 0's skeleton and the current segment's class and score drawn on
    it, as H.264 (PyAV), one frame at a time."""
    import cv2

    try:
        import av
    except ImportError:
        raise MgError("--overlay writes H.264 with PyAV: pip install 'mgcli[video]' (make install has it)") from None
    from mgcli.io.poses import PosesFile
    from mgcli.pose.layouts import get_layout

    with PosesFile(poses) as pf:
        vp = pf[pf.video_ids[0]]
        layout = get_layout(pf.layout)
    kp, sc = vp.keypoint[0], vp.keypoint_score[0]  # [T, V, 2], [T, V]
    rows = det.sort_values("score", kind="stable").reset_index(drop=True)  # the best segment drawn last
    current = np.full(kp.shape[0] + 1, -1, np.int64)  # the segment (row of rows) shown on each frame
    for i, r in enumerate(rows.itertuples()):
        current[r.start : r.end + 1] = i
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    w2, h2 = w - w % 2, h - h % 2  # yuv420p wants even sides
    font = max(0.35, h / 720)
    with atomic_output(out, overwrite) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            t = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if t < len(kp):
                    seen = sc[t] > 0.05
                    pts = kp[t].round().astype(np.int32)
                    for a, b in layout.limbs:
                        if seen[a] and seen[b]:
                            cv2.line(frame, tuple(pts[a]), tuple(pts[b]), (0, 220, 255), 2, cv2.LINE_AA)
                    for j in np.flatnonzero(seen):
                        cv2.circle(frame, tuple(pts[j]), 2, (0, 0, 255), -1, cv2.LINE_AA)
                k = current[min(t, len(current) - 1)]
                text = f"{class_names[int(rows.at[k, 'label'])]} {rows.at[k, 'score']:.2f}" if k >= 0 else "-"
                cv2.rectangle(frame, (0, 0), (w, int(28 * font) + 8), (0, 0, 0), -1)
                cv2.putText(
                    frame,
                    text,
                    (6, int(22 * font) + 2),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    font,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
                img = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h2, :w2]), format="bgr24")
                for packet in stream.encode(img):
                    container.mux(packet)
                t += 1
            for packet in stream.encode():
                container.mux(packet)
    cap.release()
    if t == 0:
        raise DataError("no frame could be decoded", video)
    return out


def predict_video(
    video: str | Path,
    checkpoint: str | Path,
    out_dir: str | Path,
    backend: str = "mediapipe",
    backend_options: dict | None = None,
    opts: DetectOptions | None = None,
    overlay: str | Path | None = None,
    heatmaps: str | Path | None = None,
    overwrite: bool = False,
    use_cuda: bool = True,
    stage: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictResult:
    """Pose extraction, detection and the outputs of the module docstring for one video."""
    from mgcli.pose.backends import backend_spec
    from mgcli.pose.extract import ExtractOptions, extract_pose

    video, checkpoint, out_dir = Path(video), Path(checkpoint), Path(out_dir)
    if not video.is_file():
        raise DataError("video not found", video)
    info = probe_video(video)  # one line for a file that is not a readable video
    if info.frames < 1:
        raise DataError("the video has no frames", video)
    opts = opts or DetectOptions()
    # a checkpoint of the wrong kind fails before any work
    state, _, kind, _ = read_detector(checkpoint, heatmaps, opts.num_clips)
    class_names = list(state["class_names"])
    names = [*OUTPUTS, "detections.csv", "frame-scores.h5", "poses.h5"]
    for name in names:
        check_output(out_dir / name, overwrite, inputs=(video, checkpoint))
    if overlay is not None:
        check_output(overlay, overwrite, inputs=(video, checkpoint))
    out_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if stage:
        stage(f"poses ({backend})")
    spec = backend_spec(backend, **(backend_options or {}))
    extract_pose(  # one video: a failure raises (DataError, one line)
        video,
        out_dir / "poses.h5",
        ExtractOptions(source="video", backend=spec, scope="all"),
        overwrite=True,
        on_progress=(lambda vid, done, total: progress(done, total)) if progress else None,
    )
    times["poses"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if stage:
        stage(f"detect ({kind} model)")
    res = detect(
        checkpoint,
        out_dir / "poses.h5",
        out_dir / "detections.csv",
        replace(opts, split="all"),
        out_dir / "frame-scores.h5",
        heatmaps,
        overwrite=True,
        use_cuda=use_cuda,
    )
    times["detect"] = time.perf_counter() - t1
    with h5py.File(out_dir / "frame-scores.h5") as f:
        scores = next(iter(f["videos"].values()))[()].astype(np.float32)
    fps = info.fps
    table = segment_table(res.detections, class_names, fps)
    with atomic_output(out_dir / "segments.csv", True) as tmp:
        table.to_csv(tmp, index=False)
    t2 = time.perf_counter()
    plot_confidence_timeline(scores, res.detections, class_names, fps, out_dir / "timeline.png", video.name)
    files = [out_dir / "segments.csv", out_dir / "timeline.png"]
    if overlay is not None:
        if stage:
            stage("overlay (H.264)")
        files.append(write_overlay(video, out_dir / "poses.h5", res.detections, class_names, Path(overlay), overwrite))
    times["outputs"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    return PredictResult(table, len(scores), fps, times, files)
