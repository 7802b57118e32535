"""A recogniser: optional on-device input normalisation, a 3D backbone and a classification head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgcli.models.heads import I3DHead

__all__ = ["Classifier"]


class Classifier(nn.Module):
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

    def __init__(self, backbone: nn.Module, head: I3DHead, input_mean: Sequence[float] | None = None,
                 input_std: Sequence[float] | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = head.num_classes
        self.normalize_input = input_mean is not None or input_std is not None
        if self.normalize_input:
            n = len(input_mean if input_mean is not None else input_std)
            mean = torch.tensor(input_mean if input_mean is not None else [0.0] * n, dtype=torch.float32)
            std = torch.tensor(input_std if input_std is not None else [1.0] * n, dtype=torch.float32)
            if mean.shape != std.shape:
                raise ValueError(f"input_mean has {mean.numel()} channels but input_std has {std.numel()}")
            if (std <= 0).any():
                raise ValueError("input_std must be positive")
            self.register_buffer("input_mean", mean.view(1, -1, 1, 1, 1), persistent=False)
            self.register_buffer("input_std", std.view(1, -1, 1, 1, 1), persistent=False)
        else:
            self.input_mean = None
            self.input_std = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Convert the input to float and apply the per-channel normalisation (if any)."""
        if not x.is_floating_point():
            x = x.float()
        if self.input_mean is not None:
            x = (x - self.input_mean) / self.input_std
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> backbone feature map ``[N, C', T', H', W']`` (after normalisation)."""
        return self.backbone(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> logits ``[N, num_classes]``."""
        return self.head(self.features(x))
