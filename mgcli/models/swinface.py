"""SwinFace (Qin et al., arXiv 2308.11509): the face-recognition embedding of 112x112 aligned face crops.

SwinFace is a Swin-T backbone (patch 2, embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7, on
112x112 input: token maps 56, 28, 14 and 7) followed, for recognition, by an embedding head
``feature = Linear(768, 768, no bias) -> BatchNorm1d(768, eps 2e-5) -> Linear(768, 512, no bias) ->
BatchNorm1d(512, eps 2e-5)`` on the final LayerNorm + average-pooled tokens. The face-analysis
parts of the published model (feature attention module, task subnets, output module) are not part
of this embedding and are not built here. The emotion track only needs the 512-d embedding.

Built on torchvision's ``SwinTransformer`` (``patch_size=[2, 2]``, ``window_size=[7, 7]``); its
computation agrees with the reference code for this configuration:

- PatchMerging concatenates the 2x2 neighbours in the same order (``x[0::2, 0::2]``,
  ``x[1::2, 0::2]``, ``x[0::2, 1::2]``, ``x[1::2, 1::2]``, row index first), then LayerNorm(4C)
  and a bias-free Linear(4C, 2C); the reference keeps it at the end of ``layers.N``, torchvision
  as its own ``features`` entry.
- The relative-position table is ``[(2*7-1)**2, heads]`` indexed the same way; torchvision keeps
  the index flattened (``[2401]``) where the reference keeps ``[49, 49]``. The index and the
  reference's shifted-window ``attn_mask`` buffers are recomputed here, so they are checked
  (index values, mask shapes) and then skipped by the loader, which says so in its report.
- Shifted windows: every second block shifts by 3; both codes drop the shift where the token map
  is not larger than the window (the reference: ``min(resolution) <= window``; torchvision:
  ``window >= padded size``), i.e. in the 7x7 last stage. The reference would also shrink the window
  to a smaller map; no stage here is smaller than 7, so that never applies. Masks use -100 in both.
- LayerNorm eps 1e-5, qkv and projection biases, MLP ratio 4 with GELU, scale ``head_dim ** -0.5``.
- The one difference: the reference runs some linear layers under CUDA autocast (fp16) and the
  attention in fp32; here everything runs in the module's dtype. That changes results only by
  rounding.

Choices: dropout, attention dropout and stochastic depth (drop path) are 0, so the embedding is
deterministic (the reference trains with drop path 0.1; at inference it is off either way); the
reference backbone's ``head`` (Linear(768, 512)) is not used by its ``forward`` and is left out;
the embedding is returned as the reference returns it, not L2-normalised (compare with cosine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgcli.errors import MgError
from mgcli.models.weights import LoadReport, _reason, load_weights

__all__ = [
    "DEPTHS",
    "EMBED_DIM",
    "IMG_SIZE",
    "NUM_HEADS",
    "OUT_DIM",
    "SwinFace",
    "load_swinface",
    "map_swinface_state",
    "read_swinface_checkpoint",
    "swinface",
    "swinface_key",
]

IMG_SIZE = 112
PATCH_SIZE = 2
EMBED_DIM = 96
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (3, 6, 12, 24)
WINDOW = 7
OUT_DIM = 512
NUM_FEATURES = EMBED_DIM * 2 ** (len(DEPTHS) - 1)  # 768
BN_EPS = 2e-5

# The entries of the published checkpoint: only the backbone carries the embedding.
BACKBONE_ENTRY = "state_dict_backbone"
ANALYSIS_ENTRIES = ("state_dict_fam", "state_dict_tss", "state_dict_om")


class SwinFace(nn.Module):
    """SwinFace's recognition embedding: ``[N, 3, 112, 112]`` RGB -> ``[N, 512]``.

    Input convention: uint8 (0..255) is scaled to [-1, 1] inside, ``(x / 255 - 0.5) / 0.5`` as the
    reference preprocesses; a floating-point input is taken as already scaled to [-1, 1] and used as
    it is. Channels are RGB (the reference converts OpenCV's BGR to RGB before the network).

    ``backbone``: torchvision's ``SwinTransformer`` with its head replaced by ``nn.Identity`` (it
    returns the 768-d LayerNorm + average-pooled tokens); ``feature``: the reference's embedding
    head. ``load_reports``: the :class:`LoadReport` of each weight load (empty: random init).
    The BatchNorm layers make it an inference module: use it in ``eval()`` mode.
    """

    embed_dim = OUT_DIM
    out_dim = OUT_DIM

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.swin_transformer import SwinTransformer

        self.backbone = SwinTransformer(
            patch_size=[PATCH_SIZE, PATCH_SIZE],
            embed_dim=EMBED_DIM,
            depths=list(DEPTHS),
            num_heads=list(NUM_HEADS),
            window_size=[WINDOW, WINDOW],
            mlp_ratio=4.0,
            dropout=0.0,
            attention_dropout=0.0,
            stochastic_depth_prob=0.0,
        )
        self.backbone.head = nn.Identity()
        self.feature = nn.Sequential(
            nn.Linear(NUM_FEATURES, NUM_FEATURES, bias=False),
            nn.BatchNorm1d(NUM_FEATURES, eps=BN_EPS),
            nn.Linear(NUM_FEATURES, OUT_DIM, bias=False),
            nn.BatchNorm1d(OUT_DIM, eps=BN_EPS),
        )
        self.load_reports: list[LoadReport] = []

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """Check the shape; uint8 -> float in [-1, 1], floats unchanged."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, IMG_SIZE, IMG_SIZE):
            raise ValueError(f"SwinFace takes [N, 3, {IMG_SIZE}, {IMG_SIZE}] RGB crops, got {list(x.shape)}")
        if x.dtype == torch.uint8:
            return x.float().div(255.0).sub(0.5).div(0.5)
        if not x.is_floating_point():
            raise ValueError(f"SwinFace takes uint8 or floating-point input, got {x.dtype}")
        return x

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 768-d final-stage features: LayerNorm, then the mean over the 7x7 tokens."""
        return self.backbone(self.preprocess(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature(self.pooled(x))


# --------------------------------------------------------------------------- reference key names

_BLOCK = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)")
_DOWN = re.compile(r"layers\.(\d+)\.downsample\.((?:reduction|norm)\..+)")
_BLOCK_PARTS = {  # reference sub-name prefix in a block -> ours (torchvision's MLP is a Sequential)
    "norm1.": "norm1.",
    "norm2.": "norm2.",
    "attn.qkv.": "attn.qkv.",
    "attn.proj.": "attn.proj.",
    "attn.relative_position_bias_table": "attn.relative_position_bias_table",
    "attn.relative_position_index": "attn.relative_position_index",
    "mlp.fc1.": "mlp.0.",
    "mlp.fc2.": "mlp.3.",
}


def swinface_key(key: str) -> str | None:
    """A reference backbone name -> ours (None: no place here, e.g. ``head.*`` or ``attn_mask``).

    ``patch_embed.proj`` / ``patch_embed.norm`` -> ``backbone.features.0.0`` / ``.0.2``;
    ``layers.N.blocks.M.*`` -> ``backbone.features.{2N+1}.M.*`` (``mlp.fc1`` / ``mlp.fc2`` ->
    ``mlp.0`` / ``mlp.3``); ``layers.N.downsample.*`` -> ``backbone.features.{2N+2}.*``;
    ``norm`` -> ``backbone.norm``; ``feature.K`` -> ``feature.K``. Stage and block numbers are not
    range-checked here: a name outside the architecture has no tensor to fill and the loader
    reports it.
    """
    for ref, ours in (("patch_embed.proj.", "backbone.features.0.0."), ("patch_embed.norm.", "backbone.features.0.2.")):
        if key.startswith(ref):
            return ours + key[len(ref) :]
    if key.startswith("norm."):
        return "backbone." + key
    if key.startswith("feature."):
        return key
    m = _BLOCK.fullmatch(key)
    if m:
        stage, block, rest = int(m[1]), m[2], m[3]
        for ref, ours in _BLOCK_PARTS.items():
            if rest.startswith(ref):
                return f"backbone.features.{2 * stage + 1}.{block}.{ours}{rest[len(ref) :]}"
        return None
    m = _DOWN.fullmatch(key)
    if m:
        return f"backbone.features.{2 * int(m[1]) + 2}.{m[2]}"
    return None


def _reference_skips() -> tuple[str, ...]:
    """Reference tensors the loader leaves out: the unused classification ``head`` and the
    shifted-window masks (recomputed by torchvision on the fly)."""
    masks = tuple(f"layers.{i}.blocks.{j}.attn_mask" for i, depth in enumerate(DEPTHS) for j in range(depth))
    return ("head.", *masks)


def _our_index_names() -> list[str]:
    return [
        f"backbone.features.{2 * i + 1}.{j}.attn.relative_position_index"
        for i, depth in enumerate(DEPTHS)
        for j in range(depth)
    ]


def _expected_index() -> torch.Tensor:
    """The ``[49, 49]`` relative-position index both codes build for a 7x7 window."""
    coords = torch.stack(torch.meshgrid(torch.arange(WINDOW), torch.arange(WINDOW), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (WINDOW - 1)
    return rel[..., 0] * (2 * WINDOW - 1) + rel[..., 1]


def _check_recomputed(state: Mapping[str, torch.Tensor], source: str) -> None:
    """The buffers the loader skips must be the ones this architecture recomputes: the same
    relative-position index and masks of ``[windows, 49, 49]`` (else: another window or input size)."""
    index = _expected_index()
    side = IMG_SIZE // PATCH_SIZE
    for key, value in state.items():
        if key.endswith("attn.relative_position_index"):
            if value.numel() != index.numel() or not torch.equal(value.reshape(index.shape).to(index.dtype), index):
                raise MgError(
                    f"{source}: {key!r} ({list(value.shape)}) is not the relative-position index of a "
                    f"{WINDOW}x{WINDOW} window (another window size?)"
                )
        m = _BLOCK.fullmatch(key)
        if m and m[3] == "attn_mask" and int(m[1]) < len(DEPTHS):
            n = (side >> int(m[1])) // WINDOW
            if list(value.shape) != [n * n, WINDOW**2, WINDOW**2]:
                raise MgError(
                    f"{source}: {key!r} has shape {list(value.shape)}, expected {[n * n, WINDOW**2, WINDOW**2]} "
                    f"(another input size or window?)"
                )


def _unwrap(state: Mapping[str, Any], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(backbone state, names of the other checkpoint entries). A bare backbone state dict is taken
    as it is; a leading ``module.`` (a DistributedDataParallel save) is dropped from every name."""
    others: list[str] = []
    if BACKBONE_ENTRY in state:
        backbone = state[BACKBONE_ENTRY]
        others = [str(k) for k in state if k != BACKBONE_ENTRY]
        if not isinstance(backbone, Mapping):
            raise MgError(f"{source}: {BACKBONE_ENTRY!r} is not a state dict")
    else:
        backbone = state
    if not backbone or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in backbone.items()):
        raise MgError(
            f"{source}: expected a SwinFace checkpoint ({BACKBONE_ENTRY!r}, ...) or a backbone state dict "
            "(parameter name -> tensor)"
        )
    if all(k.startswith("module.") for k in backbone):
        backbone = {k[len("module.") :]: v for k, v in backbone.items()}
    return dict(backbone), others


