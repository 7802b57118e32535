"""2s-AGCN: the Two-Stream Adaptive Graph Convolutional Network for skeletons (Shi et al., CVPR 2019).

One stream is an :class:`AGCN` over joint coordinates; the other is the same network over bones
(:func:`joint_to_bone`), and the two streams' scores are summed. Each of the ten blocks is a spatial
:class:`AdaptiveGraphConv` (fixed skeleton graph + a learned graph + a data-dependent graph, for
each of the three subsets of the "spatial" partition) followed by a 9 x 1 :class:`TemporalConv`.

Shapes: the network takes ``[N, C, T, V, M]`` (batch, channels, frames, joints, persons); inside,
persons fold into the batch and the blocks work on ``[N * M, C, T, V]``. The skeleton graph comes
from a :class:`~mgcli.pose.layouts.Layout` (its :attr:`~mgcli.pose.layouts.Layout.adjacency`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mgcli.models.base import MgModel
from mgcli.pose.layouts import Layout, get_layout

__all__ = ["AGCN", "AGCNBlock", "AdaptiveGraphConv", "TemporalConv", "agcn", "joint_to_bone"]

NUM_SUBSETS = 3  # identity, inward, outward


def _layout(layout: str | Layout) -> Layout:
    return get_layout(layout) if isinstance(layout, str) else layout


def joint_to_bone(x: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Bones from joints: ``x[..., v, :2] - x[..., parent[v], :2]`` for every joint ``v``.

    Args:
        x: ``[..., V, C]`` joints with ``C = 2`` (x, y) or ``C = 3`` (x, y, score).
        layout: the joints' layout; parents come from :attr:`~mgcli.pose.layouts.Layout.parents`
            (the centre and joints not connected to it give a zero bone).

    Returns:
        ``[..., V, C]`` of ``x``'s dtype; with ``C = 3`` the third channel is the mean of the two
        joints' scores (as pyskl's ``JointToBone``).
    """
    lay = _layout(layout)
    if x.ndim < 2 or x.shape[-2] != lay.num_joints or x.shape[-1] not in (2, 3):
        raise ValueError(f"joints must be [..., {lay.num_joints}, 2 or 3] for layout {lay.name}, got {list(x.shape)}")
    parent = x[..., lay.parents, :]
    bone = np.empty_like(x)
    bone[..., :2] = x[..., :2] - parent[..., :2]
    if x.shape[-1] == 3:
        bone[..., 2] = (x[..., 2] + parent[..., 2]) / 2
    return bone


