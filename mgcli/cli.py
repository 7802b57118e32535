"""The ``mg`` command line: one thin command per stage over the library functions."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mgcli import __version__
from mgcli.errors import MgError

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

    return wrapper  # type: ignore[return-value]


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
    state.debug = state.debug or debug
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


def _parse_size(value: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW, e.g. 180x320, got {value!r}") from None
    return h, w


@app.command(
    "sample-data",
    epilog="Example: [bold]mg sample-data demo/sample --videos 16 --seed 0[/]",
)
@handles_errors
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to create (the release root).")],
    videos: Annotated[int, typer.Option(help="Number of interview videos (25 % test, 12.5 % val).")] = 16,
    gestures: Annotated[int, typer.Option(help="Gestures (clips) per video.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same dataset.")] = 0,
    size: Annotated[str, typer.Option(help="Frame size HxW.")] = "180x320",
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 25.0,
    workers: Annotated[int, typer.Option(help="Processes rendering videos in parallel.")] = min(2, os.cpu_count() or 1),
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Generate a small synthetic iMiGUE in [bold]exactly[/] the MiGA release layout.

    Long mp4 interviews of a rendered seated person doing micro-gestures, {vid}_label.csv files,
    OpenPose skeletons in both released formats, train/validate/test folders, dummy test labels
    and the true ones in test_labels.csv.
    """
    from mgcli.dataset.sample import SampleConfig, generate_sample

    h, w = _parse_size(size)
    cfg = SampleConfig(videos=videos, gestures=gestures, height=h, width=w, fps=fps, seed=seed)
    with progress_bar() as bar:
        task = bar.add_task("rendering videos", total=videos)
        summary = generate_sample(
            out, cfg, overwrite=overwrite, workers=max(1, workers), progress=lambda _: bar.advance(task)
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


@app.command(epilog="Examples: [bold]mg inspect demo/sample[/]   [bold]mg inspect poses.h5[/]")
@handles_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="A release root, an .h5 artifact, a scores/label CSV or a model.pt.")],
    label_map: Annotated[
        Path | None, typer.Option(help="CSV raw,label[,name] replacing the default class table.")
    ] = None,
) -> None:
    """Summarise a release root or any artifact.

    Release: clips per split and class, frame counts, missing files. Artifacts: schema, shapes,
    clips per split; a scores CSV also gets its top-1 / top-5.
    """
    from mgcli.dataset.labels import DEFAULT_LABEL_MAP, LabelMap
    from mgcli.inspect import describe

    lm = LabelMap.from_csv(label_map) if label_map else DEFAULT_LABEL_MAP
    console.print(describe(path, lm))


def main() -> None:
    app(prog_name="mg")


if __name__ == "__main__":
    sys.exit(main())
