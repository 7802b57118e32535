"""The ``mg`` command line: one thin command per stage over the library functions."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.exceptions
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mgcli import __version__, output
from mgcli.errors import MgError
from mgcli.online.options import DetectOptions

app = typer.Typer(
    name="mg",
    help=(
        "Micro-gesture recognition and emotion prediction on iMiGUE (MiGA challenge).\n\n"
        "Stages read and write files, so any of them can be rerun alone. Start with "
        "[bold]mg sample-data demo/sample[/] and [bold]mg inspect demo/sample[/]."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)


class _State:
    debug = os.environ.get("MG_DEBUG", "") not in ("", "0")
    quiet = False


state = _State()
F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(fn: F) -> F:
    """Turn an :class:`MgError` into one line on stderr and exit code 2 (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MgError as e:
            if state.debug:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise
        except Exception as e:  # noqa: BLE001 - the last line of defence: one line, never a traceback
            if state.debug:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {describe_exception(e)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if isinstance(e, OSError) else 1) from None

    return wrapper  # type: ignore[return-value]


def describe_exception(e: BaseException) -> str:
    """One line for an exception that is not an :class:`MgError`: an operating-system error names
    its file and the problem (``/ro/e.csv: permission denied``, ``out.h5: no space left on
    device``); anything else is an internal error, with its place in the code and a pointer to
    ``--debug``."""
    if isinstance(e, OSError) and (e.strerror or e.errno):
        problem = (e.strerror or os.strerror(e.errno or 0)).lower()
        return f"{e.filename}: {problem}" if e.filename is not None else problem
    if isinstance(e, OSError):
        return f"{e}"
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    place = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = " ".join(str(e).split()) or type(e).__name__
    return f"internal error: {type(e).__name__}: {text}{place}; rerun with --debug for the traceback"


def _version(value: bool) -> None:
    if value:
        console.print(f"mg (mgcli) {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    state.debug = debug or os.environ.get("MG_DEBUG", "") not in ("", "0")
    state.quiet = quiet


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=state.quiet,
        transient=False,
    )


def _video_progress(bar: Progress) -> tuple[Any, Callable[[str, int, int], None], Callable[[Any], None]]:
    """An overall task over videos plus one transient task per video in progress: the overall
    task id, ``on_progress(vid, done, total)`` and ``on_video(outcome)`` (an outcome has
    ``video_id`` and ``skipped``) for the per-video extraction stages."""
    overall = bar.add_task("videos", total=None)
    per_video: dict[str, Any] = {}

    def on_progress(vid: str, done: int, total: int) -> None:
        if vid not in per_video:
            per_video[vid] = bar.add_task(f"  {vid}", total=total)
        bar.update(per_video[vid], completed=done, total=total)

    def on_video(o: Any) -> None:
        if o.video_id in per_video:
            bar.remove_task(per_video.pop(o.video_id))
        if not o.skipped:
            bar.advance(overall)

    return overall, on_progress, on_video


def _parse_size(value: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW, e.g. 180x320, got {value!r}") from None
    return h, w


@app.command(
    "sample-data",
    epilog=(
        "Examples: [bold]mg sample-data demo/sample --videos 16 --seed 0[/]   "
        "[bold]mg sample-data demo/emotion --preset emotion[/]"
    ),
)
@handles_errors
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to create (the release root).")],
    preset: Annotated[
        str,
        typer.Option(
            help="default: long micro-gesture interviews. emotion: 40 short videos (24/6/10) with win/lose labels "
            "(train_label.csv, validation_label.csv, test_label.csv) and visible facial and behavioural cues."
        ),
    ] = "default",
    videos: Annotated[
        int | None, typer.Option(help="Number of videos [default: 16, 25 % test, 12.5 % val; emotion: 40, even].")
    ] = None,
    gestures: Annotated[int | None, typer.Option(help="Gestures (clips) per video [default: 24; not emotion].")] = None,
    seconds: Annotated[float | None, typer.Option(help="Video length, emotion preset only [default: 6].")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same dataset.")] = 0,
    size: Annotated[str | None, typer.Option(help="Frame size HxW [default: 180x320; emotion: 216x384].")] = None,
    fps: Annotated[float | None, typer.Option(help="Frames per second [default: 25].")] = None,
    workers: Annotated[int, typer.Option(help="Processes rendering videos in parallel.")] = min(2, os.cpu_count() or 1),
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Generate a small synthetic iMiGUE in [bold]exactly[/] the MiGA release layout.

    Long mp4 interviews of a rendered seated person doing micro-gestures, {vid}_label.csv files,
    OpenPose skeletons in both released formats, train/validate/test folders, dummy test labels
    and the true ones in test_labels.csv. --preset emotion adds per-video win/lose labels.
    """
    from mgcli.dataset.sample import generate_sample, preset_config

    cfg, emotion = preset_config(
        preset, videos, gestures, None if size is None else _parse_size(size), fps, seed, seconds
    )
    with progress_bar() as bar:
        task = bar.add_task("rendering videos", total=cfg.videos)
        summary = generate_sample(
            out, cfg, overwrite=overwrite, workers=workers, progress=lambda _: bar.advance(task), emotion=emotion
        )
    c = summary.clips_per_split
    console.print(
        f"[green]wrote[/] {out}: {len(summary.videos)} videos, "
        f"{c['train']} train / {c['val']} val / {c['test']} test clips in {summary.seconds:.1f} s"
    )
    console.print(
        "expected test top-1 ceilings: pose only {pose_only:.3f}, RGB only (8 frames) "
        "{rgb_only_8_frames:.3f}, fused {fused:.3f}".format(**summary.ceilings)
    )
    if emotion is not None:
        console.print(
            "expected win/lose accuracy ceilings: face only {face_only:.2f}, behaviour only {behaviour_only:.2f}, "
            "fused {fused:.2f} (this test split: face {face_only_this_test_split:.2f}, behaviour "
            "{behaviour_only_this_test_split:.2f})".format(**summary.emotion_ceilings)
        )


@app.command(epilog="Examples: [bold]mg inspect demo/sample[/]   [bold]mg inspect poses.h5[/]")
@handles_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="A release root, an .h5 artifact, a scores/label CSV or a model.pt.")],
    label_map: Annotated[
        Path | None, typer.Option(help="CSV raw,label[,name] replacing the default class table.")
    ] = None,
) -> None:
    """Summarise a release root or any artifact.

    Release: clips per split and class, frame counts, missing files, and win / lose / unlabelled
    videos per split when it has emotion label files (train_label.csv, ...). Artifacts: schema, shapes,
    clips per split; a scores CSV also gets its top-1 / top-5.
    """
    from mgcli.dataset.labels import release_label_map
    from mgcli.inspect import describe

    lm = release_label_map(path if path.is_dir() else None, label_map)
    console.print(describe(path, lm))


@app.command(
    "extract-pose",
    epilog=(
        "Examples: [bold]mg extract-pose demo/sample -o demo/poses.h5 --frames-out demo/frames.h5[/]   "
        "[bold]mg extract-pose videos/ --source video --backend mediapipe --layout coco17[/]"
    ),
)
@handles_errors
def extract_pose_cmd(
    root: Annotated[Path, typer.Argument(help="A MiGA release root, a folder of videos, or one video.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The poses.h5 to write.")] = Path("poses.h5"),
    source: Annotated[str, typer.Option(help="auto (release skeletons when present), skeleton or video.")] = "auto",
    backend: Annotated[
        str | None, typer.Option(help="Pose model for --source video: mediapipe, mediapipe-holistic or mmpose.")
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="Convert to this keypoint layout (openpose137, openpose35, body25, coco17, mediapipe33, "
            "mediapipe75, upper22)."
        ),
    ] = None,
    skeleton_file: Annotated[str, typer.Option(help="Released skeleton to read: auto, xlsx or light_hand.")] = "auto",
    max_persons: Annotated[int, typer.Option(help="Persons kept per video, the interviewee first.")] = 1,
    frames_out: Annotated[Path | None, typer.Option(help="Also write the RGB clip cache (frames.h5) here.")] = None,
    frame_size: Annotated[int, typer.Option(help="Short side of the cached frames.")] = 256,
    jpeg_quality: Annotated[int, typer.Option(help="JPEG quality of the cached frames.")] = 90,
    scope: Annotated[
        str, typer.Option(help="Video source: run the model on frames in clips, or all frames.")
    ] = "clips",
    img_shape: Annotated[
        str | None, typer.Option(help="HxW of the original videos when only skeletons are present.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Videos processed in parallel.")] = 1,
    clips: Annotated[
        Path | None, typer.Option(help="For plain videos: clip table clip_id,video_id,start,end[,label,split].")
    ] = None,
    test_labels: Annotated[Path | None, typer.Option(help="CSV clip_id,label with the true test labels.")] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(help="CSV raw,label[,name] replacing the class table (default: ROOT/label_map.csv if any)."),
    ] = None,
    pose_config: Annotated[str | None, typer.Option(help="mmpose: model config file or model alias.")] = None,
    pose_checkpoint: Annotated[
        str | None, typer.Option(help="mmpose: checkpoint file (random init if omitted).")
    ] = None,
    det_config: Annotated[str | None, typer.Option(help="mmpose: MMDetection config for person boxes.")] = None,
    det_checkpoint: Annotated[str | None, typer.Option(help="mmpose: MMDetection checkpoint.")] = None,
    device: Annotated[
        str | None, typer.Option(help="mmpose: cpu, cuda or cuda:N (default: cuda when present).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="mmpose: frames per forward pass.")] = 16,
    background: Annotated[
        int,
        typer.Option(
            help="Online recognition: add up to N 'no gesture' clips per training and validation video, "
            "drawn from the gaps between labelled clips, as one more class (background)."
        ),
    ] = 0,
    background_window: Annotated[int, typer.Option(help="Frames per background clip.")] = 64,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run, keeping its finished videos.")] = False,
) -> None:
    """Skeletons per video into poses.h5, from the released OpenPose files or a 2D pose model.

    One decode pass also fills the RGB clip cache (--frames-out), so training never seeks in long
    videos. Interrupted runs continue with --resume; an unreadable video is reported and skipped
    while the others complete (exit code 1).
    """
    from mgcli.dataset.labels import release_label_map
    from mgcli.pose.backends import backend_spec
    from mgcli.pose.extract import ExtractOptions, extract_pose

    spec = backend_spec(backend, pose_config, pose_checkpoint, det_config, det_checkpoint, device, batch_size)
    opts = ExtractOptions(
        source=source,
        backend=spec,
        layout=layout,
        skeleton_file=skeleton_file,
        max_persons=max_persons,
        frames_out=frames_out,
        frame_size=frame_size,
        jpeg_quality=jpeg_quality,
        scope=scope,
        img_shape=_parse_size(img_shape) if img_shape else None,
        workers=workers,
        background=background,
        background_window=background_window,
    )
    lm = release_label_map(root if root.is_dir() else None, label_map)
    with progress_bar() as bar:
        overall, on_progress, on_video = _video_progress(bar)

        def on_start(jobs: list[Any], src: str, lay: str) -> None:
            bar.update(overall, total=len(jobs), description=f"videos ({src} -> {lay})")

        report = extract_pose(
            root, out, opts, lm, clips, test_labels, overwrite, resume, on_start, on_progress, on_video
        )
    if not state.quiet or report.failed:
        console.print(output.extract_table(report))
    outputs = f"{report.poses}" + (f" and {report.frames}" if report.frames else "")
    ok = len(report.outcomes) - len(report.failed)
    console.print(f"[green]wrote[/] {outputs}: {ok} videos in {report.seconds:.1f} s")
    if report.failed:
        err_console.print(f"[bold red]{len(report.failed)} video(s) failed[/] and were left out (see the table)")
        raise typer.Exit(1)


@app.command(
    "extract-faces",
    epilog=(
        "Examples: [bold]mg extract-faces release/ -o faces.h5 --preview 0001[/]   "
        "[bold]mg extract-faces release/ --source mediapipe --fps 1 --workers 2[/]"
    ),
)
@handles_errors
def extract_faces_cmd(
    root: Annotated[Path, typer.Argument(help="A MiGA release root (or the sample).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The faces.h5 to write.")] = Path("faces.h5"),
    fps: Annotated[float, typer.Option(help="Crops per second of video, over each whole video.")] = 2.0,
    source: Annotated[
        str,
        typer.Option(
            help="auto (OpenPose face points when the video has them, else MediaPipe), openpose or mediapipe."
        ),
    ] = "auto",
    workers: Annotated[int, typer.Option(help="Videos processed in parallel.")] = 1,
    emotion_labels: Annotated[
        Path | None,
        typer.Option(help="A video_id,label CSV (1/0, win/lose, positive/negative) instead of the release's."),
    ] = None,
    protocol: Annotated[str | None, typer.Option(help="A named split instead of the release's: imigue2021.")] = None,
    preview: Annotated[
        str | None, typer.Option(help="Also write a PNG montage of this video's crops (faces-VID.png beside -o).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run, keeping its finished videos.")] = False,
) -> None:
    """Aligned 112x112 face crops (ArcFace five-point template) sampled over every whole video.

    For the emotion track: faces.h5 feeds mg embed --model swinface. Interrupted runs continue with
    --resume; an unreadable video is reported and skipped while the others complete (exit code 1).
    """
    from mgcli.faces.extract import FacesOptions, extract_faces, faces_table

    opts = FacesOptions(fps=fps, source=source, workers=workers)
    with progress_bar() as bar:
        overall, on_progress, on_video = _video_progress(bar)

        report = extract_faces(
            root,
            out,
            opts,
            emotion_labels,
            protocol,
            overwrite,
            resume,
            preview,
            lambda todo: bar.update(overall, total=len(todo), description=f"videos (faces at {fps:g} fps)"),
            on_progress,
            on_video,
        )
    if not state.quiet or report.failed:
        console.print(faces_table(report))
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    ok = len(report.outcomes) - len(report.failed)
    console.print(f"[green]wrote[/] {report.out}: {ok} videos in {report.seconds:.1f} s")
    if report.preview is not None:
        console.print(f"preview: {report.preview}")
    if report.failed:
        err_console.print(f"[bold red]{len(report.failed)} video(s) failed[/] and were left out (see the table)")
        raise typer.Exit(1)


@app.command(
    "build-heatmaps",
    epilog=(
        "Examples: [bold]mg build-heatmaps demo/poses.h5 --layout upper22 --kind joint "
        "-o demo/heatmaps-upper22-joint.h5[/]   "
        "[bold]mg build-heatmaps demo/heatmaps-upper22-joint.h5 --preview 0001_3 -o preview.png[/]"
    ),
)
@handles_errors
def build_heatmaps_cmd(
    poses: Annotated[Path, typer.Argument(help="poses.h5 from extract-pose (or a heatmaps file with --preview).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The heatmaps .h5 to write (a .png with --preview).")] = Path(
        "heatmaps.h5"
    ),
    kind: Annotated[str, typer.Option(help="joint (one channel per joint) or limb (one per limb).")] = "joint",
    sigma: Annotated[float, typer.Option(help="Gaussian sigma in output pixels.")] = 0.6,
    size: Annotated[int, typer.Option(help="Stored heatmap size (square, after PoseCompact).")] = 64,
    padding: Annotated[float, typer.Option(help="PoseCompact padding ratio.")] = 0.25,
    compact: Annotated[
        str,
        typer.Option(
            help="clip: one PoseCompact box per clip (PoseConv3D); frame: a box that follows the person; "
            "auto: frame where the person's box changes over 1.5x in the clip (walking up), else clip."
        ),
    ] = "auto",
    dtype: Annotated[str, typer.Option(help="uint8 (error <= 1/510) or float16.")] = "uint8",
    layout: Annotated[
        str | None, typer.Option(help="Convert the poses to this keypoint layout first (default: as recorded).")
    ] = None,
    splits: Annotated[str, typer.Option(help="Comma-separated splits to include.")] = "train,val,test",
    preview: Annotated[
        str | None, typer.Option(help="Instead of building: draw this clip of a heatmaps file into -o PNG.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """PoseConv3D joint or limb heatmap volumes from poses.h5 (PoseCompact, then rendered).

    Stores each clip's compacted keypoints and its all-frame volume; training renders random
    views from the keypoints at load time, evaluation cuts fixed views from the volume.
    """
    from mgcli.heatmaps.build import BuildOptions, build_heatmaps
    from mgcli.heatmaps.build import preview as draw_preview

    if preview is not None:
        png = draw_preview(poses, preview, out)
        console.print(output.wrote([png]))
        return
    opts = BuildOptions(
        kind=kind,
        sigma=sigma,
        size=size,
        padding=padding,
        compact=compact,
        dtype=dtype,
        layout=layout,
        splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
    )
    with progress_bar() as bar:
        task = bar.add_task(f"{kind} heatmaps", total=None)
        stats = build_heatmaps(
            poses, out, opts, overwrite, progress=lambda n, total: bar.update(task, advance=n, total=total)
        )
    console.print(
        f"[green]wrote[/] {out}: {int(stats['clips'])} clips in {stats['seconds']:.1f} s, "
        f"{stats['bytes_per_clip'] / 1024:.1f} KiB per clip"
    )
    if stats["failed"]:
        for clip_id, reason in list(stats["failed"].items())[:20]:
            err_console.print(f"  {clip_id}: {reason}", highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]{len(stats['failed'])} clip(s) failed[/] and were left out")
        raise typer.Exit(1)


@app.command(
    "embed",
    epilog=(
        "Examples: [bold]mg embed faces.h5 --model swinface -o face-emb.h5[/]   "
        "[bold]mg embed release/ --model mvit-v2-s --weights kinetics400 -o context-emb.h5[/]   "
        "[bold]mg embed runs/pose/scores-*.csv --model gestures --release release/ -o gesture-emb.h5[/]"
    ),
)
@handles_errors
def embed_cmd(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="swinface: faces.h5 (mg extract-faces); mvit-v2-s, face-points, body-motion: the release "
            "root; gestures: scores CSVs.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="swinface, mvit-v2-s, gestures, face-points or body-motion.")
    ] = "swinface",
    out: Annotated[Path, typer.Option("--out", "-o", help="The embeddings.h5 to write.")] = Path("embeddings.h5"),
    weights: Annotated[
        str | None,
        typer.Option(
            help="swinface: a SwinFace checkpoint; mvit-v2-s: kinetics400, a state dict or an mvit_v2_s "
            "run's model.pt. Default: random init (said in the output)."
        ),
    ] = None,
    release: Annotated[Path | None, typer.Option(help="gestures: the release the scored clips belong to.")] = None,
    frames: Annotated[int, typer.Option(help="mvit-v2-s: frames per window.")] = 16,
    step: Annotated[int, typer.Option(help="mvit-v2-s: raw frames between a window's frames.")] = 4,
    stride: Annotated[
        int, typer.Option(help="mvit-v2-s: raw frames between window starts (0: a window's span, no gaps).")
    ] = 0,
    size: Annotated[int, typer.Option(help="mvit-v2-s: crop size (short side resized, centre crop).")] = 224,
    batch_size: Annotated[int, typer.Option(help="Crops or windows per forward pass.")] = 16,
    fps: Annotated[float, typer.Option(help="face-points, body-motion: steps per second.")] = 2.0,
    window: Annotated[float, typer.Option(help="body-motion: seconds per window.")] = 1.0,
    min_face_score: Annotated[float, typer.Option(help="swinface: crops scored lower count as no face.")] = 0.5,
    emotion_labels: Annotated[
        Path | None,
        typer.Option(help="A video_id,label CSV (1/0, win/lose, positive/negative) instead of the release's."),
    ] = None,
    protocol: Annotated[str | None, typer.Option(help="A named split instead of the release's: imigue2021.")] = None,
    cpu: Annotated[bool, typer.Option(help="Stay on the CPU even when CUDA is available.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Embedding sequences per video for the emotion models: faces, whole-frame context or gestures.

    swinface embeds every crop of faces.h5 (512-d); mvit-v2-s embeds windows covering each whole
    video (768-d for v2-S); gestures turns a micro-gesture classifier's per-clip probabilities into
    a stream over each video. face-points (a face stream) and body-motion (a context stream) need
    no weights: descriptors of the release's OpenPose points (facial-expression geometry; the
    body's speeds, sway and self-touching) at --fps steps per second. Labels and splits come from
    the release (or --emotion-labels / --protocol; faces.h5 already carries them).
    """
    from mgcli import embed, embed_points

    name = model.replace("_", "-").lower()
    if name not in ("swinface", "mvit-v2-s", "gestures", *embed_points.STREAM_OF):
        raise MgError(f"--model must be swinface, mvit-v2-s, gestures, face-points or body-motion, not {model!r}")
    points = embed_points.PointsOptions(fps=fps, window=window) if name in embed_points.STREAM_OF else None
    for opt, value, least in (
        ("--frames", frames, 1),
        ("--step", step, 1),
        ("--stride", stride, 0),
        ("--batch-size", batch_size, 1),
    ):
        if value < least:
            raise MgError(f"{opt} must be at least {least}, got {value}")
    if name != "gestures" and len(inputs) != 1:
        raise MgError(f"--model {name} takes one input, got {len(inputs)}")
    with progress_bar() as bar:
        task = bar.add_task(f"{name} embeddings", total=None)
        tick = lambda n, total: bar.update(task, completed=n, total=total)  # noqa: E731
        if name == "swinface":
            rep = embed.embed_faces(inputs[0], out, weights, batch_size, min_face_score, overwrite, not cpu, tick)
        elif points is not None:
            rep = embed_points.embed_points(
                inputs[0], out, name, points, emotion_labels, protocol, overwrite, progress=tick
            )
        elif name == "mvit-v2-s":
            spec = embed.WindowSpec(frames, step, stride, size)
            rep = embed.embed_context(
                inputs[0], out, weights, spec, batch_size, emotion_labels, protocol, overwrite, not cpu, tick
            )
        else:
            if release is None:
                raise MgError("--model gestures needs --release ROOT (the videos the scored clips belong to)")
            rep = embed.embed_gestures(list(inputs), release, out, emotion_labels, protocol, overwrite)
    console.print(
        f"[green]wrote[/] {rep.out}: {rep.stream} stream, {rep.videos} videos, {rep.steps} steps of {rep.dim}-d "
        f"({rep.weights})",
        soft_wrap=True,
    )
    if rep.failed:
        for vid, reason in list(rep.failed.items())[:20]:
            err_console.print(f"  {vid}: {reason}", highlight=False, soft_wrap=True)
        err_console.print(f"[bold red]{len(rep.failed)} video(s) failed[/] and were left out")
        raise typer.Exit(1)


# Options shared by the training commands (train-branch, train-fused).
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Run config YAML (see pipelines/).")]
RunNameOpt = Annotated[str | None, typer.Option(help="Run name (default: the config file's name).")]
OutDirOpt = Annotated[Path | None, typer.Option(help="Folder of runs (default: runs).")]
GpusOpt = Annotated[int, typer.Option(help="Train on N GPUs: N processes, DDP over NCCL, batch size per GPU.")]
ProcsOpt = Annotated[int, typer.Option(help="Train in N CPU processes (DDP over gloo).")]
CpuOpt = Annotated[bool, typer.Option(help="Stay on the CPU even when CUDA is available.")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue runs/NAME from its last finished epoch.")]
OverwriteRunOpt = Annotated[bool, typer.Option(help="Replace an existing run of the same name.")]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        "-d",
        help="The training artifact (overrides data.path): heatmaps-*.h5, frames.h5 or poses.h5.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The model (overrides model.name): a name of `mg models`, or agcn-joint, "
        "agcn-bone, mvit-v2-s, token-fusion.",
    ),
]

OverridesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Config overrides KEY=VALUE with dotted keys, e.g. train.epochs=3 "
        "data.path=demo/heatmaps-upper22-joint.h5 model.base_channels=16.",
        show_default=False,
    ),
]


