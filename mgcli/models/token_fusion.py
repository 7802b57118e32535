"""Cross-Modal Token Fusion (the MiGA 2025 classifier): MViTv2-S video tokens and 2s-AGCN skeleton
tokens in one transformer.

The paper gives no design beyond its name; this is the natural reading the method notes give:
each backbone's tokens are projected to a shared width, tagged with a learned modality embedding
and learned positions, and a transformer encoder runs over ``[class token, video tokens, skeleton
tokens]``; the class token's output goes to the classifier. Which tokens each backbone gives is
an option:

- video (MViT): ``temporal`` (the patch tokens averaged over space: one per time step, the
  default), ``all`` (every patch token) or ``cls`` (MViT's class token alone);
- skeleton (AGCN): ``temporal`` (averaged over joints and persons: one per time step, the
  default), ``joint`` (averaged over time and persons: one per joint) or ``pooled`` (one token).

A sample whose skeleton was not detected (``present[:, 1]`` false) has its skeleton tokens masked
out of the attention, and the same for video; the class token is never masked. Backbones can start
from trained branch checkpoints (:meth:`TokenFusion.load_branches`) and be frozen
(``freeze_backbones``).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from mgcli.models.base import MgModel

if TYPE_CHECKING:
    from mgcli.models.weights import LoadReport

__all__ = ["TokenFusion", "token_fusion"]

VideoTokens = Literal["temporal", "all", "cls"]
SkeletonTokens = Literal["temporal", "joint", "pooled"]


class TokenFusion(MgModel):
    """Video + skeleton backbones, token projection, a transformer encoder and a classifier.

    Args:
        video: a :class:`mgcli.models.mvit.VideoMViT` (its ``tokens`` are used, not its head).
        skeleton: a :class:`mgcli.models.agcn.AGCN` (its ``features`` are used, not its head).
        num_classes: classes.
        width, depth, heads, mlp_ratio, dropout: the fusion transformer.
        video_tokens, skeleton_tokens: which tokens each backbone gives (module doc).
        max_tokens: learned positions per modality (tokens beyond it are refused).
        freeze_backbones: keep both backbones fixed (no gradients, batch-norm statistics frozen).
    """

    modalities = ("rgb", "skeleton")
    branch_inputs = {"rgb": "frames", "skeleton": "poses"}  # what each branch checkpoint must read

    def __init__(
        self,
        video: nn.Module,
        skeleton: nn.Module,
        num_classes: int,
        *,
        width: int = 256,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        video_tokens: VideoTokens = "temporal",
        skeleton_tokens: SkeletonTokens = "temporal",
        max_tokens: int = 1024,
        freeze_backbones: bool = False,
    ) -> None:
        super().__init__()
        if video_tokens not in typing.get_args(VideoTokens) or skeleton_tokens not in typing.get_args(SkeletonTokens):
            raise ValueError(
                f"video_tokens must be one of {typing.get_args(VideoTokens)} and skeleton_tokens one "
                f"of {typing.get_args(SkeletonTokens)}, got {video_tokens!r} and {skeleton_tokens!r}"
            )
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        if depth < 1 or max_tokens < 1:
            raise ValueError("depth and max_tokens must be at least 1")
        self.video, self.skeleton = video, skeleton
        skeleton.fc = nn.Identity()  # the branches' classifiers are not used: the fusion has its own
        video.net.head = nn.Identity()
        self.num_classes = num_classes
        self.video_tokens, self.skeleton_tokens = video_tokens, skeleton_tokens
        self.freeze_backbones = freeze_backbones
        self.proj = nn.ModuleDict(
            {
                "rgb": nn.Sequential(nn.LayerNorm(video.embed_dim), nn.Linear(video.embed_dim, width)),
                "skeleton": nn.Sequential(nn.LayerNorm(skeleton.out_channels), nn.Linear(skeleton.out_channels, width)),
            }
        )
        self.modality = nn.Parameter(torch.zeros(2, width))
        self.pos = nn.ParameterDict({m: nn.Parameter(torch.zeros(max_tokens, width)) for m in self.modalities})
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        for p in (self.modality, self.cls, *self.pos.values()):
            nn.init.trunc_normal_(p, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, int(width * mlp_ratio), dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        nn.init.normal_(self.head[1].weight, std=0.01)
        nn.init.zeros_(self.head[1].bias)
        if freeze_backbones:
            for p in (*video.parameters(), *skeleton.parameters()):
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> TokenFusion:
        super().train(mode)
        if self.freeze_backbones:  # frozen backbones keep their batch-norm statistics
            self.video.eval()
            self.skeleton.eval()
        return self

    # ------------------------------------------------------------------ tokens

    def rgb_tokens(self, rgb: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> video tokens ``[N, n_v, embed_dim]``."""
        tokens, (t, h, w) = self.video.tokens(rgb)
        if self.video_tokens == "cls":
            return tokens[:, :1]
        patches = tokens[:, 1:]
        if self.video_tokens == "all":
            return patches
        return patches.reshape(patches.shape[0], t, h * w, -1).mean(2)

    def skeleton_token_seq(self, skeleton: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, V, M]`` -> skeleton tokens ``[N, n_s, out_channels]``."""
        feat = self.skeleton.features(skeleton)  # [N, M, C, T', V]
        if self.skeleton_tokens == "temporal":
            return feat.mean(dim=(1, 4)).transpose(1, 2)
        if self.skeleton_tokens == "joint":
            return feat.mean(dim=(1, 3)).transpose(1, 2)
        return feat.mean(dim=(1, 3, 4))[:, None]

    def _embed(self, tokens: torch.Tensor, modality: str) -> torch.Tensor:
        n = tokens.shape[1]
        if n > self.pos[modality].shape[0]:
            raise ValueError(f"{n} {modality} tokens but only {self.pos[modality].shape[0]} positions (max_tokens)")
        i = self.modalities.index(modality)
        return self.proj[modality](tokens) + self.modality[i] + self.pos[modality][:n]

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        rgb: torch.Tensor,
        skeleton: torch.Tensor,
        present: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``[N, num_classes]``. ``present`` ``[N, 2]`` (bool) masks an absent modality's
        tokens; ``labels`` is accepted for the training loop's interface and not used."""
        v = self._embed(self.rgb_tokens(rgb), "rgb")
        s = self._embed(self.skeleton_token_seq(skeleton), "skeleton")
        n = v.shape[0]
        x = torch.cat([self.cls.expand(n, -1, -1), v, s], dim=1)
        mask = None
        if present is not None:
            present = present.to(device=x.device, dtype=torch.bool)
            mask = torch.cat(
                [
                    torch.zeros(n, 1, dtype=torch.bool, device=x.device),
                    (~present[:, 0:1]).expand(n, v.shape[1]),
                    (~present[:, 1:2]).expand(n, s.shape[1]),
                ],
                dim=1,
            )
        x = self.encoder(x, src_key_padding_mask=mask)
        return self.head(self.norm(x[:, 0]))

    def check_view(self, view: Any, where: str | Path | None = None) -> None:
        """The RGB clip must fit the video backbone's fixed input size."""
        self.video.check_view(view, where)

    # ------------------------------------------------------------------ branch initialisation

    def load_branches(self, states: dict[str, dict[str, torch.Tensor]]) -> LoadReport:
        """Copy the ``rgb`` (MViT branch) and ``skeleton`` (AGCN branch) checkpoints' weights into
        the two backbones; their classifier heads are not used (skipped). Every other tensor must
        fit exactly (one line naming the first that does not)."""
        from mgcli.models.weights import load_weights

        video = load_weights(self.video, states["rgb"], source="the rgb (MViT) branch", skip=("net.head.",))
        skeleton = load_weights(self.skeleton, states["skeleton"], source="the skeleton (AGCN) branch", skip=("fc.",))
        report = video.merge(skeleton)
        report.loaded = [f"video.{k}" for k in video.loaded] + [f"skeleton.{k}" for k in skeleton.loaded]
        report.skipped = [f"rgb:{k}" for k in video.skipped] + [f"skeleton:{k}" for k in skeleton.skipped]
        done = set(report.loaded)
        report.new = [k for k in self.state_dict() if k not in done]
        return report