def _conv_init(conv: nn.Conv2d) -> None:
    """Kaiming-normal (fan out) weights and zero bias, as 2s-AGCN's ``conv_init``."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _bn_init(bn: nn.BatchNorm1d | nn.BatchNorm2d, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


class TemporalConv(nn.Module):
    """A ``kernel x 1`` convolution over time (stride ``(stride, 1)``, "same" padding) and BatchNorm2d.

    2s-AGCN's ``unit_tcn`` (no activation). ``[N, C_in, T, V] -> [N, C_out, ceil(T / stride), V]``
    for odd kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), stride=(stride, 1), padding=((kernel_size - 1) // 2, 0)
        )
        self.bn = nn.BatchNorm2d(out_channels)
        _conv_init(self.conv)
        _bn_init(self.bn, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class AdaptiveGraphConv(nn.Module):
    """2s-AGCN's adaptive graph convolution (``unit_gcn``) over the three subsets of the spatial partition.

    For subset ``k`` the joints mix by ``A_k + B_k + C_k``: ``A_k`` the fixed skeleton graph (a
    buffer), ``B_k`` a learned graph (a parameter, initialised to 1e-6) and ``C_k`` a graph computed
    from the input, ``softmax(theta_k(x)^T phi_k(x) / (inner * T))`` over the sending-joint axis, with
    ``theta_k``, ``phi_k`` 1x1 convolutions to ``inner = out_channels // coff_embedding`` channels
    flattened with time. The output is ``sum_k W_k(x (A_k + B_k + C_k))`` with ``W_k`` 1x1
    convolutions, then BatchNorm (weight initialised to 1e-6), a residual (1x1 conv + BN when the
    width changes) and ReLU.

    Implementation: theta and phi of all subsets are one convolution each (``3 * inner`` channels),
    the aggregation of all subsets is one einsum, and ``sum_k W_k(.)`` is a single 1x1 convolution
    from ``3 * C_in`` channels (subset-major: input channels ``k * C_in ... (k + 1) * C_in - 1`` are
    subset ``k``), which equals the sum of three per-subset convolutions (with one bias instead of
    three).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        adjacency: ``[3, V, V]``, ``A[k][i, j]`` the weight from joint ``i`` to joint ``j`` (features
            aggregate as ``x @ A[k]``), e.g. :attr:`~mgcli.pose.layouts.Layout.adjacency`.
        coff_embedding: ``inner = max(1, out_channels // coff_embedding)``.

    Shapes: ``[N, C_in, T, V] -> [N, C_out, T, V]``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, adjacency: np.ndarray | torch.Tensor, coff_embedding: int = 4
    ) -> None:
        super().__init__()
        adjacency = torch.as_tensor(np.asarray(adjacency, np.float32))
        if adjacency.ndim != 3 or adjacency.shape[0] != NUM_SUBSETS or adjacency.shape[1] != adjacency.shape[2]:
            raise ValueError(f"adjacency must be [{NUM_SUBSETS}, V, V], got {list(adjacency.shape)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.inner = max(1, out_channels // coff_embedding)
        self.register_buffer("A", adjacency.clone())  # fixed
        self.B = nn.Parameter(torch.full_like(adjacency, 1e-6))  # learned
        self.theta = nn.Conv2d(in_channels, NUM_SUBSETS * self.inner, 1)
        self.phi = nn.Conv2d(in_channels, NUM_SUBSETS * self.inner, 1)
        self.conv = nn.Conv2d(NUM_SUBSETS * in_channels, out_channels, 1)  # sum_k W_k
        self.bn = nn.BatchNorm2d(out_channels)
        if in_channels != out_channels:
            self.down: nn.Module = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.down = nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                _bn_init(m, 1.0)
        _bn_init(self.bn, 1e-6)
        # 2s-AGCN's conv_branch_init of each W_k: normal(0, sqrt(2 / (C_out * C_in * 3))).
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / (out_channels * in_channels * NUM_SUBSETS)))
        nn.init.zeros_(self.conv.bias)

    def graphs(self, x: torch.Tensor) -> torch.Tensor:
        """The per-sample aggregation matrices ``A + B + C``: ``[N, C_in, T, V] -> [N, 3, V, V]``."""
        n, _, t, v = x.shape
        theta = self.theta(x).reshape(n, NUM_SUBSETS, self.inner * t, v)
        phi = self.phi(x).reshape(n, NUM_SUBSETS, self.inner * t, v)
        c = torch.einsum("nkfv,nkfw->nkvw", theta, phi) / (self.inner * t)
        return self.A + self.B + c.softmax(dim=-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        mixed = torch.einsum("nctv,nkvw->nkctw", x, self.graphs(x)).reshape(n, NUM_SUBSETS * c, t, v)
        y = self.bn(self.conv(mixed))
        return self.relu(y + self.down(x))


class AGCNBlock(nn.Module):
    """2s-AGCN's ``TCN_GCN_unit``: ``relu(tcn(gcn(x)) + residual(x))``.

    The residual is zero with ``residual=False``, the identity when the shape is kept, otherwise a
    strided :class:`TemporalConv` with kernel 1.

    Shapes: ``[N, C_in, T, V] -> [N, C_out, ceil(T / stride), V]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        adjacency: np.ndarray | torch.Tensor,
        stride: int = 1,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.gcn = AdaptiveGraphConv(in_channels, out_channels, adjacency)
        self.tcn = TemporalConv(out_channels, out_channels, stride=stride)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, kernel_size=1, stride=stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class AGCN(MgModel):
    """One stream of 2s-AGCN: data BatchNorm, ten :class:`AGCNBlock`, global average pooling, a linear head.

    Block widths are ``base_channels * (1, 1, 1, 1, 2, 2, 2, 4, 4, 4)`` with temporal stride 2 at
    the 5th and 8th block; the first block has no residual.

    Args:
        num_classes: size of the logits.
        layout: the skeleton (a :class:`~mgcli.pose.layouts.Layout` or its name).
        in_channels: ``C`` of the input (3 for x, y, score).
        num_person: ``M``, persons per sample.
        base_channels: width of the first four blocks.
        dropout: dropout before the head (none when 0).

    Shapes: ``forward``: ``[N, C, T, V, M] -> [N, num_classes]``; :meth:`features`:
    ``[N, M, out_channels, ceil(T / 4), V]``; :meth:`embed`: ``[N, out_channels]``.
    """

    def __init__(
        self,
        num_classes: int,
        layout: str | Layout = "coco17",
        *,
        in_channels: int = 3,
        num_person: int = 1,
        base_channels: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layout = _layout(layout)
        self.num_classes, self.in_channels, self.num_person = num_classes, in_channels, num_person
        v = self.layout.num_joints
        adjacency = self.layout.adjacency
        # BN channels ordered (person, joint, channel), as 2s-AGCN.
        self.data_bn = nn.BatchNorm1d(num_person * v * in_channels)
        _bn_init(self.data_bn, 1.0)
        widths = [base_channels * f for f in (1, 1, 1, 1, 2, 2, 2, 4, 4, 4)]
        blocks = []
        c_in = in_channels
        for i, c_out in enumerate(widths):
            blocks.append(AGCNBlock(c_in, c_out, adjacency, stride=2 if i in (4, 7) else 1, residual=i > 0))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = c_in
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.out_channels, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_classes))
        nn.init.zeros_(self.fc.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-person feature maps after the blocks: ``[N, C, T, V, M] -> [N, M, out_channels, T', V]``."""
        n, c, t, v, m = x.shape
        if (c, v, m) != (self.in_channels, self.layout.num_joints, self.num_person):
            raise ValueError(
                f"expected [N, {self.in_channels}, T, {self.layout.num_joints}, {self.num_person}] "
                f"(layout {self.layout.name}), got {list(x.shape)}"
            )
        # reshape, not view: the input may be non-contiguous (e.g. channels_last_3d).
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        x = self.blocks(x)
        return x.reshape(n, m, *x.shape[1:])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global average over time, joints and persons: ``[N, C, T, V, M] -> [N, out_channels]``."""
        return self.features(x).mean(dim=(3, 4)).mean(dim=1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, C, T, V, M] -> [N, num_classes]`` logits."""
        return self.fc(self.dropout(self.embed(x)))


def agcn(
    num_classes: int,
    layout: str = "coco17",
    *,
    in_channels: int = 3,
    num_person: int = 1,
    base_channels: int = 64,
    dropout: float = 0.0,
) -> AGCN:
    """One stream of 2s-AGCN (Shi et al., CVPR 2019), about 3.5 M parameters at ``base_channels`` 64.

    Feed joints for the joint stream, or :func:`joint_to_bone` of them for the bone stream, as
    ``[N, in_channels, T, V, num_person]``; two such models make the two-stream network (sum their
    scores).

    Args:
        num_classes: size of the logits.
        layout: name of the keypoint layout whose skeleton is the graph (see ``mgcli.pose.layouts``).
        in_channels: input channels (3: x, y, score; 2: x, y).
        num_person: persons per sample.
        base_channels: width of the first stage (64 in the paper; 128 and 256 follow).
        dropout: dropout before the linear head.
    """
    return AGCN(
        num_classes,
        layout=layout,
        in_channels=in_channels,
        num_person=num_person,
        base_channels=base_channels,
        dropout=dropout,
    )
