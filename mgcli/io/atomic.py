"""Atomic outputs: write to a temporary name in the same folder, rename into place on success.

A crash (or ``kill -9``) at any moment leaves either the previous file or the complete new one
under the final name, never a half-written one; the temporary is removed on a Python-level
failure and is recognisable (``.NAME.tmp-*``) if the process was killed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from mgcli.errors import MgError, OutputExistsError


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file or folder (resolved; hard links and symlinks too)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_inputs(path: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is also one of the command's inputs (even with --overwrite)."""
    for i in inputs:
        if i is not None and same_file(path, i):
            raise MgError("is both an input and an output of this command: choose another output", path)


def check_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Refuse an output that is one of ``inputs``, or exists unless ``overwrite``; create its
    parent folder."""
    path = Path(path)
    refuse_inputs(path, inputs)
    if path.exists() and not overwrite:
        raise OutputExistsError("already exists (pass --overwrite to replace it)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def remove_stale_temps(path: Path) -> None:
    """Remove the temporaries of ``path`` left by processes that no longer run (``kill -9``)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name[len(f".{path.name}.tmp-") :].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicOutput:
    """A temporary path (``.tmp``) for ``path`` (a file or a folder), published by :meth:`commit`.

    Use it as a context manager (commit on success, discard on error) or call
    :meth:`commit` / :meth:`discard` yourself when the writing spans several calls.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path | None] = ()) -> None:
        self.path = check_output(path, overwrite, inputs)
        if self.path.parent.is_dir():
            remove_stale_temps(self.path)
        self.tmp = temp_name(self.path)

    def commit(self) -> None:
        final, tmp = self.path, self.tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        _fsync(tmp)
        if final.is_dir() and not final.is_symlink():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = temp_name(final)
            os.replace(final, old)
            os.replace(tmp, final)
            _remove(old)
        else:
            os.replace(tmp, final)

    def discard(self) -> None:
        _remove(self.tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        if e is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


def atomic_output(path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path | None] = ()) -> AtomicOutput:
    """``with atomic_output(path) as tmp: write(tmp)`` publishes ``tmp`` as ``path`` on success."""
    return AtomicOutput(path, overwrite, inputs)