def _train_command(
    config: Path | None,
    overrides: list[str] | None,
    name: str | None,
    out_dir: Path | None,
    gpus: int,
    procs: int,
    cpu: bool,
    resume: bool,
    overwrite: bool,
    kinds: tuple[str, ...],
    command: str,
    more: list[str] | None = None,
    model: str | None = None,
) -> None:
    from mgcli.models import MODELS
    from mgcli.models.aliases import model_overrides
    from mgcli.train.config import load_config
    from mgcli.train.launch import launch

    extra = model_overrides(model) + list(overrides or []) + list(more or [])
    if name is not None:
        extra.append(f"name={name}")
    if out_dir is not None:
        extra.append(f"out_dir={out_dir}")
    cfg = load_config(config, extra, recipe=True)
    spec = MODELS.get(cfg.model["name"])
    if spec is not None and spec.input_kind not in kinds:
        raise MgError(f"model {cfg.model['name']} is not trained by {command} (reads {spec.input_kind})", config)
    try:
        metrics = launch(cfg, gpus=gpus, procs=procs, cpu=cpu, resume=resume, overwrite=overwrite, quiet=state.quiet)
    except MgError as e:  # a problem of the config's values (model options...): name the config file
        if e.path is None and config is not None:
            raise MgError(e.message, config) from None
        raise
    if not metrics:  # a torchrun process other than rank 0
        return
    splits = metrics.get("splits", {})
    for split, s in splits.items():
        if s["n"]:
            console.print(output.metrics_line(s, split))
    _print_fusion_table(splits)
    console.print(f"[green]wrote[/] {cfg.run_dir}/ (model.pt, scores-*.csv, metrics.json, plots)")


