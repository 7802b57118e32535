"""Classification heads that turn a 5D feature map into class logits."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["I3DHead"]


class I3DHead(nn.Module):
    """Global average pool over (T, H, W), dropout, then a linear classifier (PoseConv3D's head).

    Args:
        in_channels: channels of the feature map (the backbone's ``out_channels``).
        num_classes: number of classes.
        dropout: dropout probability before the classifier (0 disables it).
        init_std: standard deviation of the classifier's normal init (bias starts at 0).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5, init_std: float = 0.01) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, init_std)
        nn.init.zeros_(self.fc.bias)

    def pool(self, feat: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> pooled feature vector ``[N, C]``."""
        return self.avg_pool(feat).flatten(1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> logits ``[N, num_classes]``."""
        return self.fc(self.dropout(self.pool(feat)))
