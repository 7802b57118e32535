"""InterFusion (the MiGA 2025 emotion model): attention fusion of a video's embedding streams.

The seed system (Track 3, win or lose per interview video) fuses SwinFace face embeddings and
MViTv2-S context embeddings with a module its paper only names "InterFusion"; this design is ours:

- **inputs** (keyword tensors, the contract of :mod:`mgcli.models.base`; what
  :class:`mgcli.data.embeddings.EmbeddingWindows` gives): for each stream ``s`` of
  :attr:`InterFusion.streams` (``face``, ``context`` and optionally ``gesture``, per-clip
  micro-gesture probabilities), ``s`` float ``[N, T_s, D_s]``, ``s_mask`` bool ``[N, T_s]`` (True:
  the step is present; False: padding, no face, dropped) and ``s_time`` float ``[N, T_s]``
  (seconds since the window's start). Inputs of streams the model does not use are ignored, and so
  is ``labels``. The output is logits ``[N, num_classes]``.
- **tokens**: per stream, LayerNorm and a Linear projection to ``width``, plus a learned modality
  embedding and a fixed sinusoidal embedding of ``s_time`` (periods geometric from
  :data:`MIN_PERIOD` = 0.5 s to :data:`MAX_PERIOD` = 1000 s: sub-second steps to minutes). Masked
  steps' values and times are zeroed first, so even NaN or infinite padding cannot leak.
- **fusion layers** (``layers`` of them, pre-norm residual, own weights per stream): masked
  self-attention within each stream, then masked cross-attention of each stream to the
  concatenation of the other streams' tokens (computed from the same snapshot, so the streams are
  treated symmetrically), then an MLP (hidden ``2 x width``, GELU). ``nn.MultiheadAttention`` with
  ``key_padding_mask``; a query row whose keys are all masked (an absent stream, or an absent
  other stream) gets a zero update, explicitly, instead of the NaN a softmax over no keys gives.
  With one stream there is no cross-attention (the ablations ``emotion_face`` /
  ``emotion_context``).
- **pooling**: per stream, attention pooling over its present steps (a learned query, masked
  softmax, after a final LayerNorm); the pooled vectors of the streams present in a sample are
  averaged (absent ones left out, so a missing stream does not shift the others; no stream present
  at all gives a zero vector), then dropout and a Linear classifier.

So a masked step's values, and an entirely absent stream's values, do not change the logits, and
samples never attend across the batch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import nn

from mgcli.errors import MgError
from mgcli.models.base import MgModel

__all__ = [
    "MAX_PERIOD",
    "MIN_PERIOD",
    "STREAMS",
    "FusionLayer",
    "InterFusion",
    "emotion_context",
    "emotion_face",
    "interfusion",
    "time_embedding",
]

Stream = Literal["face", "context", "gesture"]
STREAMS: tuple[str, ...] = ("face", "context", "gesture")
MIN_PERIOD = 0.5  # seconds: the shortest period of the time embedding (steps are a few per second)
MAX_PERIOD = 1000.0  # seconds: the longest (windows and videos run to minutes)


def time_embedding(t: torch.Tensor, periods: torch.Tensor) -> torch.Tensor:
    """Sinusoidal embedding ``[..., 2 * len(periods)]`` of times ``t`` (seconds): ``sin`` then
    ``cos`` of ``2 pi t / period`` for each period, in float32."""
    angles = t.float().unsqueeze(-1) * (2 * math.pi / periods)
    return torch.cat([angles.sin(), angles.cos()], -1)


def masked_attention(
    attn: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, key_present: torch.Tensor
) -> torch.Tensor:
    """``attn`` of ``query`` ``[N, L, W]`` over ``key`` ``[N, S, W]`` (also the values) where
    ``key_present`` ``[N, S]`` is True; rows of the batch without any present key get zeros."""
    has_key = key_present.any(1)
    # a row with no key attends to all of them (finite, any values) and is zeroed below
    padding = ~key_present & has_key.unsqueeze(1)
    out = attn(query, key, key, key_padding_mask=padding, need_weights=False)[0]
    return torch.where(has_key[:, None, None], out, torch.zeros((), dtype=out.dtype, device=out.device))


class FusionLayer(nn.Module):
    """One fusion layer over the streams' tokens: self-attention per stream, cross-attention of
    each stream to the others (when ``cross``), an MLP; pre-norm residuals, weights per stream."""

    def __init__(
        self, streams: tuple[str, ...], width: int, heads: int, dropout: float, cross: bool, mlp_ratio: float = 2.0
    ) -> None:
        super().__init__()
        self.streams, self.cross = streams, cross

        def per_stream(make: Any) -> nn.ModuleDict:
            return nn.ModuleDict({s: make() for s in streams})

        def attention() -> nn.MultiheadAttention:
            return nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)

        hidden = int(width * mlp_ratio)
        self.norm_self = per_stream(lambda: nn.LayerNorm(width))
        self.self_attn = per_stream(attention)
        if cross:
            self.norm_query = per_stream(lambda: nn.LayerNorm(width))
            self.norm_key = per_stream(lambda: nn.LayerNorm(width))
            self.cross_attn = per_stream(attention)
        self.norm_mlp = per_stream(lambda: nn.LayerNorm(width))
        self.mlp = per_stream(
            lambda: nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width))
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, h: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for s in self.streams:
            y = self.norm_self[s](h[s])
            out[s] = h[s] + self.drop(masked_attention(self.self_attn[s], y, y, present[s]))
        if self.cross:
            snap, out = out, {}
            for s in self.streams:
                others = [o for o in self.streams if o != s]
                keys = self.norm_key[s](torch.cat([snap[o] for o in others], 1))
                keys_present = torch.cat([present[o] for o in others], 1)
                update = masked_attention(self.cross_attn[s], self.norm_query[s](snap[s]), keys, keys_present)
                out[s] = snap[s] + self.drop(update)
        return {s: x + self.drop(self.mlp[s](self.norm_mlp[s](x))) for s, x in out.items()}


class InterFusion(MgModel):
    """Embedding streams to win/lose logits (the module doc gives the design).

    Args:
        num_classes: classes (2 for win/lose).
        in_dims: ``{stream: embedding size}``, in stream order (one to three of :data:`STREAMS`).
        width: the token width.
        layers: fusion layers (0: projection and pooling only).
        heads: attention heads (must divide ``width``).
        dropout: in attention, MLPs, residuals and before the classifier.
    """

    def __init__(
        self,
        num_classes: int,
        in_dims: Mapping[str, int],
        *,
        width: int = 256,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        streams = tuple(in_dims)
        if not streams or len(set(streams)) != len(streams) or not set(streams) <= set(STREAMS):
            raise ValueError(f"streams must be distinct names of {STREAMS}, got {streams}")
        if any(int(d) < 1 for d in in_dims.values()):
            raise ValueError(f"embedding sizes must be positive, got {dict(in_dims)}")
        if width < 2 or heads < 1 or width % heads:
            raise ValueError(f"width {width} must be at least 2 and divisible by heads {heads}")
        if layers < 0:
            raise ValueError(f"layers must be 0 or more, got {layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes, self.streams, self.width = num_classes, streams, width
        self.in_dims = {s: int(d) for s, d in in_dims.items()}
        self.input_norm = nn.ModuleDict({s: nn.LayerNorm(d) for s, d in self.in_dims.items()})
        self.proj = nn.ModuleDict({s: nn.Linear(d, width) for s, d in self.in_dims.items()})
        self.modality = nn.Parameter(torch.zeros(len(streams), width))
        half = width // 2
        periods = torch.logspace(math.log10(MIN_PERIOD), math.log10(MAX_PERIOD), half, dtype=torch.float32)
        self.register_buffer("periods", periods, persistent=False)
        self.layers = nn.ModuleList(
            FusionLayer(streams, width, heads, dropout, cross=len(streams) > 1) for _ in range(layers)
        )
        self.norm = nn.ModuleDict({s: nn.LayerNorm(width) for s in streams})
        self.pool_query = nn.Parameter(torch.zeros(len(streams), width))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)
        nn.init.trunc_normal_(self.modality, std=0.02)
        nn.init.trunc_normal_(self.pool_query, std=0.02)

    def _inputs(self, inputs: Mapping[str, Any], s: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        names = (s, f"{s}_mask", f"{s}_time")
        missing = [k for k in names if k not in inputs]
        if missing:
            raise MgError(
                f"InterFusion over {'+'.join(self.streams)}: input {', '.join(missing)} missing (got "
                f"{', '.join(sorted(inputs)) or 'none'}); does data.path / data.streams give the {s} stream?"
            )
        x, mask, t = (inputs[k] for k in names)
        if x.dim() != 3 or x.shape[-1] != self.in_dims[s] or mask.shape != x.shape[:2] or t.shape != x.shape[:2]:
            raise MgError(
                f"InterFusion: stream {s} must be [N, T, {self.in_dims[s]}] with mask and time [N, T], got "
                f"{tuple(x.shape)}, {tuple(mask.shape)} and {tuple(t.shape)} (model.{s}_dim disagrees with the data?)"
            )
        return x, mask.bool(), t

    def _tokens(self, i: int, s: str, x: torch.Tensor, present: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = torch.where(present.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        tok = self.proj[s](self.input_norm[s](x)) + self.modality[i]
        emb = time_embedding(torch.where(present, t.float(), 0.0), self.periods)
        if emb.shape[-1] < self.width:  # odd width: the last channel carries no time
            emb = nn.functional.pad(emb, (0, self.width - emb.shape[-1]))
        return tok + emb.to(tok.dtype)

    def _pool(self, i: int, s: str, h: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        y = self.norm[s](h)
        scores = (y @ self.pool_query[i].to(y.dtype)).float() / math.sqrt(self.width)
        has_step = present.any(1, keepdim=True)
        scores = scores.masked_fill(~present & has_step, float("-inf"))  # rows with no step: zeroed below
        weights = torch.where(present, scores.softmax(1), torch.zeros((), device=scores.device))
        return (weights.unsqueeze(-1).to(y.dtype) * y).sum(1)

    def forward(self, labels: torch.Tensor | None = None, **inputs: Any) -> torch.Tensor:
        h, present = {}, {}
        for i, s in enumerate(self.streams):
            x, present[s], t = self._inputs(inputs, s)
            h[s] = self._tokens(i, s, x, present[s], t)
        for layer in self.layers:
            h = layer(h, present)
        pooled = torch.stack([self._pool(i, s, h[s], present[s]) for i, s in enumerate(self.streams)], 1)
        here = torch.stack([present[s].any(1) for s in self.streams], 1).to(pooled.dtype)  # [N, S]
        fused = (pooled * here.unsqueeze(-1)).sum(1) / here.sum(1, keepdim=True).clamp(min=1)
        return self.head(self.dropout(fused))


def interfusion(
    num_classes: int,
    streams: tuple[Stream, ...] = ("face", "context"),
    *,
    face_dim: int = 512,
    context_dim: int = 768,
    gesture_dim: int = 32,
    width: int = 256,
    layers: int = 2,
    heads: int = 4,
    dropout: float = 0.1,
) -> InterFusion:
    """InterFusion over ``streams`` (``face`` SwinFace 512-d, ``context`` MViTv2-S 768-d, ``gesture``
    micro-gesture probabilities); the ``{stream}_dim`` of streams not used are ignored (the data
    fills them in for every stream it has)."""
    dims = {"face": face_dim, "context": context_dim, "gesture": gesture_dim}
    if not streams or len(set(streams)) != len(streams) or not set(streams) <= set(dims):
        raise ValueError(f"streams must be distinct names of {STREAMS}, got {list(streams)}")
    return InterFusion(
        num_classes, {s: dims[s] for s in streams}, width=width, layers=layers, heads=heads, dropout=dropout
    )


def _one_stream(stream: str, doc: str) -> Callable[..., InterFusion]:
    """A builder of InterFusion over ``stream`` alone, taking the options of :func:`interfusion`
    but ``streams`` (its signature, so option checking sees the same parameters; the dims of the
    other streams are accepted, as the data fills them in, and unused)."""

    def build(num_classes: int, **options: Any) -> InterFusion:
        return interfusion(num_classes, (stream,), **options)

    sig = inspect.signature(interfusion)
    build.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "streams"])
    build.__annotations__ = {k: v for k, v in interfusion.__annotations__.items() if k != "streams"}
    build.__name__ = build.__qualname__ = f"emotion_{stream}"
    build.__doc__ = doc
    return build


emotion_face = _one_stream("face", "The face-only ablation: InterFusion over the ``face`` stream (no cross-attention).")
emotion_context = _one_stream(
    "context", "The context-only ablation: InterFusion over the ``context`` stream (no cross-attention)."
)