def _print_fusion_table(splits: dict) -> None:
    """The late-fusion table of a two-pathway run, when it has one."""
    table = output.fusion_table(splits)
    if table is not None:
        console.print(table)


@app.command(
    "train-branch",
    epilog=(
        "Examples: [bold]mg train-branch --config pipelines/sample_pose_joint.yaml[/]   "
        "[bold]mg train-branch -c pipelines/imigue_rgb.yaml --gpus 4 train.batch_size=8[/]   "
        "[bold]mg train-branch -c pipelines/sample_agcn_joint.yaml --model agcn-bone --name sample_agcn_bone[/]   "
        "[bold]mg train-branch --model agcn-joint --data poses.h5[/] (no config: the model's defaults)   "
        "[bold]torchrun --nnodes 2 --nproc-per-node 8 -m mgcli train-branch -c pipelines/imigue_pose_joint.yaml[/]"
    ),
)
@handles_errors
def train_branch_cmd(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    data: DataOpt = None,
    pretrained: Annotated[
        str | None,
        typer.Option(
            help="Start from these weights (overrides model.pretrained): a torchvision weights name "
            "(imagenet, kinetics400, kinetics400_imagenet22k) or a path to a state dict."
        ),
    ] = None,
    name: RunNameOpt = None,
    out_dir: OutDirOpt = None,
    gpus: GpusOpt = 0,
    procs: ProcsOpt = 1,
    cpu: CpuOpt = False,
    resume: ResumeOpt = False,
    overwrite: OverwriteRunOpt = False,
) -> None:
    """Train one modality: the PoseConv3D pose branch (heatmaps), an RGB branch (frames.h5:
    SlowOnly, Video Swin, MViTv2-S) or a 2s-AGCN skeleton stream (poses.h5).

    Writes runs/NAME/: model.pt (best on val), last.pt (resumable), scores-val.csv and
    scores-test.csv (softmax averaged over test views), metrics.json, curves.png and confusion
    matrices. Every config field can be overridden as KEY=VALUE.
    """
    more = [f"model.pretrained={pretrained}"] if pretrained is not None else []
    if data is not None:
        more.append(f"data.path={data}")
    _train_command(
        config,
        overrides,
        name,
        out_dir,
        gpus,
        procs,
        cpu,
        resume,
        overwrite,
        ("heatmaps", "frames", "poses"),
        "train-branch",
        more,
        model=model,
    )