def map_swinface_state(state: Mapping[str, Any], source: str = "SwinFace state") -> dict[str, torch.Tensor]:
    """A reference backbone state dict (or the whole checkpoint, whose ``state_dict_backbone`` is
    taken) under our module's names (see :func:`swinface_key`).

    Left out: the other checkpoint entries (face analysis, not the embedding), the reference
    ``head`` (unused by its forward) and the buffers torchvision recomputes (``attn_mask``;
    ``relative_position_index``, checked to equal ours first). A name with no place here is an
    :class:`MgError` (a foreign state dict), as is a recomputed buffer that does not match.
    """
    backbone, _ = _unwrap(state, source)
    _check_recomputed(backbone, source)
    skips = _reference_skips()
    out: dict[str, torch.Tensor] = {}
    foreign: list[str] = []
    for key, value in backbone.items():
        if key.startswith(skips) or key.endswith("attn.relative_position_index"):
            continue
        name = swinface_key(key)
        if name is None:
            foreign.append(key)
        else:
            out[name] = value
    if foreign:
        raise MgError(
            f"{source}: {len(foreign)} tensors are not SwinFace backbone names (e.g. {', '.join(foreign[:3])})"
        )
    return out


# --------------------------------------------------------------------------- loading


def read_swinface_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(backbone state dict, names of the checkpoint's other entries) from a SwinFace file.

    The published checkpoint is a dict of state dicts (``state_dict_backbone``, ``state_dict_fam``,
    ``state_dict_tss``, ``state_dict_om``; training saves may add the optimiser and scheduler),
    which :func:`mgcli.models.weights.read_state_dict` refuses, so it is read here, with the same
    ``torch.load(weights_only=True)`` (no code is run from the file). A bare backbone state dict
    is accepted too. Missing, unreadable or foreign files: one :class:`MgError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MgError("pretrained weights not found (a SwinFace checkpoint, e.g. checkpoint_step_79999_gpu_0.pt)", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and runtime errors for foreign or damaged files
        raise MgError(f"not a loadable checkpoint ({_reason(e)})", path) from None
    if not isinstance(ckpt, Mapping):
        raise MgError(f"expected a SwinFace checkpoint (a dict), got {type(ckpt).__name__}", path)
    try:
        return _unwrap(ckpt, "SwinFace checkpoint")
    except MgError as e:
        raise MgError(e.message.removeprefix("SwinFace checkpoint: "), path) from None


def load_swinface(model: SwinFace, path: str | Path) -> LoadReport:
    """Load a SwinFace checkpoint into ``model`` through :func:`mgcli.models.weights.load_weights`
    (strict: every tensor of the model is filled and every backbone tensor has a place, shapes
    equal) and return its :class:`LoadReport`, also appended to ``model.load_reports``.

    In the report: ``loaded`` our names filled; ``skipped`` the reference ``head.*``, the
    ``attn_mask`` buffers and the ``relative_position_index`` buffers (checked, then recomputed
    by torchvision); ``unused`` the checkpoint's other entries by name (``state_dict_fam``,
    ``state_dict_tss``, ``state_dict_om``, ...: the face-analysis parts, not the embedding).
    """
    source = f"SwinFace checkpoint {path}"
    backbone, others = read_swinface_checkpoint(path)
    _check_recomputed(backbone, source)
    report = load_weights(
        model,
        backbone,
        source=source,
        rename=swinface_key,
        skip=(*_reference_skips(), *_our_index_names()),
    )
    report.unused.extend(others)
    model.load_reports.append(report)
    return report


def swinface(pretrained: str | Path | None = None) -> SwinFace:
    """The SwinFace embedding network, in ``eval()`` mode; ``pretrained``: a SwinFace checkpoint
    path (see :func:`load_swinface`; the weights are on no registry), or None for random init
    (``load_reports`` stays empty)."""
    model = SwinFace()
    if pretrained is not None and str(pretrained) != "":
        load_swinface(model, pretrained)
    return model.eval()
