"""Video Swin Transformer (Liu et al.) from torchvision, as an RGB branch for the ensemble.

The MiGA 2024 winner ensembles a Video Swin-B with the PoseConv3D models. torchvision ships the
network (``swin3d_t`` / ``swin3d_s`` / ``swin3d_b``: patch 2x4x4, window 8x7x7) and Kinetics-400
weights; here the classification head is replaced for our classes and uint8 clips are normalised
on the device with the ImageNet mean/std the weights were trained with.
"""

from __future__ import annotations

import torch
from torch import nn

from mgcli.models.base import MgModel
from mgcli.models.classifier import IMAGENET_MEAN, IMAGENET_STD, InputNorm

__all__ = ["VideoSwin", "swin3d", "swin3d_b", "swin3d_s", "swin3d_t"]

# variant -> (torchvision builder name, weights enum name, pretrained tags -> enum member)
_VARIANTS = {
    "t": ("swin3d_t", "Swin3D_T_Weights", {"kinetics400": "KINETICS400_V1"}),
    "s": ("swin3d_s", "Swin3D_S_Weights", {"kinetics400": "KINETICS400_V1"}),
    "b": (
        "swin3d_b",
        "Swin3D_B_Weights",
        {"kinetics400": "KINETICS400_V1", "kinetics400_imagenet22k": "KINETICS400_IMAGENET22K_V1"},
    ),
}


class VideoSwin(MgModel):
    """ImageNet normalisation + a torchvision ``SwinTransformer3d`` whose head gives our classes.

    ``forward``: ``[N, 3, T, H, W]`` (uint8 or 0..255 floats) -> logits; ``embed``: the pooled
    clip embedding before the head (768 / 768 / 1024 for t / s / b).
    """

    def __init__(self, net: nn.Module, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.input_norm = InputNorm(IMAGENET_MEAN, IMAGENET_STD)
        self.net = net
        self.num_classes = num_classes
        self.embed_dim = net.head.in_features
        self.net.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.embed_dim, num_classes))
        nn.init.normal_(self.net.head[1].weight, std=0.01)
        nn.init.zeros_(self.net.head[1].bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> the pooled embedding ``[N, embed_dim]``."""
        net = self.net
        x = net.patch_embed(self.input_norm(x))  # [N, T', H', W', C]
        x = net.pos_drop(x)
        x = net.features(x)
        x = net.norm(x)
        x = x.permute(0, 4, 1, 2, 3)
        return torch.flatten(net.avgpool(x), 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.head(self.embed(x))


def swin3d(
    num_classes: int,
    in_channels: int = 3,
    variant: str = "b",
    pretrained: str | None = None,
    dropout: float = 0.5,
) -> VideoSwin:
    """torchvision's Video Swin ``variant`` (t, s or b) with a new head for ``num_classes``.

    ``pretrained``: ``"kinetics400"`` (torchvision's ``Swin3D_*_Weights.KINETICS400_V1``; for b
    also ``"kinetics400_imagenet22k"``), a path to a torchvision-format state dict of the same
    variant (its head is dropped), or None (random init). ``dropout`` sits before the new head.
    """
    import torchvision.models.video as tvv

    from mgcli.models.weights import fetch, load_weights, read_state_dict

    if variant not in _VARIANTS:
        raise ValueError(f"variant must be t, s or b, got {variant!r}")
    if in_channels != 3:
        raise ValueError(f"Video Swin reads RGB clips (3 channels), got {in_channels}")
    builder, enum_name, tags = _VARIANTS[variant]
    net = getattr(tvv, builder)()  # torchvision's settings (stochastic depth 0.1)
    report = None
    if pretrained is not None:
        if pretrained in tags:
            member = getattr(getattr(tvv, enum_name), tags[pretrained])
            state = fetch(
                member,
                f"{enum_name}.{tags[pretrained]}",
                "pass `pretrained: null` or a path to a torchvision-format .pth state dict",
            )
        else:
            state = read_state_dict(pretrained, f"give {', '.join(tags)}, a torchvision-format .pth path, or null")
        report = load_weights(net, state, source=f"pretrained {pretrained!r} (swin3d_{variant})", skip=("head.",))
    model = VideoSwin(net, num_classes, dropout)
    if report is not None:
        model.load_reports.append(report)
    return model


def swin3d_t(num_classes: int, in_channels: int = 3, pretrained: str | None = None, dropout: float = 0.5) -> VideoSwin:
    """Video Swin-T (28 M parameters) on RGB clips ``[N, 3, T, 224, 224]``; see :func:`swin3d`."""
    return swin3d(num_classes, in_channels, "t", pretrained, dropout)


def swin3d_s(num_classes: int, in_channels: int = 3, pretrained: str | None = None, dropout: float = 0.5) -> VideoSwin:
    """Video Swin-S (50 M parameters) on RGB clips ``[N, 3, T, 224, 224]``; see :func:`swin3d`."""
    return swin3d(num_classes, in_channels, "s", pretrained, dropout)


def swin3d_b(num_classes: int, in_channels: int = 3, pretrained: str | None = None, dropout: float = 0.5) -> VideoSwin:
    """Video Swin-B (88 M parameters) on RGB clips ``[N, 3, T, 224, 224]``, the one in the MiGA 2024
    winner's ensemble; see :func:`swin3d`."""
    return swin3d(num_classes, in_channels, "b", pretrained, dropout)
