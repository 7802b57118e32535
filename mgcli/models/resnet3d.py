"""3D ResNet backbones (SlowOnly / PoseConv3D family) and 2D -> 3D weight inflation.

The network is a ResNet whose convolutions gained a time axis. Most kernels are ``1 x k x k``
(per-frame); a stage with ``inflate=1`` turns the first 1x1x1 convolution of each bottleneck into
a ``3 x 1 x 1`` temporal convolution. That is the SlowOnly design used by PoseConv3D for pose
heatmap volumes and by its RGB branch for video frames.

Shapes are ``[N, C, T, H, W]`` throughout. Strides given as pairs are ``(temporal, spatial)``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from mgcli.models.weights import LoadReport


__all__ = ["Bottleneck3d", "ResNet3d", "inflate_2d_weights", "load_resnet50_2d"]


def _conv_bn(
    inplanes: int,
    planes: int,
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int],
    padding: tuple[int, int, int],
) -> tuple[nn.Conv3d, nn.BatchNorm3d]:
    """A bias-free Conv3d and the BatchNorm3d that follows it."""
    conv = nn.Conv3d(inplanes, planes, kernel, stride=stride, padding=padding, bias=False)
    return conv, nn.BatchNorm3d(planes)


class Bottleneck3d(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, x4 channels) with a time axis, "pytorch" style.

    The stride sits on the 3x3 convolution. With ``inflate`` the first convolution becomes a
    ``3 x 1 x 1`` temporal convolution (padding 1 in time), otherwise every kernel is per-frame.

    Args:
        inplanes: channels coming in.
        planes: width of the bottleneck; the block outputs ``planes * 4`` channels.
        stride: ``(temporal, spatial)`` stride of the 3x3 convolution.
        inflate: use a 3x1x1 first convolution.
        downsample: module mapping the input to the output shape for the residual (or None).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: tuple[int, int] = (1, 1),
        inflate: bool = False,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        t, s = stride
        if inflate:
            self.conv1, self.bn1 = _conv_bn(inplanes, planes, (3, 1, 1), (1, 1, 1), (1, 0, 0))
        else:
            self.conv1, self.bn1 = _conv_bn(inplanes, planes, (1, 1, 1), (1, 1, 1), (0, 0, 0))
        self.conv2, self.bn2 = _conv_bn(planes, planes, (1, 3, 3), (t, s, s), (0, 1, 1))
        self.conv3, self.bn3 = _conv_bn(planes, planes * self.expansion, (1, 1, 1), (1, 1, 1), (0, 0, 0))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.inflate = inflate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual bottleneck: ``relu(bn3(conv3(...)) + shortcut(x))``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _per_stage(name: str, value: Sequence[int], num_stages: int) -> tuple[int, ...]:
    """Check that a per-stage setting has one entry per stage."""
    value = tuple(int(v) for v in value)
    if len(value) != num_stages:
        raise ValueError(f"{name} needs one value per stage ({num_stages}, from stage_blocks), got {list(value)}")
    return value


def _fixed_length(name: str, value: Sequence[int], length: int, meaning: str) -> tuple[int, ...]:
    """Check that a setting has exactly ``length`` positive entries."""
    value = tuple(int(v) for v in value)
    if len(value) != length or min(value) < 1:
        raise ValueError(f"{name} must be {length} positive integers ({meaning}), got {list(value)}")
    return value


class ResNet3d(nn.Module):
    """A 3D ResNet of bottleneck stages: stem (conv + BN + ReLU + max-pool), then 1 to 4 stages.

    Stage ``i`` has width ``base_channels * 2**i`` and outputs four times that. ``forward`` returns
    the last stage's feature map ``[N, out_channels, T', H', W']``.

    Args:
        in_channels: input channels (3 for RGB, joints or limbs for heatmaps).
        base_channels: stem width; stage widths double from it.
        stage_blocks: bottlenecks per stage; its length is the number of stages.
        conv1_kernel: stem kernel ``(t, h, w)``, padded to keep the size (before stride).
        conv1_stride: stem convolution stride ``(temporal, spatial)``.
        pool1_stride: stem max-pool (kernel 1x3x3) stride ``(temporal, spatial)``.
        inflate: per stage, 1 to give every block a 3x1x1 first convolution.
        spatial_strides: per stage, spatial stride of its first block.
        temporal_strides: per stage, temporal stride of its first block.
        zero_init_residual: start each bottleneck's last BN at zero (blocks begin as identity).
        lateral_inplanes: per stage, extra input channels of the stage's first block, for
            two-pathway networks that concatenate lateral features in front of a stage (then the
            caller runs ``stem``/``stages`` itself; plain ``forward`` needs them all 0).
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 64,
        stage_blocks: Sequence[int] = (3, 4, 6, 3),
        conv1_kernel: Sequence[int] = (1, 7, 7),
        conv1_stride: Sequence[int] = (1, 2),
        pool1_stride: Sequence[int] = (1, 2),
        inflate: Sequence[int] = (0, 0, 1, 1),
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        zero_init_residual: bool = True,
        lateral_inplanes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        num_stages = len(stage_blocks)
        if not 1 <= num_stages <= 4:
            raise ValueError(f"stage_blocks must list 1 to 4 stages, got {list(stage_blocks)}")
        stage_blocks = _per_stage("stage_blocks", stage_blocks, num_stages)
        if min(stage_blocks) < 1:
            raise ValueError(f"every stage needs at least one block, got stage_blocks {list(stage_blocks)}")
        inflate = _per_stage("inflate", inflate, num_stages)
        if any(v not in (0, 1) for v in inflate):
            raise ValueError(f"inflate entries must be 0 or 1, got {list(inflate)}")
        spatial_strides = _per_stage("spatial_strides", spatial_strides, num_stages)
        temporal_strides = _per_stage("temporal_strides", temporal_strides, num_stages)
        if min(spatial_strides + temporal_strides) < 1:
            raise ValueError("strides must be positive")
        lateral = _per_stage("lateral_inplanes", lateral_inplanes or (0,) * num_stages, num_stages)
        if min(lateral) < 0:
            raise ValueError(f"lateral_inplanes must not be negative, got {list(lateral)}")
        if in_channels < 1 or base_channels < 1:
            raise ValueError("in_channels and base_channels must be positive")
        kt, kh, kw = _fixed_length("conv1_kernel", conv1_kernel, 3, "t, h, w")
        c1t, c1s = _fixed_length("conv1_stride", conv1_stride, 2, "temporal, spatial")
        p1t, p1s = _fixed_length("pool1_stride", pool1_stride, 2, "temporal, spatial")

        self.in_channels = in_channels
        self.base_channels = base_channels
        self.stage_blocks = stage_blocks
        self.lateral_inplanes = lateral

        conv, bn = _conv_bn(
            in_channels, base_channels, (kt, kh, kw), (c1t, c1s, c1s), ((kt - 1) // 2, (kh - 1) // 2, (kw - 1) // 2)
        )
        self.stem = nn.Sequential(
            OrderedDict(
                [
                    ("conv", conv),
                    ("bn", bn),
                    ("relu", nn.ReLU(inplace=True)),
                    ("pool", nn.MaxPool3d((1, 3, 3), stride=(p1t, p1s, p1s), padding=(0, 1, 1))),
                ]
            )
        )

        self.stages = nn.ModuleList()
        inplanes = base_channels
        for i, blocks in enumerate(stage_blocks):
            planes = base_channels * 2**i
            stride = (temporal_strides[i], spatial_strides[i])
            self.stages.append(self._make_stage(inplanes + lateral[i], planes, blocks, stride, bool(inflate[i])))
            inplanes = planes * Bottleneck3d.expansion
        self.out_channels = inplanes

        self._init_weights(zero_init_residual)

    @staticmethod
    def _make_stage(inplanes: int, planes: int, blocks: int, stride: tuple[int, int], inflate: bool) -> nn.Sequential:
        """One stage: a first block carrying the stride (and shortcut projection), then plain blocks."""
        out = planes * Bottleneck3d.expansion
        downsample = None
        if stride[1] != 1 or inplanes != out:
            t, s = stride
            conv, bn = _conv_bn(inplanes, out, (1, 1, 1), (t, s, s), (0, 0, 0))
            downsample = nn.Sequential(conv, bn)
        layers = [Bottleneck3d(inplanes, planes, stride, inflate, downsample)]
        layers += [Bottleneck3d(out, planes, (1, 1), inflate) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """Kaiming-normal convolutions, unit BN; optionally zero each bottleneck's last BN."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck3d):
                    nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, T, H, W]`` -> last feature map ``[N, out_channels, T', H', W']``."""
        if any(self.lateral_inplanes):
            raise RuntimeError("this ResNet3d expects lateral inputs; run its stem and stages from the owning model")
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


# --------------------------------------------------------------------------- 2D -> 3D inflation


def inflate_2d_weights(
    model: ResNet3d, state_dict_2d: Mapping[str, torch.Tensor], source: str = "a 2D ResNet"
) -> LoadReport:
    """Fill ``model`` from a torchvision 2D ResNet state dict, inflating kernels along time.

    A 2D kernel ``[O, I, h, w]`` becomes ``[O, I, t, h, w]`` by repeating it ``t`` times and
    dividing by ``t``, so a clip of identical frames gives the 2D network's response. BatchNorm
    weights, biases and running statistics are copied; the 2D classifier (``fc``) is skipped. Any
    tensor of another shape (other ``in_channels``, base width, lateral inputs) is an error, and
    every tensor of ``model`` must be filled (:func:`~mgcli.models.weights.load_weights`).
    """
    from mgcli.models.weights import load_weights

    return load_weights(model, state_dict_2d, source=source, rename=_our_name, skip=("fc.",), inflate=True)


def _our_name(name_2d: str) -> str | None:
    """A torchvision ResNet tensor name -> ours (``layer2.0.conv1.weight`` -> ``stages.1.0.conv1.weight``)."""
    module, _, tensor = name_2d.rpartition(".")
    stem = {"conv1": "stem.conv", "bn1": "stem.bn"}
    if module in stem:
        return f"{stem[module]}.{tensor}"
    m = re.fullmatch(r"layer(\d+)\.(.+)", module)
    return f"stages.{int(m.group(1)) - 1}.{m.group(2)}.{tensor}" if m else None


def load_resnet50_2d(pretrained: str) -> dict[str, torch.Tensor]:
    """The 2D ResNet-50 state dict named by ``pretrained``: ``"imagenet"`` or a torchvision-format .pth.

    ``"imagenet"`` fetches torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` (cached under
    ``$TORCH_HOME``); any other string is a path read with ``torch.load(weights_only=True)``. A
    checkpoint that wraps its weights under ``"state_dict"`` is unwrapped.
    """
    from mgcli.models.weights import fetch, read_state_dict

    if pretrained == "imagenet":
        from torchvision.models import ResNet50_Weights

        return fetch(
            ResNet50_Weights.IMAGENET1K_V1,
            "ImageNet ResNet-50",
            "pass `pretrained: null` or a path to a torchvision-format .pth state dict",
        )
    return read_state_dict(pretrained, "give `imagenet`, a torchvision-format .pth path, or null")