@app.command(
    "train-fused",
    epilog=(
        "Examples: [bold]mg train-fused -c pipelines/sample_rgbpose.yaml --init-from demo/runs/sample_rgb/model.pt "
        "demo/runs/sample_pose_joint/model.pt[/]   "
        "[bold]mg train-fused -c pipelines/imigue_rgbpose.yaml --init-from runs/rgb/model.pt runs/pose/model.pt "
        "--gpus 4[/]"
    ),
)
@handles_errors
def train_fused_cmd(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    init_from: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            help="RGB and pose branch checkpoints (model.pt of train-branch runs) to start from "
            "(token-fusion: the MViT and the AGCN runs).",
            metavar="RGB.pt POSE.pt",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="emotion models: the first stream's embeddings.h5 (overrides data.path)."),
    ] = None,
    streams: Annotated[
        list[Path] | None,
        typer.Option("--streams", help="emotion models: more embeddings.h5 files, one per stream (data.streams)."),
    ] = None,
    no_cmf: Annotated[bool, typer.Option("--no-cmf", help="No Cross-Modal Fusion Module (plain laterals).")] = False,
    no_prm: Annotated[bool, typer.Option("--no-prm", help="No Prototypical Refinement Module loss.")] = False,
    name: RunNameOpt = None,
    out_dir: OutDirOpt = None,
    gpus: GpusOpt = 0,
    procs: ProcsOpt = 1,
    cpu: CpuOpt = False,
    resume: ResumeOpt = False,
    overwrite: OverwriteRunOpt = False,
) -> None:
    """Train a two-modality model: RGBPoseConv3D (RGB frames + pose heatmaps) with the Cross-Modal
    Fusion and Prototypical Refinement modules of the MiGA 2024 winner, or (--model token-fusion)
    the MiGA 2025 classifier, MViTv2-S and 2s-AGCN tokens in one transformer; or (--model
    interfusion, emotion-face, emotion-context) the MiGA 2025 emotion model on embeddings.h5 streams
    (mg embed), one label per video.

    Reads frames.h5 (data.path) and the poses.h5 they were cut with (data.poses); heatmaps are
    rendered on the fly in the same crop as the frames. --init-from merges two branch checkpoints
    (zero-padding the lateral input channels) and prints what was loaded, padded and left new.
    Writes runs/NAME/ like train-branch, with scores-SPLIT.csv the 1:1 late fusion
    (train.late_fusion) and scores-SPLIT-rgb.csv / -pose.csv each modality; the 1:1, 2:1 and 1:2
    fusions and each modality alone are reported in metrics.json and printed.
    """
    import json

    more = []
    if data is not None:
        more.append(f"data.path={data}")
    if streams:
        more.append(f"data.streams={json.dumps([str(p) for p in streams])}")
    if init_from is not None:
        more.append(f"init_from={json.dumps([str(p) for p in init_from])}")
    if no_cmf:
        more.append("model.cmf=false")
    if no_prm:
        more.append("model.prm=false")
    _train_command(
        config,
        overrides,
        name,
        out_dir,
        gpus,
        procs,
        cpu,
        resume,
        overwrite,
        ("rgbpose", "rgbskeleton", "embeddings"),
        "train-fused",
        more,
        model=model,
    )