def token_fusion(
    num_classes: int,
    *,
    video: dict[str, Any] | None = None,
    skeleton: dict[str, Any] | None = None,
    width: int = 256,
    depth: int = 2,
    heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
    video_tokens: VideoTokens = "temporal",
    skeleton_tokens: SkeletonTokens = "temporal",
    max_tokens: int = 1024,
    freeze_backbones: bool = False,
) -> TokenFusion:
    """The MiGA 2025 classifier: MViTv2-S (``video``: options of :func:`mgcli.models.mvit.mvit_v2_s`)
    and 2s-AGCN (``skeleton``: options of :func:`mgcli.models.agcn.agcn`) fused over their tokens.
    Paper size: MViTv2-S at 16 x 224², a joint-stream AGCN, a 2-layer 256-wide fusion transformer."""
    from mgcli.models.agcn import agcn
    from mgcli.models.mvit import mvit_v2_s

    v = mvit_v2_s(num_classes, **(video or {}))
    s = agcn(num_classes, **(skeleton or {}))
    return TokenFusion(
        v,
        s,
        num_classes,
        width=width,
        depth=depth,
        heads=heads,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
        video_tokens=video_tokens,
        skeleton_tokens=skeleton_tokens,
        max_tokens=max_tokens,
        freeze_backbones=freeze_backbones,
    )
