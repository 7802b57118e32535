"""A recogniser: optional on-device input normalisation, a 3D backbone and a classification head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mgcli.models.base import MgModel
from mgcli.models.heads import I3DHead

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Classifier", "InputNorm"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 0..255 scale, RGB order
IMAGENET_STD = (58.395, 57.12, 57.375)


class InputNorm(nn.Module):
    """Float conversion and per-channel ``(x - mean) / std`` of ``[N, C, T, H, W]`` clips, on the
    device (0..255 scale; no normalisation when both are None). The statistics are not saved."""

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__()
        if mean is None and std is None:
            self.register_buffer("mean", None, persistent=False)
            self.register_buffer("std", None, persistent=False)
            return
        n = len(mean if mean is not None else std)
        m = torch.tensor(mean if mean is not None else [0.0] * n, dtype=torch.float32)
        sd = torch.tensor(std if std is not None else [1.0] * n, dtype=torch.float32)
        if m.shape != sd.shape:
            raise ValueError(f"the mean has {m.numel()} channels but the std has {sd.numel()}")
        if (sd <= 0).any():
            raise ValueError("the std must be positive")
        self.register_buffer("mean", m.view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("std", sd.view(1, -1, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            x = x.float()
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


class Classifier(MgModel):
    """Backbone + head, with per-channel input normalisation done inside ``forward``.

    When ``input_mean`` is given, inputs (uint8 or float, 0..255 scale) are converted to float and
    normalised as ``(x - mean) / std`` per channel, so datasets can ship uint8 clips and the work
    happens on the device. Without it, non-float inputs are only converted to float.

    Args:
        backbone: module mapping ``[N, C, T, H, W]`` to a feature map ``[N, C', T', H', W']``.
        head: head mapping that feature map to logits.
        input_mean: per-channel mean (0..255 scale), or None for no normalisation.
        input_std: per-channel std (defaults to 1 when only the mean is given).
    """

    training_only = ("semantic.",)  # the semantic embedding loss is not saved in model.pt

    def __init__(
        self,
        backbone: nn.Module,
        head: I3DHead,
        input_mean: Sequence[float] | None = None,
        input_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = head.num_classes
        self.input_norm = InputNorm(input_mean, input_std)
        self.semantic: nn.Module | None = None  # training-only: attach_semantic()

    def attach_semantic(self, semantic: nn.Module) -> None:
        """Add a training-time semantic embedding loss (``mgcli.models.semantic``) on the pooled feature."""
        self.semantic = semantic

    @property
    def input_mean(self) -> torch.Tensor | None:
        return self.input_norm.mean

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Convert the input to float and apply the per-channel normalisation (if any)."""
        return self.input_norm(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> backbone feature map ``[N, C', T', H', W']`` (after normalisation)."""
        return self.backbone(self.normalize(x))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        """``[N, C, T, H, W]`` -> logits ``[N, num_classes]``; in training with a semantic loss
        attached and ``labels`` given, ``{"logits", "semantic"}`` (the latter for :meth:`loss`)."""
        if self.semantic is None or labels is None or not self.training:
            return self.head(self.features(x))
        pooled = self.head.pool(self.features(x))
        return {"logits": self.head.fc(self.head.dropout(pooled)), "semantic": self.semantic(pooled)}

    def loss(
        self, out: torch.Tensor | dict[str, torch.Tensor], labels: torch.Tensor, label_smoothing: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """The cross-entropy and, with a semantic loss attached, its weighted term."""
        if not isinstance(out, dict):
            return {"ce": F.cross_entropy(out.float(), labels, label_smoothing=label_smoothing)}
        assert self.semantic is not None
        return {
            "ce": F.cross_entropy(out["logits"].float(), labels, label_smoothing=label_smoothing),
            "semantic": self.semantic.loss(out["semantic"], labels),
        }
