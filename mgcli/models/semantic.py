"""The MiGA 2023 winner's semantic embedding loss: class-name word vectors as a second target.

Li et al. (MiGA 2023, "Joint skeletal and semantic embedding loss") add to PoseConv3D's
cross-entropy a loss that ties the skeletal clip embedding to a semantic (GloVe) embedding of its
class name. The shared method notes give no formula, so this module implements the usual form of
such a loss, and says so: the pooled clip feature ``f`` is projected to the word-vector width,
``z = W f``, and compared by cosine similarity with every class vector ``e_c``; the similarities
divided by a temperature ``tau`` are logits for a cross-entropy with the true class::

    L = CE(logits, y) + weight * CE([cos(z, e_c) / tau]_c, y)

The class vectors are fixed (read from a file the user supplies) and the projection is trained;
both are training-only: evaluation uses the classifier's logits, and ``model.pt`` is saved without
them.

Class-vector files (:func:`read_class_vectors`):

- ``.npy``: a ``[num_classes, D]`` array in the model's class order;
- text, one ``token v1 ... vD`` per line (the GloVe format, e.g. ``glove.6B.300d.txt`` itself): a
  class takes the line whose token is its name with ``_`` for spaces (``touch_face``), else the
  mean of the vectors of its name's words (``touch`` and ``face``), lower-cased.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mgcli.errors import DataError

__all__ = ["SemanticEmbedding", "read_class_vectors"]


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-/]+", name.lower()) if w]


def read_class_vectors(path: str | Path, class_names: list[str]) -> np.ndarray:
    """``[len(class_names), D]`` float32 class vectors from ``path`` (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such class-vector file", path)
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"not a .npy array ({e})", path) from None
        if arr.ndim != 2 or arr.shape[0] != len(class_names):
            raise DataError(f"must be a [{len(class_names)}, D] array (one row per class), got {list(arr.shape)}", path)
        vectors = arr.astype(np.float32)
    else:
        keys = {"_".join(_words(n)) for n in class_names}
        needed = keys | {w for n in class_names for w in _words(n)}
        table: dict[str, np.ndarray] = {}
        dim = None
        with path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                token, _, rest = line.rstrip("\n").partition(" ")
                token = token.lower()
                if token not in needed or token in table:
                    continue
                try:
                    v = np.array(rest.split(), np.float32)
                except ValueError:
                    raise DataError(f"line {lineno} is not 'token v1 ... vD'", path) from None
                if dim is None:
                    dim = v.size
                if v.size != dim or dim == 0:
                    raise DataError(f"line {lineno} has {v.size} values, earlier lines {dim}", path)
                table[token] = v
        rows, missing = [], []
        for n in class_names:
            key = "_".join(_words(n))
            if key in table:
                rows.append(table[key])
                continue
            words = _words(n)
            absent = [w for w in words if w not in table]
            if absent or not words:
                missing.append(f"{n!r} ({', '.join(absent) or 'no words'})")
                continue
            rows.append(np.mean([table[w] for w in words], axis=0))
        if missing:
            shown = "; ".join(missing[:5]) + ("; ..." if len(missing) > 5 else "")
            raise DataError(f"no vector for {len(missing)} class(es): {shown}", path)
        vectors = np.stack(rows).astype(np.float32)
    if not np.isfinite(vectors).all():
        raise DataError("the class vectors hold NaN or infinite values", path)
    if (np.linalg.norm(vectors, axis=1) == 0).any():
        raise DataError("a class vector is all zeros", path)
    return vectors


class SemanticEmbedding(nn.Module):
    """Projects a pooled clip feature to the class-vector space and scores it against every class.

    Args:
        in_channels: width of the pooled feature.
        vectors: ``[num_classes, D]`` class vectors (stored L2-normalised, not trained).
        tau: temperature of the cosine-similarity logits.
        weight: weight of this loss next to the cross-entropy.
    """

    def __init__(
        self, in_channels: int, vectors: torch.Tensor | np.ndarray, tau: float = 0.1, weight: float = 1.0
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"the semantic loss temperature must be positive, got {tau}")
        v = torch.as_tensor(vectors, dtype=torch.float32)
        self.register_buffer("vectors", F.normalize(v, dim=1))
        self.proj = nn.Linear(in_channels, v.shape[1])
        self.tau, self.weight = float(tau), float(weight)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels]`` -> cosine-similarity logits ``[N, num_classes]`` (divided by tau)."""
        z = F.normalize(self.proj(pooled), dim=1)
        return z @ self.vectors.t() / self.tau

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.weight * F.cross_entropy(logits.float(), labels)
