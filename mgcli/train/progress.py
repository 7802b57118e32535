"""What the training loop tells the user: a rich progress bar per epoch and one line per epoch."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    """Silent reporter (non-main processes, tests); the base of :class:`RichReporter`."""

    def message(self, text: str) -> None: ...

    def epoch_start(self, epoch: int, epochs: int, iters: int) -> None: ...

    def step(self, loss: float, lr: float) -> None: ...

    def epoch_end(self, row: dict[str, Any]) -> None: ...

    def eval_start(self, split: str, clips: int) -> None: ...

    def eval_step(self, clips: int) -> None: ...

    def eval_end(self) -> None: ...


class RichReporter(Reporter):
    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _start(self, description: str, total: int) -> None:
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            disable=self.quiet,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, status="")

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def epoch_start(self, epoch: int, epochs: int, iters: int) -> None:
        self._start(f"epoch {epoch + 1}/{epochs}", iters)

    def step(self, loss: float, lr: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, status=f"loss {loss:.4f}  lr {lr:.2e}")

    def epoch_end(self, row: dict[str, Any]) -> None:
        self._stop()
        parts = [f"epoch {row['epoch']:>3}", f"loss {row['train_loss']:.4f}", f"lr {row['lr']:.2e}"]
        parts.append(f"{row['seconds']:.1f} s (data wait {100 * row['data_wait']:.0f} %)")
        if row.get("val_top1") is not None:
            parts.append(f"val top-1 {row['val_top1']:.4f} ({row.get('val_seconds', 0.0):.1f} s)")
        self.message("  ".join(parts))

    def eval_start(self, split: str, clips: int) -> None:
        self._start(f"evaluating {split}", clips)

    def eval_step(self, clips: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=clips)

    def eval_end(self) -> None:
        self._stop()