@app.command(
    "evaluate",
    epilog="Example: [bold]mg evaluate runs/sample_pose_joint/model.pt --split test -o scores.csv --overwrite[/]",
)
@handles_errors
def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="model.pt of a run.")],
    split: Annotated[str, typer.Option(help="val, test or train (or a split name of the artifact).")] = "test",
    data: Annotated[Path | None, typer.Option(help="Artifact to read (default: the run's data.path).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Scores CSV (default: scores-SPLIT.csv beside the checkpoint).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Clips per batch (default: the run's).")] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers (default: the run's).")] = None,
    cpu: Annotated[bool, typer.Option(help="Stay on the CPU even when CUDA is available.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing scores file.")] = False,
) -> None:
    """Evaluate a saved model alone: multi-view test, softmax averaged over views, scores CSV."""
    from mgcli.train.predict import evaluate_checkpoint

    path, s = evaluate_checkpoint(
        checkpoint, split, data, out, batch_size, workers, overwrite, use_cuda=not cpu, quiet=state.quiet
    )
    console.print(output.metrics_line(s, split))
    _print_fusion_table({split: s})
    console.print(output.wrote([path]))
    if s["n"]:
        from mgcli.io.scores import read_scores
        from mgcli.report import write_report

        _, files = write_report(read_scores(path), path.with_suffix(""), title=path.name)
        console.print(output.wrote(files))


