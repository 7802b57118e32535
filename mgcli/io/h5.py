"""HDF5 helpers shared by the artifacts: schema stamps, checks on open, tables as column groups."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np
import pandas as pd

from mgcli import __version__
from mgcli.errors import MgError, SchemaError
from mgcli.io.atomic import AtomicOutput

SCHEMAS = {
    "poses": "mgcli.poses/1",
    "frames": "mgcli.frames/1",
    "heatmaps": "mgcli.heatmaps/1",
    "embeddings": "mgcli.embeddings/1",
    "faces": "mgcli.faces/1",
}
STR = h5py.string_dtype("utf-8")


def stamp(f: h5py.File, artifact: str, **attrs: Any) -> None:
    """Write the schema, the writing mgcli version, the time, and extra attributes."""
    f.attrs["schema"] = SCHEMAS[artifact]
    f.attrs["mgcli_version"] = __version__
    f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for key, value in attrs.items():
        f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value


def schema_of(path: str | Path) -> str | None:
    """The ``schema`` attribute of an HDF5 file, None when the file is not HDF5 or has none."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("schema")
    except OSError:
        return None
    return None if value is None else str(value)


def open_artifact(path: str | Path, kind: str) -> h5py.File:
    """Open an artifact read-only after checking it is HDF5 with the expected schema."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError("file not found", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SchemaError("not an HDF5 file (truncated or another format?)", path) from None
    expected = SCHEMAS[kind]
    found = f.attrs.get("schema")
    if found is None:
        f.close()
        raise SchemaError(f"no schema attribute: not an mgcli artifact (expected {expected})", path)
    found = str(found)
    name, _, version = found.partition("/")
    exp_name, _, exp_version = expected.partition("/")
    if name != exp_name:
        f.close()
        raise SchemaError(f"is a {found} artifact, expected {expected}", path)
    if version != exp_version:
        f.close()
        newer = version.isdigit() and int(version) > int(exp_version)
        hint = "upgrade mgcli to read it" if newer else "rebuild it with this mgcli"
        raise SchemaError(f"schema {found} is not supported by mgcli {__version__} ({hint})", path)
    return f


REQUIRED_CLIP_COLUMNS = ("clip_id", "video_id", "start", "end", "label", "split")


def check_clip_table(clips: pd.DataFrame, where: str | Path | None = None) -> None:
    missing = [c for c in REQUIRED_CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise SchemaError(f"clip table lacks columns {missing}", where)
    if clips["clip_id"].duplicated().any():
        dup = clips.loc[clips["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise SchemaError(f"clip table has duplicated clip id {dup}", where)
    bad = clips["end"] < clips["start"]
    if bad.any():
        raise SchemaError(f"clip {clips.loc[bad, 'clip_id'].iloc[0]} ends before it starts", where)


def json_attr(f: h5py.File | h5py.Group, key: str, default: Any = None) -> Any:
    value = f.attrs.get(key)
    return default if value is None else json.loads(value)


def write_table(group: h5py.Group, df: pd.DataFrame) -> None:
    """A DataFrame as one dataset per column (strings as UTF-8, numbers as they are)."""
    group.attrs["columns"] = json.dumps(list(df.columns))
    for col in df.columns:
        values = df[col].to_numpy()
        if values.dtype.kind in "OUS":
            group.create_dataset(col, data=np.asarray(values, dtype=object).astype(str).astype(object), dtype=STR)
        else:
            group.create_dataset(col, data=values)


def read_table(group: h5py.Group) -> pd.DataFrame:
    columns = json.loads(group.attrs["columns"])
    data = {}
    for col in columns:
        ds = group[col]
        data[col] = ds.asstr()[()] if ds.dtype.kind == "O" else ds[()]
    return pd.DataFrame(data, columns=columns)


# HDF5 does not survive a full disk (it fails in flushes and object deallocation and can crash the
# process), so writers stop first: before every item, ROOM_RESERVE bytes plus the item's raw size
# must be free in the output's folder.
ROOM_RESERVE = 8 << 20


def ensure_room(folder: str | Path, nbytes: int, output: str | Path) -> None:
    """One line naming ``output`` when fewer than ``nbytes`` + :data:`ROOM_RESERVE` bytes are free
    in ``folder``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < nbytes + ROOM_RESERVE:
        raise MgError(
            f"no space left on device: {free / 2**20:.1f} MiB free, about "
            f"{(nbytes + ROOM_RESERVE) / 2**20:.1f} MiB needed for the next item",
            output,
        )


class H5Writer:
    """Base of the artifact writers: an HDF5 file under a temporary name, renamed on :meth:`close`.

    Used as a context manager, an exception inside the block discards the temporary file, so the
    final name only ever holds a complete artifact.
    """

    kind: str = ""

    def __init__(self, path: str | Path, overwrite: bool = False, **attrs: Any) -> None:
        self.path = Path(path)
        self._out = AtomicOutput(self.path, overwrite)
        self.f = h5py.File(self._out.tmp, "w")
        stamp(self.f, self.kind, **attrs)

    def ensure_room(self, nbytes: int) -> None:
        """Raise one line (the temporary file is then removed) when the disk is about to fill."""
        ensure_room(self._out.tmp.parent, nbytes, self.path)

    def set_clips(self, clips: pd.DataFrame) -> None:
        """The clip table every artifact carries (clip_id, video_id, start, end, label, split, ...)."""
        check_clip_table(clips, self.path)
        write_table(self.f.create_group("clips"), clips)

    def finish(self) -> None:
        """Checks before the file is published (extend in subclasses)."""
        if "clips" not in self.f:
            raise SchemaError(f"{self.kind} artifact written without a clip table", self.path)

    def close(self) -> None:
        try:
            self.finish()
        except BaseException:
            self.abort()
            raise
        self.f.close()
        self._out.commit()

    def abort(self) -> None:
        try:
            self.f.close()
        except Exception:  # noqa: BLE001 - a failing close (full disk) must not keep the temporary
            pass
        finally:
            self._out.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        if e is None:
            self.close()
        else:
            self.abort()


class H5Artifact:
    """Base of the artifact readers: opened read-only with the schema checked."""

    kind: str = ""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.f = open_artifact(self.path, self.kind)
        try:
            self.load()
        except KeyError as e:
            self.f.close()
            raise SchemaError(f"missing field {e}", self.path) from None
        except BaseException:
            self.f.close()
            raise

    def load(self) -> None:
        """Read and check the file-level metadata (extend in subclasses)."""
        self.class_names: list[str] = json_attr(self.f, "class_names", [])
        self.clips = read_table(self.f["clips"])
        check_clip_table(self.clips, self.path)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessLocalArtifact:
    """Base of the datasets that read an artifact: the file is opened lazily, once per process, so
    DataLoader workers (forked or spawned) never share or inherit an open HDF5 handle; ``set_epoch``
    tells train-time augmentation which epoch it draws for. Subclasses set ``clip_ids``."""

    artifact: type[H5Artifact]
    clip_ids: list[str]

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: H5Artifact | None = None
        self._pid = -1
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, -1  # never ship an open handle to another process
        return state

    def open(self) -> Any:
        """This process's handle on the artifact (reopened in a worker even if the parent had one)."""
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = self.artifact(self.path), os.getpid()
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, -1
