"""MViTv2-S (Li et al., "MViTv2: Improved Multiscale Vision Transformers") from torchvision, as an
RGB branch for the ensemble.

torchvision ships the network (``MViT`` with the ``mvit_v2_s`` block setting: 16 blocks in 4 stages
of widths 96 / 192 / 384 / 768, pooling attention with relative positions and residual pooling) and
Kinetics-400 weights. Here the classification head is replaced for our classes, uint8 clips are
normalised on the device with the Kinetics mean/std the weights were trained with, and
:func:`mvit_v2_blocks` generates the same block setting for smaller depths and widths.

The model takes clips of exactly ``frames x size x size`` (``T x H x W``, 16 x 224 x 224 for the
Kinetics weights): the patch embedding (kernel 3x7x7, stride 2x4x4) and the three query poolings
(stride 1x2x2) fix the token grid, and the relative positional embeddings are sized for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mgcli.errors import MgError
from mgcli.models.base import MgModel
from mgcli.models.classifier import InputNorm

if TYPE_CHECKING:
    from torchvision.models.video import MViT
    from torchvision.models.video.mvit import MSBlockConfig

__all__ = ["KINETICS_MEAN", "KINETICS_STD", "VideoMViT", "mvit_v2_blocks", "mvit_v2_s"]

# torchvision's MViT_V2_S_Weights transforms: mean 0.45, std 0.225 on the 0..1 scale, here x 255.
KINETICS_MEAN = (0.45 * 255, 0.45 * 255, 0.45 * 255)
KINETICS_STD = (0.225 * 255, 0.225 * 255, 0.225 * 255)

_V2_S = {"depths": (1, 2, 11, 2), "dims": (96, 192, 384, 768), "heads": (1, 2, 4, 8)}
_STRIDE_KV = ([1, 8, 8], [1, 4, 4], [1, 2, 2], [1, 1, 1])  # per stage: keys/values pooled to 7x7 at 224
_V2_FLAGS = {"residual_pool": True, "residual_with_cls_embed": False, "rel_pos_embed": True, "proj_after_attn": True}


class VideoMViT(MgModel):
    """Kinetics normalisation + a torchvision ``MViT`` whose head gives our classes.

    Input ``[N, 3, T, H, W]`` (uint8 or 0..255 floats, any memory format) with ``T, H, W`` exactly
    ``temporal_size, *spatial_size``. ``tokens``: the normed token sequence ``[N, 1 + T'H'W', C]``
    (class token first) and its grid ``(T', H', W') = (T/2, H/32, W/32)``; ``embed``: the class
    token ``[N, C]`` (``C = embed_dim``, 768 for v2-S); ``forward``: logits ``[N, num_classes]``.
    """

    def __init__(self, net: MViT, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.input_norm = InputNorm(KINETICS_MEAN, KINETICS_STD)
        self.net = net
        self.num_classes = num_classes
        self.embed_dim: int = net.norm.normalized_shape[0]
        pe, stride = net.pos_encoding, net.conv_proj.stride
        self.temporal_size: int = pe.temporal_size * stride[0]
        self.spatial_size: tuple[int, int] = (pe.spatial_size[0] * stride[1], pe.spatial_size[1] * stride[2])
        self.net.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.embed_dim, num_classes))
        nn.init.normal_(self.net.head[1].weight, std=0.01)
        nn.init.zeros_(self.net.head[1].bias)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """``[N, 3, T, H, W]`` -> (tokens ``[N, 1 + T'H'W', C]`` after the blocks and the final
        norm, class token first; the token grid ``(T', H', W')``). torchvision's ``MViT.forward``
        up to its head."""
        expected = (self.temporal_size, *self.spatial_size)
        if x.dim() != 5 or x.shape[1] != 3 or tuple(x.shape[2:]) != expected:
            raise MgError(
                f"MViT takes clips [N, 3, {expected[0]}, {expected[1]}, {expected[2]}] (exactly the "
                f"frames x size x size it was built for), got {list(x.shape)}"
            )
        net = self.net
        x = net.conv_proj(self.input_norm(x))  # [N, C0, T', H', W'], maybe channels_last_3d
        x = x.flatten(2).transpose(1, 2)  # [N, T'H'W', C0]
        x = net.pos_encoding(x)  # class token prepended
        thw = (net.pos_encoding.temporal_size, *net.pos_encoding.spatial_size)
        for block in net.blocks:
            x, thw = block(x, thw)
        return net.norm(x), thw

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> the class token ``[N, embed_dim]`` (before the head)."""
        return self.tokens(x)[0][:, 0]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> logits ``[N, num_classes]``."""
        return self.net.head(self.embed(x))

    def check_view(self, view: Any, where: str | Path | None = None) -> None:
        """The clip must be exactly ``temporal_size x spatial_size`` (the token grid is fixed)."""
        key = "rgb_len" if hasattr(view, "rgb_len") else "clip_len"
        self.check_clip(getattr(view, key), view.train_size, view.test_size, key, where)

    def check_clip(self, frames: int, train_size: int, test_size: int, key: str, where: str | Path | None) -> None:
        size = self.spatial_size[0]
        if frames != self.temporal_size or train_size != size or test_size != size:
            raise MgError(
                f"the video model takes {self.temporal_size} x {size} x {size} clips but data.view gives "
                f"{key} {frames}, train_size {train_size}, test_size {test_size}; set them to match",
                where,
            )


def mvit_v2_blocks(
    depths: tuple[int, ...] = (1, 2, 11, 2),
    dims: tuple[int, ...] = (96, 192, 384, 768),
    heads: tuple[int, ...] = (1, 2, 4, 8),
) -> list[MSBlockConfig]:
    """An MViTv2 block setting of 4 stages in the pattern of torchvision's ``mvit_v2_s`` (which the
    defaults reproduce exactly).

    Stage ``s`` has ``depths[s]`` blocks of width ``dims[s]`` with ``heads[s]`` heads. The first
    block of stages 2-4 goes from ``dims[s-1]`` to ``dims[s]`` channels (with ``heads[s]`` heads)
    and pools the queries by 1x2x2; all pooling kernels are 3x3x3; keys and values are pooled by
    1x8x8, 1x4x4, 1x2x2, 1x1x1 in stages 1-4.
    """
    from torchvision.models.video.mvit import MSBlockConfig

    if not len(depths) == len(dims) == len(heads) == 4:
        raise ValueError(
            f"depths, dims and heads need one entry per stage (4 stages), got "
            f"{len(depths)}, {len(dims)} and {len(heads)}"
        )
    if min(depths) < 1 or min(dims) < 1 or min(heads) < 1:
        raise ValueError(f"depths, dims and heads must be positive, got {depths}, {dims}, {heads}")
    for d, h in zip(dims, heads, strict=True):
        if d % h:
            raise ValueError(f"each stage's width must be divisible by its heads, got dims {dims}, heads {heads}")
    blocks = []
    for s, (depth, dim, head) in enumerate(zip(depths, dims, heads, strict=True)):
        for i in range(depth):
            first = i == 0 and s > 0
            blocks.append(
                MSBlockConfig(
                    num_heads=head,
                    input_channels=dims[s - 1] if first else dim,
                    output_channels=dim,
                    kernel_q=[3, 3, 3],
                    kernel_kv=[3, 3, 3],
                    stride_q=[1, 2, 2] if first else [1, 1, 1],
                    stride_kv=list(_STRIDE_KV[s]),
                )
            )
    return blocks


def mvit_v2_s(
    num_classes: int,
    pretrained: str | None = None,
    frames: int = 16,
    size: int = 224,
    depths: tuple[int, ...] = (1, 2, 11, 2),
    dims: tuple[int, ...] = (96, 192, 384, 768),
    heads: tuple[int, ...] = (1, 2, 4, 8),
    dropout: float = 0.5,
    stochastic_depth: float = 0.2,
    in_channels: int = 3,
) -> VideoMViT:
    """torchvision's MViTv2 (v2-S by default, 34.5 M parameters) with a new head for ``num_classes``.

    The model takes RGB clips of exactly ``[N, 3, frames, size, size]`` (``frames`` even, ``size`` a
    multiple of 32); its token grid ends at ``frames/2 x size/32 x size/32``. ``depths``, ``dims``
    and ``heads`` give the 4 stages (see :func:`mvit_v2_blocks`); ``dropout`` sits before the new
    head; ``stochastic_depth`` is the drop-path rate of the last block (linear from 0).

    ``pretrained``: ``"kinetics400"`` (torchvision's ``MViT_V2_S_Weights.KINETICS400_V1``; only for
    the v2-S stages at 16 x 224 x 224), a path to a torchvision-format state dict of the same
    architecture and input size (its head is dropped), or None (random init). ``in_channels`` is
    accepted for the common builder interface and must be 3.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if in_channels != 3:
        raise ValueError(f"MViT reads RGB clips (3 channels), got {in_channels}")
    if frames < 2 or frames % 2:
        raise ValueError(f"frames must be even and at least 2 (the patch embedding halves time), got {frames}")
    if size < 32 or size % 32:
        raise ValueError(f"size must be a positive multiple of 32 (patch stride 4, then 3 poolings by 2), got {size}")
    if not (0.0 <= dropout <= 1.0 and 0.0 <= stochastic_depth <= 1.0):
        raise ValueError(f"dropout and stochastic_depth must be in [0, 1], got {dropout} and {stochastic_depth}")
    blocks = mvit_v2_blocks(tuple(depths), tuple(dims), tuple(heads))
    paper = (tuple(depths), tuple(dims), tuple(heads), frames, size) == (*_V2_S.values(), 16, 224)
    if pretrained == "kinetics400" and not paper:
        raise MgError(
            "pretrained 'kinetics400' needs the MViTv2-S settings (depths 1,2,11,2, dims 96,192,384,768, "
            "heads 1,2,4,8, frames 16, size 224); change them or pass `pretrained: null`"
        )

    from torchvision.models.video import MViT, MViT_V2_S_Weights

    from mgcli.models.weights import fetch, load_weights, read_state_dict

    state = None
    if pretrained == "kinetics400":
        state = fetch(
            MViT_V2_S_Weights.KINETICS400_V1,
            "MViT_V2_S_Weights.KINETICS400_V1",
            "they cannot be downloaded here: a path to a torchvision-format .pth state dict "
            "works offline, or pass `pretrained: null`",
        )
    elif pretrained is not None:
        state = read_state_dict(pretrained, "give kinetics400, a torchvision-format .pth path, or null")
    net = MViT(
        spatial_size=(size, size),
        temporal_size=frames,
        block_setting=blocks,
        stochastic_depth_prob=stochastic_depth,
        **_V2_FLAGS,
    )
    model = VideoMViT(net, num_classes, dropout)
    if state is not None:
        model.load_reports.append(
            load_weights(
                net,
                state,
                source=f"pretrained {pretrained!r} (MViT: check depths/dims/heads/frames/size)",
                skip=("head.",),
            )
        )
    return model
