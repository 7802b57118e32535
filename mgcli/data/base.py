"""What every dataset of a run shares: the clip table of one split, the per-sample RNG, the views.

:class:`ClipDataset` reads the split's rows of the artifact's ``/clips`` table once (clip ids,
labels, class names), draws every training sample from ``np.random.default_rng([seed, epoch, i])``
(so a sample does not depend on the worker that makes it, and ``--resume`` repeats it), and leaves
two methods to a subclass: :meth:`train_sample` (one random view) and :meth:`test_sample` (the
fixed views, ``view.num_views`` of them). Samples are ``({input name: tensor}, label)``: one tensor
per model input, with a leading view axis at test time; labels are -1 when unknown.

:func:`clip_keypoints` is the one place that cuts a clip's frames out of a video's skeleton and
converts them to a layout.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mgcli.errors import MgError
from mgcli.io.h5 import H5Artifact, ProcessLocalArtifact
from mgcli.io.poses import VideoPoses
from mgcli.pose.layouts import Layout, convert


class ClipDataset(ProcessLocalArtifact, torch.utils.data.Dataset, abc.ABC):
    """The samples of one split of an artifact (``artifact``: the reader class), for a view config.

    Attributes set here: ``clip_ids``, ``labels`` (int64, -1 unknown), ``class_names``, ``table``
    (the split's clip rows), ``train``, ``view``, ``seed``. Subclasses set ``num_channels`` and
    :attr:`data_options` (what the model must be built for)."""

    artifact: ClassVar[type[H5Artifact]]

    def __init__(self, path: str | Path, split: str, train: bool, view: Any, seed: int = 0) -> None:
        super().__init__(path)
        self.train, self.view, self.seed = train, view, seed
        with self.artifact(self.path) as f:
            self.table = f.clips[f.clips["split"] == split].reset_index(drop=True)
            self.class_names: list[str] = list(f.class_names)
            self.read_meta(f)
        if self.table.empty:
            raise MgError(f"no {split} clips", self.path)
        self.clip_ids: list[str] = self.table["clip_id"].astype(str).tolist()
        self.labels = self.table["label"].to_numpy(np.int64)
        # Inputs whose last step is left to the run's device (data.render_on: cuda): {input name:
        # what finishes a batch of them there}. Such an input's samples carry a person axis first.
        self.deferred: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def read_meta(self, f: Any) -> None:
        """Read what the subclass needs from the open artifact (called once, in ``__init__``)."""

    @property
    def num_views(self) -> int:
        """Test views per clip."""
        return int(self.view.num_views)

    @property
    @abc.abstractmethod
    def data_options(self) -> dict[str, Any]:
        """The model options this data fixes (``in_channels``, a skeleton's ``layout``, nested for
        two-modality models), checked against the run's ``model`` section."""

    def defer_rendering(self) -> None:
        """Leave the training samples' heatmaps to the run's device (``data.render_on: cuda``):
        datasets that render heatmaps fill :attr:`deferred`; the rest refuse."""
        raise MgError(
            "data.render_on: cuda renders heatmaps in the training step, and this data has none to render "
            "(PoseConv3D and RGBPoseConv3D inputs have)",
            self.path,
        )

    def collate(self, samples: list[tuple[dict[str, torch.Tensor], int]]) -> Any:
        """Samples -> a batch (torch's default collation); deferred inputs are first padded with
        empty persons to the batch's most."""
        if self.deferred:
            most = {k: max(s[k].shape[0] for s, _ in samples) for k in self.deferred}
            samples = [({k: pad_persons(v, most[k]) if k in most else v for k, v in s.items()}, y) for s, y in samples]
        return torch.utils.data.default_collate(samples)

    def device_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A training batch on the run's device, finished there (the deferred inputs rendered)."""
        for key, finish in self.deferred.items():
            batch[key] = finish(batch[key])
        return batch

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._epoch, i])

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        sample = self.train_sample(i, self.rng(i)) if self.train else self.test_sample(i)
        return sample, int(self.labels[i])

    @abc.abstractmethod
    def train_sample(self, i: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One random training view of clip ``i``, drawn from ``rng`` only."""

    @abc.abstractmethod
    def test_sample(self, i: int) -> dict[str, torch.Tensor]:
        """The fixed test views of clip ``i`` (a leading view axis on every tensor)."""


def pad_persons(x: torch.Tensor, persons: int) -> torch.Tensor:
    """``x`` with zero rows appended to its first (person) axis up to ``persons``."""
    missing = persons - x.shape[0]
    return torch.cat([x, x.new_zeros((missing, *x.shape[1:]))]) if missing > 0 else x


def clip_keypoints(
    video: VideoPoses,
    rows: Sequence[int] | np.ndarray | slice,
    src_layout: str,
    layout: Layout,
    clip_id: str,
    where: str | Path,
) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints ``[M, T, V, 2]`` (float32, NaN as 0) and scores ``[M, T, V]`` of a clip's
    frames ``rows`` (a slice ``start:end+1`` or the frame numbers) of ``video``, in ``layout``;
    one clear error when the clip runs past the end of the skeleton."""
    n = video.keypoint.shape[1]
    if isinstance(rows, slice):
        want = len(range(*rows.indices(1 << 62)))
        ok = want > 0 and rows.stop <= n
    else:
        rows = np.asarray(rows, np.int64)
        ok = rows.size > 0 and rows.max() < n
    if not ok:
        raise MgError(f"clip {clip_id} runs past the end of video {video.video_id}'s skeleton ({n} frames)", where)
    kp, sc = video.keypoint[:, rows], video.keypoint_score[:, rows]
    if layout.name != src_layout:
        kp, sc = convert(kp, sc, src_layout, layout)
    return np.nan_to_num(np.asarray(kp, np.float32)), np.asarray(sc, np.float32)
