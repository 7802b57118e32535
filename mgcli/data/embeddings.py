"""Emotion samples: time windows of a video's embedding streams (``embeddings.h5``, ``mg embed``).

One label per video, few videos (iMiGUE: 102 for training), long videos: a training sample is a
random window of ``view.window`` seconds of one video, and each epoch draws
``view.windows_per_video`` of them per video (many samples from few videos). A test sample is the
whole video as consecutive windows (stride ``view.test_stride`` seconds, the window by default,
the last window ending at the video's end), so the scores average over windows cover every step.
Their number differs between videos: the dataset says so (``variable_views``) and evaluation takes
one video per batch.

Streams: ``data.path`` and every file of ``data.streams`` is one stream's ``embeddings.h5``
(``face``, ``context`` or ``gesture``; two files of one stream are refused). Each sample holds, per
stream ``s``: ``s`` float32 ``[L_s, D_s]``, ``s_mask`` bool ``[L_s]`` (False: padding, no face,
or dropped), ``s_time`` float32 ``[L_s]`` (seconds since the window's start), with ``L_s`` the most
steps any window of the split holds. A video missing from a stream's file has that stream absent
(mask all False). The files must agree on the videos' splits and labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgcli.data.base import ClipDataset
from mgcli.errors import MgError
from mgcli.io.embeddings import EmbeddingsFile


@dataclass(frozen=True)
class EmbeddingViewConfig:
    """Windows of the embedding streams (``data.view`` of the emotion models)."""

    window: float = 32.0  # seconds per sample
    windows_per_video: int = 16  # training samples per video and epoch
    test_stride: float = 0.0  # seconds between test windows (0: the window, no overlap)
    drop_steps: float = 0.1  # training: fraction of present steps masked out at random
    drop_stream: float = 0.0  # training: chance that one stream of a multi-stream sample is masked out

    @property
    def num_views(self) -> int:  # varies by video: see EmbeddingWindows.variable_views
        return 1

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise MgError(f"data.view.window must be positive (seconds), got {self.window}")
        if not (0.0 <= self.drop_steps < 1.0 and 0.0 <= self.drop_stream < 1.0):
            raise MgError("data.view.drop_steps and drop_stream must be in [0, 1)")


class EmbeddingWindows(ClipDataset):
    """Window samples of one split of one or more embeddings files (one per stream)."""

    artifact = EmbeddingsFile
    variable_views = True

    def __init__(
        self,
        path: str | Path,
        split: str,
        train: bool,
        view: EmbeddingViewConfig = EmbeddingViewConfig(),
        seed: int = 0,
        streams: list[str] | tuple[str, ...] = (),
        **_: Any,
    ) -> None:
        super().__init__(path, split, train, view, seed)
        self.paths: dict[str, Path] = {}
        self.dims: dict[str, int] = {}
        self.index: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}  # stream -> vid -> (times, valid)
        self.duration: dict[str, float] = {}
        for p in [self.path, *[Path(s) for s in streams]]:
            with EmbeddingsFile(p) as f:
                if f.stream in self.paths:
                    raise MgError(f"two files of the {f.stream} stream: {self.paths[f.stream]} and {p}", p)
                self._check_agrees(f, p)
                self.paths[f.stream], self.dims[f.stream] = p, f.dim
                have = set(f.video_ids)
                self.index[f.stream] = {
                    vid: (f.frames(vid) / f.fps[vid], f.valid(vid)) for vid in self.clip_ids if vid in have
                }
                for vid in self.clip_ids:
                    if vid in have:
                        self.duration[vid] = max(self.duration.get(vid, 0.0), f.num_frames[vid] / f.fps[vid])
        self.streams = tuple(self.paths)
        missing = [v for v in self.clip_ids if v not in self.duration]
        if missing:
            raise MgError(f"videos without any embeddings: {', '.join(missing[:5])}", self.path)
        self.lengths = {s: self._max_steps(s) for s in self.streams}
        self._files: dict[str, EmbeddingsFile] = {}
        self._files_pid = -1

    def _check_agrees(self, f: EmbeddingsFile, p: Path) -> None:
        rows = f.clips.set_index("clip_id")
        for vid, label in zip(self.clip_ids, self.labels, strict=True):
            if vid in rows.index and int(rows.at[vid, "label"]) != int(label):
                raise MgError(f"video {vid} has label {rows.at[vid, 'label']} here but {label} in {self.path}", p)

    def _max_steps(self, stream: str) -> int:
        most = 1
        for times, _ in self.index[stream].values():
            if len(times):
                ends = np.searchsorted(times, times + self.view.window, side="left")
                most = max(most, int((ends - np.arange(len(times))).max()))
        return most

    def __len__(self) -> int:
        return len(self.clip_ids) * (self.view.windows_per_video if self.train else 1)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        v = i % len(self.clip_ids)
        sample = self.train_sample(v, self.rng(i)) if self.train else self.test_sample(v)
        return sample, int(self.labels[v])

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_files"], state["_files_pid"] = {}, -1
        return state

    def file(self, stream: str) -> EmbeddingsFile:
        if self._files_pid != os.getpid():
            self._files, self._files_pid = {}, os.getpid()
        if stream not in self._files:
            self._files[stream] = EmbeddingsFile(self.paths[stream])
        return self._files[stream]

    @property
    def data_options(self) -> dict[str, Any]:
        return {f"{s}_dim": d for s, d in self.dims.items()}

    def window_starts(self, vid: str) -> np.ndarray:
        """Start times (s) of the test windows of ``vid``: consecutive, the last ending at the end."""
        w = self.view.window
        last = max(self.duration[vid] - w, 0.0)
        stride = self.view.test_stride or w
        starts = np.arange(0.0, last + 1e-9, stride)
        if starts[-1] < last - 1e-9:
            starts = np.append(starts, last)
        return starts

    def _window(self, stream: str, vid: str, start: float, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        n, dim = self.lengths[stream], self.dims[stream]
        x = np.zeros((n, dim), np.float32)
        mask = np.zeros(n, bool)
        t = np.zeros(n, np.float32)
        if vid in self.index[stream]:
            times, valid = self.index[stream][vid]
            lo, hi = np.searchsorted(times, [start, start + self.view.window], side="left")
            rows = np.arange(lo, min(hi, lo + n))
            if rows.size:
                k = rows.size
                x[:k] = self.file(stream).vectors(vid, rows)
                mask[:k] = valid[rows]
                t[:k] = times[rows] - start
                if rng is not None and self.view.drop_steps > 0:
                    mask[:k] &= rng.random(k) >= self.view.drop_steps
        return {stream: x, f"{stream}_mask": mask, f"{stream}_time": t}

    def _sample(self, vid: str, start: float, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for s in self.streams:
            out.update(self._window(s, vid, start, rng))
        if rng is not None and len(self.streams) > 1 and rng.random() < self.view.drop_stream:
            present = [s for s in self.streams if out[f"{s}_mask"].any()]
            if len(present) > 1:
                out[f"{present[rng.integers(len(present))]}_mask"][:] = False
        return out

    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        vid = self.clip_ids[i]
        start = rng.uniform(0.0, max(self.duration[vid] - self.view.window, 0.0))
        return {k: torch.from_numpy(a) for k, a in self._sample(vid, start, rng).items()}

    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        vid = self.clip_ids[i]
        views = [self._sample(vid, float(s), None) for s in self.window_starts(vid)]
        return {k: torch.from_numpy(np.stack([v[k] for v in views])) for k in views[0]}
