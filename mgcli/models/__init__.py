"""Recognition models by name: builders, their specs, and option checking for configs.

Each entry of :data:`MODELS` names a builder function whose keyword arguments are the options a
run config may set (``model: {name: posec3d_slowonly, base_channels: 32, ...}``).
:func:`build_model` checks those options against the builder's annotations, so a typo or a wrong
type is a one-line :class:`~mgcli.errors.MgError` rather than a traceback.

- ``posec3d_slowonly``: PoseConv3D's SlowOnly ResNet3d over pseudo-heatmap volumes
  (joints or limbs as channels), 48 x 56 x 56 in the paper.
- ``rgb_slowonly``: a SlowOnly ResNet-50 over RGB clips, 8 x 224 x 224, optionally inflated from
  ImageNet 2D weights; normalises uint8 frames on the device.
- ``rgbpose_conv3d``: the two-pathway RGBPoseConv3D (8 x 224 x 224 RGB + 32 x 56 x 56 heatmaps)
  with the optional Cross-Modal Fusion and Prototypical Refinement modules of the MiGA 2024 winner;
  per-modality logits.
- ``swin3d_t`` / ``swin3d_s`` / ``swin3d_b``: torchvision's Video Swin Transformer with our head
  (Kinetics-400 weights with ``pretrained: kinetics400`` where they can be downloaded).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mgcli import typecheck
from mgcli.errors import MgError
from mgcli.models.agcn import agcn
from mgcli.models.base import MgModel, Recognizer
from mgcli.models.classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier
from mgcli.models.heads import I3DHead
from mgcli.models.interfusion import emotion_context, emotion_face, interfusion
from mgcli.models.mvit import mvit_v2_s
from mgcli.models.resnet3d import Bottleneck3d, ResNet3d, inflate_2d_weights, load_resnet50_2d
from mgcli.models.rgbpose import PathwayOptions, RGBPoseClassifier, merge_branch_weights, rgbpose_conv3d
from mgcli.models.swin import swin3d_b, swin3d_s, swin3d_t
from mgcli.models.token_fusion import token_fusion

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "Bottleneck3d",
    "Classifier",
    "I3DHead",
    "MgModel",
    "ModelSpec",
    "Recognizer",
    "check_options",
    "ResNet3d",
    "build_model",
    "count_parameters",
    "inflate_2d_weights",
    "model_table",
    "merge_branch_weights",
    "posec3d_slowonly",
    "RGBPoseClassifier",
    "rgb_slowonly",
    "rgbpose_conv3d",
    "swin3d_b",
    "swin3d_s",
    "swin3d_t",
    "agcn",
    "mvit_v2_s",
    "token_fusion",
]


# --------------------------------------------------------------------------- builders


def posec3d_slowonly(
    num_classes: int,
    in_channels: int = 17,
    *,
    base_channels: int = 32,
    stage_blocks: tuple[int, ...] = (4, 6, 3),
    conv1_kernel: tuple[int, ...] = (1, 7, 7),
    conv1_stride: tuple[int, ...] = (1, 1),
    pool1_stride: tuple[int, ...] = (1, 1),
    inflate: tuple[int, ...] = (0, 1, 1),
    spatial_strides: tuple[int, ...] = (2, 2, 2),
    temporal_strides: tuple[int, ...] = (1, 1, 2),
    dropout: float = 0.5,
) -> Classifier:
    """PoseConv3D (SlowOnly, 3 stages, width 32) on heatmap volumes ``[N, K, T, 56, 56]``.

    ``in_channels`` is the number of joints or limbs. Heatmaps are already 0..1 floats, so the
    input is not normalised. A 48 x 56 x 56 clip gives a ``[N, 512, 24, 7, 7]`` feature map.
    """
    backbone = ResNet3d(
        in_channels,
        base_channels,
        stage_blocks,
        conv1_kernel,
        conv1_stride,
        pool1_stride,
        inflate,
        spatial_strides,
        temporal_strides,
    )
    return Classifier(backbone, I3DHead(backbone.out_channels, num_classes, dropout))


def rgb_slowonly(
    num_classes: int,
    in_channels: int = 3,
    *,
    base_channels: int = 64,
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3),
    conv1_kernel: tuple[int, ...] = (1, 7, 7),
    conv1_stride: tuple[int, ...] = (1, 2),
    pool1_stride: tuple[int, ...] = (1, 2),
    inflate: tuple[int, ...] = (0, 0, 1, 1),
    spatial_strides: tuple[int, ...] = (1, 2, 2, 2),
    temporal_strides: tuple[int, ...] = (1, 1, 1, 1),
    dropout: float = 0.5,
    pretrained: str | None = None,
) -> Classifier:
    """SlowOnly ResNet-50 on RGB clips ``[N, 3, T, 224, 224]`` (uint8 or 0..255 floats).

    Frames are normalised with the ImageNet mean/std inside the model (only when
    ``in_channels`` is 3; other inputs go in as they are). ``pretrained`` is
    ``"imagenet"`` (torchvision's ResNet-50 IMAGENET1K_V1) or a path to a torchvision-format 2D
    ResNet state dict; its kernels are inflated along time. An 8 x 224 x 224 clip gives a
    ``[N, 2048, 8, 7, 7]`` feature map.
    """
    backbone = ResNet3d(
        in_channels,
        base_channels,
        stage_blocks,
        conv1_kernel,
        conv1_stride,
        pool1_stride,
        inflate,
        spatial_strides,
        temporal_strides,
    )
    report = (
        inflate_2d_weights(backbone, load_resnet50_2d(pretrained), f"pretrained {pretrained!r}") if pretrained else None
    )
    mean = IMAGENET_MEAN if in_channels == 3 else None
    std = IMAGENET_STD if in_channels == 3 else None
    model = Classifier(backbone, I3DHead(backbone.out_channels, num_classes, dropout), mean, std)
    if report is not None:
        model.load_reports.append(report)
    return model


# --------------------------------------------------------------------------- the table of models


@dataclass(frozen=True)
class ModelSpec:
    """What a model name means: its builder, the input it eats and its paper-size clip.

    Attributes:
        builder: ``builder(num_classes, **options) -> Classifier``.
        input_kind: ``"heatmaps"`` (pose volumes), ``"frames"`` (RGB clips), ``"poses"`` (skeleton
            sequences), ``"rgbpose"`` (RGB frames and the keypoints their heatmaps are rendered
            from), ``"rgbskeleton"`` (RGB frames and skeleton sequences) or ``"embeddings"`` (a
            video's embedding streams, the emotion models).
        description: one line for ``mg models``.
        clip_size: ``(T, H, W)`` of one sample at the paper's size.
        input_text: how ``mg models`` shows the input, when it is not one ``C x T x H x W`` clip.
        sections: nested option sections (``model.rgb: {...}``) and the builder or dataclass whose
            signature checks each.
    """

    builder: Callable[..., nn.Module]
    input_kind: str
    description: str
    clip_size: tuple[int, int, int]
    input_text: str = ""
    sections: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def default_in_channels(self) -> int:
        """The builder's default ``in_channels``."""
        return inspect.signature(self.builder).parameters["in_channels"].default

    def example_input(self, in_channels: int | None = None) -> tuple[int, int, int, int]:
        """Shape ``(C, T, H, W)`` of one sample at the paper size, e.g. ``(17, 48, 56, 56)``."""
        c = self.default_in_channels() if in_channels is None else in_channels
        return (c, *self.clip_size)


MODELS: dict[str, ModelSpec] = {
    "posec3d_slowonly": ModelSpec(
        posec3d_slowonly,
        "heatmaps",
        "PoseConv3D SlowOnly ResNet3d (3 stages, width 32) on joint or limb heatmap volumes",
        (48, 56, 56),
    ),
    "rgb_slowonly": ModelSpec(
        rgb_slowonly,
        "frames",
        "SlowOnly ResNet-50 on RGB clips, optionally inflated from ImageNet weights",
        (8, 224, 224),
    ),
    "rgbpose_conv3d": ModelSpec(
        rgbpose_conv3d,
        "rgbpose",
        "RGBPoseConv3D: RGB + pose pathways with laterals; optional CMF and PRM (MiGA 2024 winner)",
        (8, 224, 224),
        "3 x 8 x 224 x 224 RGB + 17 x 32 x 56 x 56 heatmaps",
        {"rgb": PathwayOptions, "pose": PathwayOptions},
    ),
    **{
        f"swin3d_{v}": ModelSpec(
            fn,
            "frames",
            f"Video Swin-{v.upper()} (torchvision) on RGB clips, Kinetics-400 weights optional",
            (32, 224, 224),
        )
        for v, fn in (("t", swin3d_t), ("s", swin3d_s), ("b", swin3d_b))
    },
    "mvit_v2_s": ModelSpec(
        mvit_v2_s,
        "frames",
        "MViTv2-S (torchvision) on RGB clips, Kinetics-400 weights optional",
        (16, 224, 224),
        "3 x 16 x 224 x 224 (C x T x H x W)",
    ),
    "agcn": ModelSpec(
        agcn,
        "poses",
        "2s-AGCN stream (adaptive graph convolution) on skeleton sequences: joints or bones",
        (64, 17, 1),
        "3 x 64 x 17 x 1 (C x T x joints x persons, coco17)",
    ),
    "token_fusion": ModelSpec(
        token_fusion,
        "rgbskeleton",
        "Cross-Modal Token Fusion of MViTv2-S and 2s-AGCN tokens in a transformer (MiGA 2025)",
        (16, 224, 224),
        "3 x 16 x 224 x 224 RGB + 3 x 64 x 17 x 1 skeleton",
        {"video": mvit_v2_s, "skeleton": agcn},
    ),
    "interfusion": ModelSpec(
        interfusion,
        "embeddings",
        "InterFusion of face (SwinFace) and context (MViTv2-S) embedding streams: win/lose per video (MiGA 2025)",
        (64, 1, 1),
        "face 512 x T + context 768 x T embeddings (+ masks, times)",
    ),
    "emotion_face": ModelSpec(
        emotion_face, "embeddings", "InterFusion on the face stream alone (ablation)", (64, 1, 1), "face 512 x T"
    ),
    "emotion_context": ModelSpec(
        emotion_context,
        "embeddings",
        "InterFusion on the context stream alone (ablation)",
        (64, 1, 1),
        "context 768 x T",
    ),
}


# --------------------------------------------------------------------------- option checking


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs, checking ``options`` against its builder.

    Lists are accepted for tuple options (YAML has no tuples) and ints for float options; nested
    sections (``rgb: {...}``, ``video: {...}``) are checked against their own builder's signature.
    Unknown names, unknown options, wrong types and invalid settings raise :class:`MgError` naming
    the option by its dotted path.
    """
    spec = MODELS.get(name)
    if spec is None:
        raise MgError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise MgError(f"model {name}: num_classes must be a positive int, got {num_classes!r}")
    kwargs = check_options(spec.builder, options, f"model {name}", spec.sections)
    try:
        return spec.builder(num_classes, **kwargs)
    except ValueError as e:
        raise MgError(f"model {name}: {e}") from None


def check_options(
    fn: Callable[..., Any],
    options: dict[str, Any],
    what: str,
    sections: dict[str, Callable[..., Any]] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """``options`` checked against the parameters of ``fn`` (a builder or a dataclass); each
    section of ``sections`` is a mapping checked against its own callable."""
    sections = sections or {}
    hints = typing.get_type_hints(fn)
    accepted = [p for p in inspect.signature(fn).parameters if p != "num_classes"]
    out = {}
    for key, value in options.items():
        path = f"{prefix}{key}"
        if key not in accepted:
            raise MgError(f"{what}: unknown option {path!r} (accepted: {', '.join(sorted(accepted))})")
        if key in sections and value is not None:
            if not isinstance(value, dict):
                raise MgError(f"{what}: option {path!r} must be a mapping of options, got {value!r}")
            out[key] = check_options(sections[key], value, what, None, f"{path}.")
            continue
        try:
            out[key] = typecheck.coerce(value, hints.get(key, Any))
        except typecheck.Mismatch as m:
            raise MgError(
                f"{what}: option {path!r}{m.suffix} must be {typecheck.describe(m.hint)}, got {m.value!r}"
            ) from None
    return out


# --------------------------------------------------------------------------- summaries


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def model_table(num_classes: int = 32) -> list[dict[str, Any]]:
    """One row per model (name, input_kind, params, input, description), built with default options."""
    rows = []
    for name, spec in MODELS.items():
        model = spec.builder(num_classes)
        if spec.input_text:
            shown = spec.input_text
        else:
            c, t, h, w = spec.example_input()
            shown = f"{c} x {t} x {h} x {w} (C x T x H x W)"
        rows.append(
            {
                "name": name,
                "input_kind": spec.input_kind,
                "params": count_parameters(model),
                "input": shown,
                "description": spec.description,
            }
        )
    return rows
