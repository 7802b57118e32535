"""Cross-Modal Fusion module (CMF) of the MiGA 2024 winner: channel-wise cross-attention re-weighting.

Inputs are the two pathways' feature maps at an exchange point, ``x_rgb`` ``[N, C1, T1, H1, W1]``
and ``x_pose`` ``[N, C2, T2, H2, W2]`` (in RGBPoseConv3D ``T2 = speed_ratio * T1``). The module
returns ``(x_rgb'', x_pose'')`` with the input shapes; the lateral concatenation stays with
:class:`~mgcli.models.rgbpose.RGBPoseConv3D`.

Steps, with the choices the paper leaves open (all configurable):

1. **Tokens.** A 1x1x1 Conv3d (with bias) per stream maps ``C1`` / ``C2`` to the hidden size
   ``C' = hidden`` (default 256), then a max over ``H, W`` gives ``[N, C', T]``. Time is aligned by
   adaptive *average* pooling both streams to ``tokens`` temporal steps (default 8, as in PCAN's
   FeatureInteraction; with the paper's 8-frame RGB / 32-frame pose clips the RGB stream is left as
   is and the pose stream is averaged over non-overlapping windows of ``speed_ratio`` frames). If a
   stream has fewer frames than ``tokens``, adaptive pooling repeats frames. ``L = tokens``.
2. **Channel-wise cross-attention.** Each of the ``C'`` channels is an attention token whose feature
   vector is its ``L`` temporal values. ``Q^m, K^m, V^m`` are per-modality ``nn.Linear(C', C')``
   maps applied at every temporal step (i.e. ``W X'_m`` mixes channels, ``X'_m`` being ``C' x L``),
   giving ``[N, C', L]`` each. One head by default: each ``C' x C'`` map then compares keys of
   all ``L`` temporal values (8 in the paper's setting). Heads are an option, but they split those
   ``L`` values (``tokens % heads == 0``), so 4 heads of an 8-token stream would compare channels by
   2 values each, too few to say how alike two channels' time courses are. RGB queries attend to
   pose keys/values and pose queries to RGB keys/values: ``softmax(Q K^T / sqrt(L / heads))`` is
   ``[N, heads, C', C']`` (rows sum to 1, optional dropout on it), times ``V`` gives ``[N, C', L]``
   after merging heads. No output projection inside the attention; the maps below play that role.
3. **Re-weighting maps** (bias-free, **zero-initialised**, so the module starts as the identity and
   returns its inputs exactly whenever the attention output is zero):

   - RGB: the attention output is resampled in time to ``T1`` (nearest; a no-op when
     ``tokens == T1``), then a 1x1x1 Conv3d ``C' -> C1``;
   - pose: resampled (nearest) to ``ceil(T2 / speed_ratio)`` steps (a no-op in the paper's
     setting), then a ConvTranspose3d ``C' -> C2`` with kernel = stride = ``speed_ratio`` in time
     (the paper's ConvTranspose3d), cropped to ``T2``.

   Both maps are ``[N, C, T, 1, 1]`` and broadcast over space:
   ``x'' = map * x + x`` (no sigmoid, as in the paper's formula).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CrossModalFusion"]


class CrossModalFusion(nn.Module):
    """Re-weight RGB and pose feature maps by channel-wise (``C' x C'``) cross-modal attention.

    Args:
        rgb_channels: ``C1``, channels of the RGB feature map.
        pose_channels: ``C2``, channels of the pose feature map.
        hidden: ``C'``, the shared hidden size.
        heads: attention heads; they split the ``tokens`` temporal features (default 1, see above).
        tokens: temporal steps both streams are pooled to before the attention.
        speed_ratio: pose frames per RGB frame; stride of the pose map's transposed convolution.
        dropout: dropout on the attention weights.
    """

    def __init__(
        self,
        rgb_channels: int,
        pose_channels: int,
        hidden: int = 256,
        heads: int = 1,
        tokens: int = 8,
        speed_ratio: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(rgb_channels, pose_channels, hidden, heads, tokens, speed_ratio) < 1:
            raise ValueError("CrossModalFusion: channels, hidden, heads, tokens and speed_ratio must be >= 1")
        if tokens % heads:
            raise ValueError(f"CrossModalFusion: tokens ({tokens}) must be a multiple of heads ({heads})")
        self.rgb_channels, self.pose_channels = rgb_channels, pose_channels
        self.hidden, self.heads, self.tokens, self.speed_ratio = hidden, heads, tokens, speed_ratio
        self.scale = 1.0 / math.sqrt(tokens // heads)
        self.rgb_in = nn.Conv3d(rgb_channels, hidden, 1)
        self.pose_in = nn.Conv3d(pose_channels, hidden, 1)
        self.rgb_q, self.rgb_k, self.rgb_v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.pose_q, self.pose_k, self.pose_v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_drop = nn.Dropout(dropout)
        self.rgb_out = nn.Conv3d(hidden, rgb_channels, 1, bias=False)
        self.pose_out = nn.ConvTranspose3d(
            hidden, pose_channels, (speed_ratio, 1, 1), stride=(speed_ratio, 1, 1), bias=False
        )
        nn.init.zeros_(self.rgb_out.weight)
        nn.init.zeros_(self.pose_out.weight)

    def _tokens(self, x: Tensor, proj: nn.Conv3d) -> Tensor:
        """``[N, C, T, H, W]`` -> ``[N, C', L]``: 1x1x1 conv, spatial max, adaptive temporal average."""
        z = proj(x).amax(dim=(3, 4))
        return F.adaptive_avg_pool1d(z, self.tokens)

    def _cross(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Channel attention: ``[N, C', L]`` x3 -> output ``[N, C', L]`` and weights ``[N, heads, C', C']``."""
        n, c, length = q.shape
        d = length // self.heads

        def split(t: Tensor) -> Tensor:
            return t.reshape(n, c, self.heads, d).transpose(1, 2)  # [N, h, C', d]

        weights = torch.softmax(split(q) @ split(k).transpose(-2, -1) * self.scale, dim=-1)
        out = self.attn_drop(weights) @ split(v)  # [N, h, C', d]
        return out.transpose(1, 2).reshape(n, c, length), weights

    def _attend(self, x_rgb: Tensor, x_pose: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Attention outputs ``[N, C', L]`` (rgb, pose) and weights ``[N, heads, C', C']`` (rgb, pose)."""
        self._check(x_rgb, x_pose)
        z_rgb = self._tokens(x_rgb, self.rgb_in).transpose(1, 2)  # [N, L, C']: Linear mixes channels
        z_pose = self._tokens(x_pose, self.pose_in).transpose(1, 2)

        def proj(layer: nn.Linear, z: Tensor) -> Tensor:
            return layer(z).transpose(1, 2)  # back to [N, C', L]

        out_rgb, w_rgb = self._cross(proj(self.rgb_q, z_rgb), proj(self.pose_k, z_pose), proj(self.pose_v, z_pose))
        out_pose, w_pose = self._cross(proj(self.pose_q, z_pose), proj(self.rgb_k, z_rgb), proj(self.rgb_v, z_rgb))
        return out_rgb, out_pose, w_rgb, w_pose

    def attention_weights(self, x_rgb: Tensor, x_pose: Tensor) -> tuple[Tensor, Tensor]:
        """The softmax maps ``[N, heads, C', C']``: RGB queries over pose channels, pose over RGB."""
        return self._attend(x_rgb, x_pose)[2:]

    def reweight(self, out_rgb: Tensor, out_pose: Tensor, t_rgb: int, t_pose: int) -> tuple[Tensor, Tensor]:
        """Attention outputs ``[N, C', L]`` -> maps ``[N, C1, t_rgb, 1, 1]`` and ``[N, C2, t_pose, 1, 1]``."""
        m_rgb = self.rgb_out(_resample(out_rgb, t_rgb)[..., None, None])
        steps = -(-t_pose // self.speed_ratio)
        m_pose = self.pose_out(_resample(out_pose, steps)[..., None, None])[:, :, :t_pose]
        return m_rgb, m_pose

    def attention(self, x_rgb: Tensor, x_pose: Tensor) -> tuple[Tensor, Tensor]:
        """The re-weighting maps before the residual: ``[N, C1, T1, 1, 1]`` and ``[N, C2, T2, 1, 1]``."""
        out_rgb, out_pose, _, _ = self._attend(x_rgb, x_pose)
        return self.reweight(out_rgb, out_pose, x_rgb.shape[2], x_pose.shape[2])

    def forward(self, x_rgb: Tensor, x_pose: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_rgb, x_pose)`` -> ``(map_rgb * x_rgb + x_rgb, map_pose * x_pose + x_pose)``, same shapes."""
        m_rgb, m_pose = self.attention(x_rgb, x_pose)
        return m_rgb * x_rgb + x_rgb, m_pose * x_pose + x_pose

    def _check(self, x_rgb: Tensor, x_pose: Tensor) -> None:
        if x_rgb.dim() != 5 or x_pose.dim() != 5:
            raise ValueError(
                f"CrossModalFusion: expected [N, C, T, H, W] maps, got {list(x_rgb.shape)} and {list(x_pose.shape)}"
            )
        if x_rgb.shape[1] != self.rgb_channels or x_pose.shape[1] != self.pose_channels:
            raise ValueError(
                f"CrossModalFusion: expected {self.rgb_channels} RGB / {self.pose_channels} pose "
                f"channels, got {x_rgb.shape[1]} / {x_pose.shape[1]}"
            )
        if x_rgb.shape[0] != x_pose.shape[0]:
            raise ValueError(f"CrossModalFusion: batch sizes differ ({x_rgb.shape[0]} vs {x_pose.shape[0]})")

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}, tokens={self.tokens}, speed_ratio={self.speed_ratio}"


def _resample(x: Tensor, length: int) -> Tensor:
    """``[N, C, L]`` -> ``[N, C, length]`` by nearest-neighbour interpolation (identity when equal)."""
    return x if x.shape[-1] == length else F.interpolate(x, size=length, mode="nearest")
