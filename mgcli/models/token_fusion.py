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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgcli.errors import MgError

__all__ = ["TokenFusion", "token_fusion"]

VIDEO_TOKENS = ("temporal", "all", "cls")
SKELETON_TOKENS = ("temporal", "joint", "pooled")


class TokenFusion(nn.Module):
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
        self, video: nn.Module, skeleton: nn.Module, num_classes: int, width: int = 256, depth: int = 2,
        heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.1, video_tokens: str = "temporal",
        skeleton_tokens: str = "temporal", max_tokens: int = 1024, freeze_backbones: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        if video_tokens not in VIDEO_TOKENS:
            raise ValueError(f"video_tokens must be one of {', '.join(VIDEO_TOKENS)}, not {video_tokens!r}")
        if skeleton_tokens not in SKELETON_TOKENS:
            raise ValueError(f"skeleton_tokens must be one of {', '.join(SKELETON_TOKENS)}, not {skeleton_tokens!r}")
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
        self.proj = nn.ModuleDict({
            "rgb": nn.Sequential(nn.LayerNorm(video.embed_dim), nn.Linear(video.embed_dim, width)),
            "skeleton": nn.Sequential(nn.LayerNorm(skeleton.out_channels), nn.Linear(skeleton.out_channels, width)),
        })  # fmt: skip
        self.modality = nn.Parameter(torch.zeros(2, width))
        self.pos = nn.ParameterDict({m: nn.Parameter(torch.zeros(max_tokens, width)) for m in self.modalities})
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        for p in (self.modality, self.cls, *self.pos.values()):
            nn.init.trunc_normal_(p, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, int(width * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
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

    def forward(self, rgb: torch.Tensor, skeleton: torch.Tensor, present: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Logits ``[N, num_classes]``. ``present`` ``[N, 2]`` (bool) masks an absent modality's
        tokens; ``labels`` is accepted for the training loop's interface and not used."""
        v = self._embed(self.rgb_tokens(rgb), "rgb")
        s = self._embed(self.skeleton_token_seq(skeleton), "skeleton")
        n = v.shape[0]
        x = torch.cat([self.cls.expand(n, -1, -1), v, s], dim=1)
        mask = None
        if present is not None:
            present = present.to(device=x.device, dtype=torch.bool)
            mask = torch.cat([
                torch.zeros(n, 1, dtype=torch.bool, device=x.device),
                (~present[:, 0:1]).expand(n, v.shape[1]),
                (~present[:, 1:2]).expand(n, s.shape[1]),
            ], dim=1)  # fmt: skip
        x = self.encoder(x, src_key_padding_mask=mask)
        return self.head(self.norm(x[:, 0]))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)}

    # ------------------------------------------------------------------ branch initialisation

    def load_branches(self, states: dict[str, dict[str, torch.Tensor]]) -> dict[str, list[str]]:
        """Copy the ``rgb`` (MViT branch) and ``skeleton`` (AGCN branch) checkpoints' backbone
        weights into the two backbones (their classifier heads are not used). Returns the tensor
        names loaded, left new and unused, like RGBPoseConv3D's merge."""
        report: dict[str, list[str]] = {"loaded": [], "padded": [], "new": [], "unused": []}
        for mod, module, prefix in (("rgb", self.video, "video."), ("skeleton", self.skeleton, "skeleton.")):
            own = module.state_dict()
            take = {}
            for k, t in states[mod].items():
                if k in own and own[k].shape == t.shape:
                    take[k] = t
                else:
                    report["unused"].append(f"{mod}:{k}")
            module.load_state_dict(take, strict=False)
            report["loaded"] += [prefix + k for k in take]
        loaded = set(report["loaded"])
        report["new"] = [k for k in self.state_dict() if k not in loaded]
        if not any(k.startswith("video.") for k in loaded) or not any(k.startswith("skeleton.") for k in loaded):
            raise MgError("the branch checkpoints fill none of one backbone's weights (other model sizes?)")
        return report


def token_fusion(
    num_classes: int,
    rgb_in_channels: int = 3,
    skeleton_in_channels: int = 3,
    video: dict[str, Any] | None = None,
    skeleton: dict[str, Any] | None = None,
    width: int = 256,
    depth: int = 2,
    heads: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.1,
    video_tokens: str = "temporal",
    skeleton_tokens: str = "temporal",
    max_tokens: int = 1024,
    freeze_backbones: bool = False,
) -> TokenFusion:
    """The MiGA 2025 classifier: MViTv2-S (``video``: options of :func:`mgcli.models.mvit.mvit_v2_s`)
    and 2s-AGCN (``skeleton``: options of :func:`mgcli.models.agcn.agcn`) fused over their tokens.
    Paper size: MViTv2-S at 16 x 224², a joint-stream AGCN, a 2-layer 256-wide fusion transformer."""
    from mgcli.models.agcn import agcn
    from mgcli.models.mvit import mvit_v2_s

    if rgb_in_channels != 3:
        raise ValueError(f"the video backbone reads 3-channel RGB, not {rgb_in_channels} channels")
    v = mvit_v2_s(num_classes, **(video or {}))
    s = agcn(num_classes, in_channels=skeleton_in_channels, **(skeleton or {}))
    return TokenFusion(v, s, num_classes, width, depth, heads, mlp_ratio, dropout, video_tokens, skeleton_tokens,
                       max_tokens, freeze_backbones)  # fmt: skip