@app.command(
    "ensemble",
    epilog=(
        "Examples: [bold]mg ensemble swin.csv li.csv ours.csv -o ensemble.csv[/]   "
        "[bold]mg ensemble a.csv b.csv --weights 0.4,0.6 -o ens.csv[/]   "
        "[bold]mg ensemble runs/pose_j runs/pose_l runs/rgbpose --search-weights -o ens.csv[/]"
    ),
)
@handles_errors
def ensemble_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Test scores CSVs, or run folders (their scores-test.csv).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The fused scores CSV, or a folder: scores-test.csv and scores-val.csv in it "
            "(itself an input of another mg ensemble).",
        ),
    ],
    weights: Annotated[str | None, typer.Option(help="Comma-separated weights, one per input (normalised).")] = None,
    search_weights: Annotated[
        bool, typer.Option("--search-weights", help="Pick the weights with the best validation top-1.")
    ] = False,
    val: Annotated[
        list[Path] | None,
        typer.Option(
            help="Validation scores, one per input in order, for --search-weights and the val column "
            "(default: run folders' scores-val.csv)."
        ),
    ] = None,
    step: Annotated[float, typer.Option(help="Grid step of --search-weights.")] = 0.1,
    logits: Annotated[bool, typer.Option("--logits", help="The inputs are logits: softmax each first.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Fuse score CSVs (the same clips and classes) by a weighted mean of their probabilities.

    Equal weights by default, --weights to set them, or --search-weights to pick them on the
    validation scores and apply them to the test scores. Prints top-1 / top-5 of every input and
    of the ensemble where labels exist, and writes the fused scores in the same CSV shape.
    """
    from mgcli.ensemble import (
        check_ensemble_output,
        ensemble_input_files,
        ensemble_rows,
        input_name,
        run_ensemble,
        write_ensemble,
    )

    check_ensemble_output(out, overwrite, ensemble_input_files(inputs, val))  # never over an input
    parsed = None
    if weights is not None:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise MgError(f"--weights must be comma-separated numbers, got {weights!r}") from None
    if search_weights:
        bar = progress_bar()
        tasks: list[Any] = []

        def searched(done: int, total: int) -> None:  # the bar appears once the inputs are read and checked
            if not tasks:
                bar.start()
                tasks.append(bar.add_task("searching weights", total=total))
            bar.update(tasks[0], completed=done, total=total)

        try:
            ens, info = run_ensemble(inputs, parsed, logits, val, step, search=True, progress=searched)
        finally:
            if tasks:
                bar.stop()
    else:
        ens, info = run_ensemble(inputs, parsed, logits, val, step)
    files = write_ensemble(ens, out, overwrite=True)
    rows = ensemble_rows(ens, [input_name(i) for i in inputs])
    console.print(output.ensemble_table(rows, show_val=ens.val_inputs is not None))
    if info is not None:
        console.print(f"weights searched on the validation scores (step {step}): val top-1 {info['val_top1']:.4f}")
    console.print(output.wrote(files.scores, f"{len(ens.scores.clip_ids)} clips, {len(ens.scores.classes)} classes"))
    if files.report:
        console.print(output.wrote(files.report))


# The segment options mg detect and mg predict share (defaults: DetectOptions).
_D = DetectOptions()
WindowOpt = Annotated[int, typer.Option(help="Frames per sliding window.")]
StrideOpt = Annotated[int, typer.Option(help="Frames between window starts.")]
ThresholdOpt = Annotated[float, typer.Option(help="A frame is a gesture when its best class scores this.")]
MinLenOpt = Annotated[int, typer.Option(help="Shortest segment kept, in frames.")]
MergeGapOpt = Annotated[int, typer.Option(help="Merge a class's segments at most this many frames apart.")]
NmsOpt = Annotated[float, typer.Option(help="Temporal NMS: drop a segment overlapping a better one more.")]
NumClipsOpt = Annotated[int, typer.Option(help="Test clips per window (0: the model's test view's; fewer is faster).")]
HeatmapsOpt = Annotated[
    Path | None, typer.Option(help="PoseConv3D: the heatmaps file whose build options to use (default: data.path).")
]
CpuOpt = Annotated[bool, typer.Option(help="Stay on the CPU even when CUDA is present.")]


@app.command(
    "detect",
    epilog=(
        "Example: [bold]mg detect runs/sample_agcn_bg/model.pt --data poses.h5 -o detections.csv "
        "--window 32 --stride 8[/]"
    ),
)
@handles_errors
def detect_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A trained skeleton or PoseConv3D model (runs/NAME/model.pt).")],
    data: Annotated[Path, typer.Option(help="poses.h5 of whole videos (skeleton files, or --scope all).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The detections CSV.")] = Path("detections.csv"),
    scores: Annotated[
        Path | None, typer.Option(help="Also write the per-frame scores [T, K] of every video (HDF5).")
    ] = None,
    split: Annotated[str, typer.Option(help="The clip table's split whose videos to scan, or all.")] = "test",
    window: WindowOpt = _D.window,
    stride: StrideOpt = _D.stride,
    threshold: ThresholdOpt = _D.threshold,
    min_len: MinLenOpt = _D.min_len,
    merge_gap: MergeGapOpt = _D.merge_gap,
    nms_iou: NmsOpt = _D.nms_iou,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = _D.batch_size,
    num_clips: NumClipsOpt = _D.num_clips,
    heatmaps: HeatmapsOpt = None,
    cpu: CpuOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Online recognition: slide a trained clip model over whole videos and write the segments it
    finds (video_id,label,start,end,score; frames, inclusive) for mg evaluate-online and mg submit
    --format online2023.

    Each window is viewed as the model's test view views a clip; a frame's scores are the mean of
    its windows'; a frame is active for its best gesture class when that beats the background
    class (models trained on extract-pose --background) and reaches --threshold; runs of a class,
    merged across --merge-gap, at least --min-len long, then class-agnostic temporal NMS.
    """
    from mgcli.online.detect import detect

    opts = DetectOptions(window, stride, threshold, min_len, merge_gap, nms_iou, batch_size, split, num_clips)
    with progress_bar() as bar:
        task = bar.add_task("videos", total=None)
        res = detect(
            checkpoint,
            data,
            out,
            opts,
            scores,
            heatmaps,
            overwrite,
            not cpu,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    fps = res.frames / max(res.seconds, 1e-9)
    console.print(
        output.wrote(
            res.files,
            f"{len(res.detections)} segments in {res.videos} videos; {res.windows} windows over {res.frames} "
            f"frames in {res.seconds:.1f} s, {fps:.0f} frames/s",
        )
    )


@app.command(
    "predict",
    epilog=(
        "Example: [bold]mg predict interview.mp4 --model demo/online/runs/sample_agcn_bg/model.pt "
        "--overlay interview-mg.mp4[/]"
    ),
)
@handles_errors
def predict_cmd(
    video: Annotated[Path, typer.Argument(help="A video in no release (mp4, avi, mov, ...).")],
    model: Annotated[Path, typer.Option(help="A trained skeleton or PoseConv3D model (runs/NAME/model.pt).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: predict-<video name>/).")
    ] = None,
    overlay: Annotated[
        Path | None, typer.Option(help="Also write the video with the skeleton and the current gesture (H.264).")
    ] = None,
    backend: Annotated[str, typer.Option(help="Pose model: mediapipe, mediapipe-holistic or mmpose.")] = "mediapipe",
    pose_config: Annotated[str | None, typer.Option(help="mmpose: model config file or model alias.")] = None,
    pose_checkpoint: Annotated[str | None, typer.Option(help="mmpose: checkpoint file.")] = None,
    det_config: Annotated[str | None, typer.Option(help="mmpose: MMDetection config for person boxes.")] = None,
    det_checkpoint: Annotated[str | None, typer.Option(help="mmpose: MMDetection checkpoint.")] = None,
    window: WindowOpt = _D.window,
    stride: StrideOpt = _D.stride,
    threshold: ThresholdOpt = _D.threshold,
    min_len: MinLenOpt = _D.min_len,
    merge_gap: MergeGapOpt = _D.merge_gap,
    nms_iou: NmsOpt = _D.nms_iou,
    num_clips: NumClipsOpt = _D.num_clips,
    heatmaps: HeatmapsOpt = None,
    cpu: CpuOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Run a trained model on a new video: poses of every frame, sliding-window detection, and
    segments.csv (classes and times in seconds), timeline.png (confidence against time) and, with
    --overlay, the video with the skeleton and the current micro-gesture drawn on it.
    """
    from mgcli.online.predict import predict_video

    opts = DetectOptions(window, stride, threshold, min_len, merge_gap, nms_iou, _D.batch_size, "all", num_clips)
    out = out or Path(f"predict-{video.stem}")
    mm = dict(pose_config=pose_config, pose_checkpoint=pose_checkpoint, det_config=det_config,
              det_checkpoint=det_checkpoint)  # fmt: skip
    with progress_bar() as bar:
        task = bar.add_task("frames", total=None)

        def stage(text: str) -> None:
            bar.update(task, description=text)

        res = predict_video(
            video,
            model,
            out,
            backend,
            mm if backend == "mmpose" else None,
            opts,
            overlay,
            heatmaps,
            overwrite,
            not cpu,
            stage,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(output.segments_table(res.segments, video.name))
    t = res.seconds
    console.print(
        output.wrote(
            res.files,
            f"{len(res.segments)} segments in {res.frames / res.fps:.1f} s of video; poses {t['poses']:.1f} s, "
            f"detection {t['detect']:.1f} s, outputs {t['outputs']:.1f} s",
        )
    )


@app.command(
    "evaluate-online",
    epilog="Example: [bold]mg evaluate-online detections.csv --release demo/sample --timeline 0013[/]",
)
@handles_errors
def evaluate_online_cmd(
    detections: Annotated[Path, typer.Argument(help="A detections CSV: video_id,label,start,end[,score].")],
    release: Annotated[Path, typer.Option(help="The release whose ground-truth segments to score against.")],
    split: Annotated[str, typer.Option(help="The split to score: train, val or test.")] = "test",
    test_labels: Annotated[
        Path | None, typer.Option(help="CSV clip_id,label with the true test classes (default: ROOT/test_labels.csv).")
    ] = None,
    iou: Annotated[float, typer.Option(help="Overlap (intersection over hull) a hit must exceed.")] = 0.3,
    timeline: Annotated[
        list[str] | None, typer.Option(help="Also draw this video's timeline PNG (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Prefix of the outputs (default: the CSV without .csv).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Online recognition F1 (MiGA Track 2) of detected segments in whole videos.

    A detection is a hit when its class is the ground truth's and their overlap (intersection over
    the hull of the two segments) exceeds --iou. Two matchings: strict (one to one, our default)
    and organisers (as the organisers' starter code counts: a detection may be the hit of several
    ground-truth segments). Precision and recall are pooled over all videos of the split. Writes
    PREFIX-online.json and, per --timeline video, PREFIX-timeline-VID.png.
    """
    from mgcli.online.evaluate import evaluate_online

    if split not in ("train", "val", "test"):
        raise MgError(f"--split must be train, val or test, not {split!r}")
    rep = evaluate_online(detections, release, split, test_labels, iou, timeline or [], out, overwrite)
    for table in output.online_tables(rep, split, iou):
        console.print(table)
    if rep.ignored_videos:
        err_console.print(
            f"[yellow]ignored[/] detections on {len(rep.ignored_videos)} video(s) outside the {split} split "
            f"(e.g. {', '.join(rep.ignored_videos[:3])})"
        )
    console.print(output.wrote(rep.files))


@app.command("report", epilog="Example: [bold]mg report runs/sample_rgbpose/scores-val.csv[/]")
@handles_errors
def report_cmd(
    scores: Annotated[Path, typer.Argument(help="A scores CSV with labels (clip_id,label,<class ids>).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Prefix of the outputs (default: the CSV without .csv).")
    ] = None,
    label_map: Annotated[
        Path | None, typer.Option(help="raw,label,name CSV for the class names (default: iMiGUE's).")
    ] = None,
    top: Annotated[int, typer.Option(help="How many confused pairs to list.")] = 10,
    overwrite: Annotated[bool, typer.Option(help="Replace existing report files.")] = False,
) -> None:
    """Top-1, top-5, per-class precision/recall, the most confused pairs, and a confusion matrix
    PNG with class names: writes PREFIX-report.json and PREFIX-confusion.png."""
    from mgcli.dataset.labels import LabelMap
    from mgcli.io.scores import read_scores
    from mgcli.report import write_report

    s = read_scores(scores)
    names = None
    if label_map is not None:
        lm = LabelMap.from_csv(label_map)
        names = [lm.names[c] if 0 <= c < lm.num_classes else f"class {c}" for c in s.classes]
    prefix = out if out is not None else scores.with_suffix("")
    try:
        report, files = write_report(s, prefix, names, title=scores.name, overwrite=overwrite, inputs=[scores])
    except MgError as e:
        raise MgError(e.message, e.path or scores) from None
    console.print(output.metrics_line(report))
    for table in output.report_tables(report, top):
        console.print(table)
    console.print(output.wrote(files))


@app.command(
    "submit",
    epilog=(
        "Examples: [bold]mg submit ensemble.csv --format kaggle2025 --release data/release -o prediction.zip[/]   "
        "[bold]mg submit runs/rgbpose/scores-test.csv --format codalab2023 --release data/poses.h5[/]   "
        "[bold]mg submit --task emotion runs/interfusion/scores-test.csv --release data/release -o prediction.zip[/]"
    ),
)
@handles_errors
def submit_cmd(
    scores: Annotated[
        Path,
        typer.Argument(help="Test scores CSV (a run's scores-test.csv or an ensemble); online: a detections CSV."),
    ],
    release: Annotated[
        Path | None,
        typer.Option(
            help="The release folder, or any artifact (.h5) carrying its clip table (emotion: a release folder)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="kaggle2025 (prediction.csv: Id,Target; emotion: video_id,label), codalab2023 "
            "(Submission.csv: id,pred, no header) or online2023 (Track 2: a detections CSV to one "
            "{vid}_prediction.csv per test video).",
        ),
    ] = "kaggle2025",
    task: Annotated[
        str,
        typer.Option(
            help="gesture (one row per test clip), emotion (Track 3: one win/lose row per test video) or "
            "online (Track 2: detected segments; implied by --format online2023)."
        ),
    ] = "gesture",
    columns: Annotated[
        str | None, typer.Option(help="Header replacing the format's, e.g. video_id,label; none: no header.")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="emotion: the test videos of a named split (imigue2021) instead of the release's."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The zip (default: prediction.zip / Submission.zip).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing zip.")] = False,
) -> None:
    """Write a challenge submission: the arg-max class of every test clip, in the challenge's CSV,
    zipped. Refuses, listing every problem, unless each test clip of the release is there exactly
    once with a well-formed id and a class in range. --task emotion: win (1) / lose (0) per test
    video from per-video scores (columns 0 = lose, 1 = win); the official Track 3 column names are
    not public, so video_id,label is our reading (--columns changes it). --format online2023
    (Track 2 as on Codalab in 2023): a detections CSV (video_id,label,start,end[,score]) to one
    {vid}_prediction.csv per test video, rows GestureID,StartFrame,EndFrame with raw class ids."""
    from mgcli.submit import (
        EMOTION_FORMATS,
        FORMATS,
        TASKS,
        write_emotion_submission,
        write_online_submission,
        write_submission,
    )

    if task not in TASKS:
        raise MgError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "online" or fmt == "online2023":
        if release is None:
            raise MgError("--release is required: the release folder whose test videos to write")
        path, videos, n = write_online_submission(
            scores,
            release,
            out or Path("online-prediction.zip"),
            "online2023" if fmt == "kaggle2025" else fmt,
            overwrite,
        )
        console.print(output.wrote([path], f"online2023: {videos} test videos, {n} segments"))
        return
    formats = FORMATS if task == "gesture" else EMOTION_FORMATS
    if out is None:
        out = Path(formats[fmt].member).with_suffix(".zip") if fmt in formats else Path("prediction.zip")
    if task == "emotion":
        path, table = write_emotion_submission(scores, out, release, fmt, columns, protocol, overwrite)
        win = int(table["label"].sum())
        console.print(
            output.wrote([path], f"emotion {fmt}: {len(table)} test videos, {win} win, {len(table) - win} lose")
        )
        return
    if release is None:
        raise MgError("--release is required: the release folder or an artifact (.h5) carrying its clip table")
    if protocol is not None:
        raise MgError("--protocol applies to --task emotion only")
    path, n = write_submission(scores, release, fmt, out, overwrite, columns=columns)
    console.print(output.wrote([path], f"{fmt}: {n} test clips"))


@app.command("models", epilog="Example: [bold]mg models[/]")
@handles_errors
def models_cmd(
    num_classes: Annotated[int, typer.Option(help="Classes for the parameter count.")] = 32,
) -> None:
    """The models a config can name, with parameter counts and input shapes at the paper's sizes."""
    from mgcli.models import model_table

    console.print(output.models_table(model_table(num_classes)))


def main() -> None:
    app(prog_name="mg")


if __name__ == "__main__":
    sys.exit(main())
