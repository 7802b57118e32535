"""RGBPoseConv3D: PoseConv3D's two-pathway network over RGB clips and pose heatmap volumes.

Two SlowOnly :class:`~mgcli.models.resnet3d.ResNet3d` pathways run side by side and trade
features between stages, SlowFast style:

- the RGB pathway (ResNet-50, width 64) sees few frames at high resolution (8 x 224 x 224);
- the pose pathway (3 stages, width 32) sees ``speed_ratio`` times more frames at low resolution
  (32 x 56 x 56), so after the RGB stem both maps have the same spatial size at every level.

Before a receiving stage, the other pathway's latest feature map goes through a lateral module and
is concatenated *after* the receiving pathway's own channels (``cat([own, lateral], dim=1)``); the
first block of that stage is built with the extra input channels.

- pose -> RGB: a ``fusion_kernel x 1 x 1`` Conv3d with temporal stride ``speed_ratio`` (32 -> 8
  frames), no bias, no BN, no ReLU.
- RGB -> pose: a ``fusion_kernel x 1 x 1`` ConvTranspose3d with temporal stride ``speed_ratio``
  (8 -> 32 frames), followed by BN and ReLU.

Each modality keeps its own classifier (:class:`RGBPoseHead`). :func:`merge_branch_weights` is the
paper's two-step initialisation: start the fused model from separately trained ``rgb_slowonly`` and
``posec3d_slowonly`` classifiers, zero-padding the input channels that lateral features add.

The MiGA 2024 winner adds two modules, both optional here (``rgbpose_conv3d(cmf=..., prm=...)``):

- a Cross-Modal Fusion Module (:class:`~mgcli.models.fusion.CrossModalFusion`) at the chosen
  exchange levels: it re-weights both pathways' maps residually; each pathway then concatenates its
  own re-weighted map with the lateral of the other pathway's map *before* re-weighting (the
  paper's Eq. 4: ``[X''_rgb; Conv3d(X_pose)]`` and ``[X''_pose; ConvT3d(X_rgb)]``);
- a Prototypical Refinement Module (:class:`~mgcli.models.prototypes.PrototypeRefinement`) per
  pathway, a training-only loss on that pathway's last feature map and its own logits.

Shapes are ``[N, C, T, H, W]``; strides given as pairs are ``(temporal, spatial)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from mgcli.errors import MgError
from mgcli.models.base import MgModel
from mgcli.models.classifier import IMAGENET_MEAN, IMAGENET_STD, InputNorm
from mgcli.models.fusion import CrossModalFusion
from mgcli.models.heads import I3DHead
from mgcli.models.prototypes import PrototypeRefinement
from mgcli.models.resnet3d import Bottleneck3d, ResNet3d

if TYPE_CHECKING:
    from mgcli.models.weights import LoadReport

__all__ = [
    "PathwayOptions",
    "RGBPoseClassifier",
    "RGBPoseConv3D",
    "RGBPoseHead",
    "merge_branch_weights",
    "rgbpose_conv3d",
]


def _stage_input_channels(base: int, stage: int) -> int:
    """Channels entering stage ``stage`` of a bottleneck ResNet3d (before any lateral channels)."""
    return base if stage == 0 else base * 2 ** (stage - 1) * Bottleneck3d.expansion


def _stage_output_channels(base: int, stage: int) -> int:
    """Channels leaving stage ``stage`` of a bottleneck ResNet3d."""
    return base * 2**stage * Bottleneck3d.expansion


def _flags(name: str, value: Sequence[int], num_stages: int) -> tuple[int, ...]:
    """A per-stage 0/1 tuple with one entry per stage."""
    value = tuple(int(v) for v in value)
    if len(value) != num_stages or any(v not in (0, 1) for v in value):
        raise ValueError(f"{name} needs one 0/1 entry per stage ({num_stages}), got {list(value)}")
    return value


def _downsample_lateral(in_channels: int, out_channels: int, kernel: int, speed_ratio: int) -> nn.Conv3d:
    """Pose -> RGB lateral: ``kernel x 1 x 1`` convolution, temporal stride ``speed_ratio``."""
    return nn.Conv3d(
        in_channels,
        out_channels,
        (kernel, 1, 1),
        stride=(speed_ratio, 1, 1),
        padding=((kernel - 1) // 2, 0, 0),
        bias=False,
    )


def _upsample_lateral(in_channels: int, out_channels: int, kernel: int, speed_ratio: int) -> nn.Sequential:
    """RGB -> pose lateral: ``kernel x 1 x 1`` transposed convolution (T -> ``speed_ratio * T``), BN, ReLU.

    The output padding makes the length exactly ``speed_ratio * T`` for an odd ``kernel``.
    """
    padding = (kernel - 1) // 2
    output_padding = speed_ratio - kernel + 2 * padding  # (T-1)*s - 2p + k + op == s*T
    conv = nn.ConvTranspose3d(
        in_channels,
        out_channels,
        (kernel, 1, 1),
        stride=(speed_ratio, 1, 1),
        padding=(padding, 0, 0),
        output_padding=(output_padding, 0, 0),
        bias=False,
    )
    return nn.Sequential(OrderedDict([("conv", conv), ("bn", nn.BatchNorm3d(out_channels)), ("relu", nn.ReLU())]))


def _stem_stride(stem: nn.Module) -> int:
    """The spatial stride of a ResNet3d stem (its convolutions and pooling)."""
    out = 1
    for m in stem.modules():
        if isinstance(m, nn.Conv3d | nn.MaxPool3d):
            st = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 3
            out *= int(st[-1])
    return out


def _concat(name: str, own: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """``cat([own, lateral], dim=1)``, with a readable error when the maps do not line up."""
    if own.shape[0] != lateral.shape[0] or own.shape[2:] != lateral.shape[2:]:
        raise ValueError(
            f"{name}: features {list(own.shape)} and lateral {list(lateral.shape)} differ in N/T/H/W; the pose "
            "clip needs speed_ratio times the RGB frames and the spatial sizes must meet (e.g. 8 x 224 x 224 RGB "
            "with 32 x 56 x 56 pose)"
        )
    return torch.cat((own, lateral), dim=1)


class RGBPoseConv3D(nn.Module):
    """Two ResNet3d pathways (``self.rgb``, ``self.pose``) joined by bidirectional lateral connections.

    The pathways are aligned from the end: with ``offset = len(rgb stages) - len(pose stages)``
    (1 in the paper), *level* ``j`` runs RGB stage ``j + offset`` and pose stage ``j`` side by side.
    RGB stages before ``offset`` run alone after the stems. Between levels, :meth:`exchange` feeds each
    pathway the other's features.

    Lateral modules live in ``rgb_laterals`` (pose -> RGB, keyed by the RGB stage they feed) and
    ``pose_laterals`` (RGB -> pose, keyed by the pose stage they feed). Widths follow pyskl's
    ``ResNet3dPathway``: with ``c_in(i)`` the channels entering a stage,

    - into RGB stage ``i``: ``c_in(i) * rgb_lateral_infl // channel_ratio`` channels
      (paper: 128 into stage 2, 256 into stage 3);
    - into pose stage ``j``: ``c_in(j) * channel_ratio // pose_lateral_infl`` channels
      (paper: 32 into stage 1, 64 into stage 2).

    Each lateral reads the source pathway's actual output width (paper: 128/256 pose channels,
    512/1024 RGB channels).

    Args:
        rgb_in_channels, pose_in_channels: input channels (3; joints or limbs).
        rgb_base, pose_base: stem widths of the pathways.
        rgb_stage_blocks, pose_stage_blocks: bottlenecks per stage (RGB needs at least as many stages).
        speed_ratio: pose frames per RGB frame; the laterals' temporal stride.
        channel_ratio: pyskl's ``channel_ratio`` (beta), scales the lateral widths as above.
        fusion_kernel: temporal kernel of the lateral (transposed) convolutions; odd.
        rgb_lateral, pose_lateral: per stage, 1 if that stage receives lateral features.
        rgb_lateral_infl, pose_lateral_infl: pyskl's ``lateral_infl`` of each pathway.
        rgb_conv1_kernel, ..., pose_temporal_strides: per-pathway :class:`ResNet3d` settings.
        rgb_detach, pose_detach: stop gradients from the RGB (pose) pathway's laterals into the
            other pathway (the lateral itself still trains).
        rgb_drop_path, pose_drop_path: in training, probability of zeroing all laterals into the
            RGB (pose) pathway for a whole forward pass (one draw per batch, as in pyskl).
        zero_init_residual: start each bottleneck's last BN at zero.
        cmf_levels: levels (1 .. pose stages - 1) whose exchange first runs a
            :class:`~mgcli.models.fusion.CrossModalFusion` on both pathways' maps, before the
            laterals (the paper: every exchange point, ``(1, 2)``); empty: plain RGBPoseConv3D.
        cmf_hidden, cmf_heads, cmf_tokens: the CMF's hidden size ``C'``, heads and temporal tokens.
    """

    def __init__(
        self,
        rgb_in_channels: int = 3,
        pose_in_channels: int = 17,
        *,
        rgb_base: int = 64,
        pose_base: int = 32,
        rgb_stage_blocks: Sequence[int] = (3, 4, 6, 3),
        pose_stage_blocks: Sequence[int] = (4, 6, 3),
        speed_ratio: int = 4,
        channel_ratio: int = 4,
        fusion_kernel: int = 7,
        rgb_lateral: Sequence[int] = (0, 0, 1, 1),
        pose_lateral: Sequence[int] = (0, 1, 1),
        rgb_lateral_infl: int = 1,
        pose_lateral_infl: int = 16,
        rgb_conv1_kernel: Sequence[int] = (1, 7, 7),
        rgb_conv1_stride: Sequence[int] = (1, 2),
        rgb_pool1_stride: Sequence[int] = (1, 2),
        rgb_inflate: Sequence[int] = (0, 0, 1, 1),
        rgb_spatial_strides: Sequence[int] = (1, 2, 2, 2),
        rgb_temporal_strides: Sequence[int] = (1, 1, 1, 1),
        pose_conv1_kernel: Sequence[int] = (1, 7, 7),
        pose_conv1_stride: Sequence[int] = (1, 1),
        pose_pool1_stride: Sequence[int] = (1, 1),
        pose_inflate: Sequence[int] = (0, 1, 1),
        pose_spatial_strides: Sequence[int] = (2, 2, 2),
        pose_temporal_strides: Sequence[int] = (1, 1, 1),
        rgb_detach: bool = False,
        pose_detach: bool = False,
        rgb_drop_path: float = 0.0,
        pose_drop_path: float = 0.0,
        zero_init_residual: bool = True,
        cmf_levels: Sequence[int] = (),
        cmf_hidden: int = 256,
        cmf_heads: int = 1,
        cmf_tokens: int = 8,
    ) -> None:
        super().__init__()
        n_rgb, n_pose = len(rgb_stage_blocks), len(pose_stage_blocks)
        if n_pose < 1 or n_rgb < n_pose:
            raise ValueError(
                f"the RGB pathway needs at least as many stages as the pose pathway, got {n_rgb} and {n_pose}"
            )
        offset = n_rgb - n_pose
        rgb_lateral = _flags("rgb_lateral", rgb_lateral, n_rgb)
        pose_lateral = _flags("pose_lateral", pose_lateral, n_pose)
        if any(rgb_lateral[: offset + 1]):
            raise ValueError(
                f"rgb_lateral: only RGB stages after the first level (from stage {offset + 1}) can "
                f"receive pose features, got {list(rgb_lateral)}"
            )
        if pose_lateral[0]:
            raise ValueError(f"pose_lateral: pose stage 0 cannot receive RGB features, got {list(pose_lateral)}")
        for name, v in (
            ("speed_ratio", speed_ratio),
            ("channel_ratio", channel_ratio),
            ("rgb_lateral_infl", rgb_lateral_infl),
            ("pose_lateral_infl", pose_lateral_infl),
            ("rgb_base", rgb_base),
            ("pose_base", pose_base),
        ):
            if v < 1:
                raise ValueError(f"{name} must be positive, got {v}")
        if fusion_kernel < 1 or fusion_kernel % 2 == 0:
            raise ValueError(f"fusion_kernel must be a positive odd number, got {fusion_kernel}")
        for name, p in (("rgb_drop_path", rgb_drop_path), ("pose_drop_path", pose_drop_path)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")

        rgb_extra = [0] * n_rgb
        pose_extra = [0] * n_pose
        for i in range(n_rgb):
            if rgb_lateral[i]:
                rgb_extra[i] = _stage_input_channels(rgb_base, i) * rgb_lateral_infl // channel_ratio
        for j in range(n_pose):
            if pose_lateral[j]:
                pose_extra[j] = _stage_input_channels(pose_base, j) * channel_ratio // pose_lateral_infl
        if any(c == 0 for c, on in zip(rgb_extra + pose_extra, rgb_lateral + pose_lateral, strict=True) if on):
            raise ValueError("a lateral connection would have zero channels; raise the widths or lateral_infl")

        self.offset = offset
        self.speed_ratio = speed_ratio
        self.channel_ratio = channel_ratio
        self.fusion_kernel = fusion_kernel
        self.rgb_detach = rgb_detach
        self.pose_detach = pose_detach
        self.rgb_drop_path = float(rgb_drop_path)
        self.pose_drop_path = float(pose_drop_path)
        self._drop_into_rgb = self._drop_into_pose = False  # drawn by forward

        self.rgb = ResNet3d(
            rgb_in_channels,
            rgb_base,
            rgb_stage_blocks,
            rgb_conv1_kernel,
            rgb_conv1_stride,
            rgb_pool1_stride,
            rgb_inflate,
            rgb_spatial_strides,
            rgb_temporal_strides,
            zero_init_residual,
            lateral_inplanes=rgb_extra,
        )
        self.pose = ResNet3d(
            pose_in_channels,
            pose_base,
            pose_stage_blocks,
            pose_conv1_kernel,
            pose_conv1_stride,
            pose_pool1_stride,
            pose_inflate,
            pose_spatial_strides,
            pose_temporal_strides,
            zero_init_residual,
            lateral_inplanes=pose_extra,
        )

        self.rgb_laterals = nn.ModuleDict()
        for i in range(n_rgb):
            if rgb_lateral[i]:
                source = _stage_output_channels(pose_base, i - offset - 1)
                self.rgb_laterals[str(i)] = _downsample_lateral(source, rgb_extra[i], fusion_kernel, speed_ratio)
        self.pose_laterals = nn.ModuleDict()
        for j in range(n_pose):
            if pose_lateral[j]:
                source = _stage_output_channels(rgb_base, j + offset - 1)
                self.pose_laterals[str(j)] = _upsample_lateral(source, pose_extra[j], fusion_kernel, speed_ratio)
        # The lateral Conv3d follows the pathways' init; the transposed convolutions keep PyTorch's
        # default init and the lateral BNs start at weight 1, bias 0 (as in pyskl).
        for m in self.rgb_laterals.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        self.cmf = nn.ModuleDict()
        for level in cmf_levels:
            if not 1 <= level < n_pose:
                raise ValueError(f"cmf_levels: the pathways meet at levels 1 .. {n_pose - 1}, got {list(cmf_levels)}")
            self.cmf[str(level)] = CrossModalFusion(
                _stage_output_channels(rgb_base, level + offset - 1),
                _stage_output_channels(pose_base, level - 1),
                cmf_hidden,
                cmf_heads,
                cmf_tokens,
                speed_ratio,
            )

        self.rgb_out_channels = self.rgb.out_channels
        self.pose_out_channels = self.pose.out_channels

    def _draw_drops(self) -> None:
        """Decide once per forward (training only) whether the laterals into each pathway are zeroed."""

        def draw(p: float) -> bool:
            return self.training and p > 0 and bool(torch.rand(()) < p)

        self._drop_into_rgb = draw(self.rgb_drop_path)
        self._drop_into_pose = draw(self.pose_drop_path)

    def exchange(self, level: int, x_rgb: torch.Tensor, x_pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fusion before ``level`` (RGB stage ``level + offset``, pose stage ``level``): the CMF
        re-weighting when this level has one, and the lateral connections, which read the maps as
        they came out of the previous level (not the re-weighted ones).

        ``x_rgb`` and ``x_pose`` are the outputs of the previous level; the result is what the two
        stages of ``level`` receive. Override (or wrap) this method to change how the pathways meet.
        """
        # Eq. 4 of the paper: each pathway keeps its own re-weighted map and concatenates the lateral
        # of the *other pathway's map before re-weighting*; without a CMF both are the raw maps.
        own_rgb, own_pose = self.cmf[str(level)](x_rgb, x_pose) if str(level) in self.cmf else (x_rgb, x_pose)
        rgb_key, pose_key = str(level + self.offset), str(level)
        into_rgb = into_pose = None
        if rgb_key in self.rgb_laterals:
            src = x_pose.detach() if self.rgb_detach else x_pose
            into_rgb = self.rgb_laterals[rgb_key](src)
            if self._drop_into_rgb:
                into_rgb = into_rgb * 0.0  # zeros that keep the graph: DDP expects every parameter used
        if pose_key in self.pose_laterals:
            src = x_rgb.detach() if self.pose_detach else x_rgb
            into_pose = self.pose_laterals[pose_key](src)
            if self._drop_into_pose:
                into_pose = into_pose * 0.0
        if into_rgb is not None:
            own_rgb = _concat(f"RGB stage {rgb_key}", own_rgb, into_rgb)
        if into_pose is not None:
            own_pose = _concat(f"pose stage {pose_key}", own_pose, into_pose)
        return own_rgb, own_pose

    def forward(self, rgb: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB ``[N, 3, T, H, W]`` and heatmaps ``[N, K, speed_ratio*T, H/4, W/4]`` -> the two last feature maps.

        At the paper size, 8 x 224 x 224 and 32 x 56 x 56 give ``[N, 2048, 8, 7, 7]`` and
        ``[N, 512, 32, 7, 7]``.
        """
        self._draw_drops()
        x_rgb = self.rgb.stem(rgb)
        x_pose = self.pose.stem(pose)
        for stage in self.rgb.stages[: self.offset]:
            x_rgb = stage(x_rgb)
        for level, pose_stage in enumerate(self.pose.stages):
            if level > 0:
                x_rgb, x_pose = self.exchange(level, x_rgb, x_pose)
            x_rgb = self.rgb.stages[level + self.offset](x_rgb)
            x_pose = pose_stage(x_pose)
        return x_rgb, x_pose


class RGBPoseHead(nn.Module):
    """One I3D head per modality (``self.rgb``, ``self.pose``): pool, dropout, linear.

    Args:
        rgb_channels, pose_channels: channels of the two feature maps.
        num_classes: number of classes.
        dropout: dropout before each classifier.
        init_std: std of the classifiers' normal init.
        loss_weights: weights of the RGB and pose cross-entropy terms in :meth:`loss`.
    """

    def __init__(
        self,
        rgb_channels: int,
        pose_channels: int,
        num_classes: int,
        dropout: float = 0.5,
        init_std: float = 0.01,
        loss_weights: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        if len(loss_weights) != 2:
            raise ValueError(f"loss_weights needs two values (rgb, pose), got {list(loss_weights)}")
        self.rgb = I3DHead(rgb_channels, num_classes, dropout, init_std)
        self.pose = I3DHead(pose_channels, num_classes, dropout, init_std)
        self.num_classes = num_classes
        self.loss_weights = {"rgb": float(loss_weights[0]), "pose": float(loss_weights[1])}

    def forward(self, rgb_feat: torch.Tensor, pose_feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two feature maps -> ``{"rgb": logits, "pose": logits}``, each ``[N, num_classes]``."""
        return {"rgb": self.rgb(rgb_feat), "pose": self.pose(pose_feat)}

    def loss(
        self, logits: Mapping[str, torch.Tensor], target: torch.Tensor, label_smoothing: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """Weighted cross-entropy per modality: ``{"rgb": w_rgb * CE, "pose": w_pose * CE}`` (sum them to train)."""
        return {
            k: w * F.cross_entropy(logits[k].float(), target, label_smoothing=label_smoothing)
            for k, w in self.loss_weights.items()
        }


class RGBPoseClassifier(MgModel):
    """RGBPoseConv3D backbone + :class:`RGBPoseHead` (+ optional PRM), normalising RGB on the device.

    RGB clips (uint8 or 0..255 floats) are converted to float and normalised with ``rgb_mean`` /
    ``rgb_std`` (ImageNet by default; None skips it). Heatmaps are only converted to float if they
    are not already.

    ``prm``: one :class:`~mgcli.models.prototypes.PrototypeRefinement` per pathway, keyed like the
    logits (``"rgb"``, ``"pose"``). Each reads its own pathway's last feature map and that
    pathway's logits, so each modality gets its own prototypes and the refinement shapes the
    features its own classifier reads (both pathways are still coupled through the laterals). The
    PRM is a training loss only: in training mode with ``labels``, :meth:`forward` adds
    ``"prm_rgb"`` / ``"prm_pose"`` (scalars) to its output, and :meth:`loss` weights them by
    ``prm_alpha``.
    """

    branch_inputs = {"rgb": "frames", "pose": "heatmaps"}  # what each init_from branch checkpoint reads

    def __init__(
        self,
        backbone: RGBPoseConv3D,
        head: RGBPoseHead,
        *,
        rgb_mean: Sequence[float] | None = IMAGENET_MEAN,
        rgb_std: Sequence[float] | None = IMAGENET_STD,
        prm: Mapping[str, PrototypeRefinement] | None = None,
        prm_alpha: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = head.num_classes
        if (rgb_mean is None) != (rgb_std is None):
            raise ValueError("give both rgb_mean and rgb_std, or neither")
        self.rgb_norm = InputNorm(rgb_mean, rgb_std)
        self.pose_norm = InputNorm()
        self.prm = nn.ModuleDict(dict(prm or {}))
        unknown = set(self.prm) - set(head.loss_weights)
        if unknown:
            raise ValueError(f"prm keys must be modalities ({', '.join(head.loss_weights)}), got {sorted(unknown)}")
        self.prm_alpha = float(prm_alpha)

    @property
    def rgb_mean(self) -> torch.Tensor | None:
        return self.rgb_norm.mean

    def normalize(self, rgb: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float conversion of both inputs and mean/std normalisation of the RGB clip."""
        return self.rgb_norm(rgb), self.pose_norm(pose)

    def features(self, rgb: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's two feature maps (after normalisation)."""
        return self.backbone(*self.normalize(rgb, pose))

    def forward(
        self, rgb: torch.Tensor, pose: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """RGB clip and heatmap volume -> ``{"rgb": logits, "pose": logits}``; in training mode with
        ``labels`` and a PRM, also ``{"prm_rgb": L_PR, "prm_pose": L_PR}``."""
        feats = dict(zip(("rgb", "pose"), self.features(rgb, pose), strict=True))
        out = self.head(feats["rgb"], feats["pose"])
        if self.training and labels is not None:
            for key, prm in self.prm.items():
                out[f"prm_{key}"] = prm(feats[key], out[key].float(), labels)
        return out

    def check_view(self, view: Any, where: str | Path | None = None) -> None:
        """The paired views must meet the two pathways: pose frames per RGB frame equal to
        ``speed_ratio``, and heatmaps scaled like the stems' downsampling (1/4 in the paper)."""
        net = self.backbone
        if view.speed_ratio != net.speed_ratio:
            raise MgError(
                f"data.view.speed_ratio is {view.speed_ratio} but model.speed_ratio is {net.speed_ratio}; set both",
                where,
            )
        ratio = _stem_stride(net.pose.stem) / _stem_stride(net.rgb.stem)
        if abs(view.scaling - ratio) > 1e-9:
            raise MgError(
                f"data.view.scaling is {view.scaling} but the model's stems need heatmaps at {ratio:g} of "
                "the RGB size (RGB stem stride / pose stem stride)",
                where,
            )

    def load_branches(self, states: Mapping[str, Mapping[str, torch.Tensor]]) -> LoadReport:
        """PoseConv3D's two-step initialisation from the ``rgb`` and ``pose`` branch state dicts
        (:func:`merge_branch_weights`)."""
        return merge_branch_weights(self, states["rgb"], states["pose"])

    def loss(
        self, out: Mapping[str, torch.Tensor], labels: torch.Tensor, label_smoothing: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """The training loss terms (sum them): weighted cross-entropy per modality and, where
        :meth:`forward` computed them, ``prm_alpha * L_PR`` per pathway."""
        terms = self.head.loss(out, labels, label_smoothing)
        for key in self.prm:
            if f"prm_{key}" in out:
                terms[f"prm_{key}"] = self.prm_alpha * out[f"prm_{key}"].float()
        return terms


@dataclass(frozen=True)
class PathwayOptions:
    """One pathway section of ``rgbpose_conv3d`` (``model.rgb`` / ``model.pose``): the
    :class:`~mgcli.models.resnet3d.ResNet3d` settings of that pathway and its lateral inputs. A
    field left out keeps the pathway's default (see :class:`RGBPoseConv3D`)."""

    in_channels: int | None = None
    base_channels: int | None = None
    stage_blocks: tuple[int, ...] | None = None
    conv1_kernel: tuple[int, ...] | None = None
    conv1_stride: tuple[int, ...] | None = None
    pool1_stride: tuple[int, ...] | None = None
    inflate: tuple[int, ...] | None = None
    spatial_strides: tuple[int, ...] | None = None
    temporal_strides: tuple[int, ...] | None = None
    lateral: tuple[int, ...] | None = None
    lateral_infl: int | None = None
    detach: bool | None = None
    drop_path: float | None = None


def _pathway_kwargs(modality: str, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """A pathway section as :class:`RGBPoseConv3D` keyword arguments (``base_channels`` -> ``rgb_base``)."""
    out = {}
    for key, value in (section or {}).items():
        if value is not None:
            out[f"{modality}_{'base' if key == 'base_channels' else key}"] = value
    return out


def rgbpose_conv3d(
    num_classes: int,
    *,
    rgb: dict[str, Any] | None = None,
    pose: dict[str, Any] | None = None,
    speed_ratio: int = 4,
    channel_ratio: int = 4,
    fusion_kernel: int = 7,
    dropout: float = 0.5,
    loss_weights: tuple[float, ...] = (1.0, 1.0),
    cmf: bool = False,
    cmf_levels: tuple[int, ...] = (1, 2),
    cmf_hidden: int = 256,
    cmf_heads: int = 1,
    cmf_tokens: int = 8,
    prm: bool = False,
    prm_dim: int = 256,
    prm_tau: float = 0.125,
    prm_rho: float = 0.9,
    prm_alpha: float = 0.1,
    prm_calib_weight: float = 1.0,
    prm_pathways: tuple[Literal["rgb", "pose"], ...] = ("rgb", "pose"),
) -> RGBPoseClassifier:
    """PoseConv3D's RGBPoseConv3D on RGB clips ``[N, 3, 8, 224, 224]`` and heatmaps ``[N, K, 32, 56, 56]``.

    Returns per-modality logits ``{"rgb": ..., "pose": ...}``. RGB frames are normalised with the
    ImageNet mean/std inside the model when the RGB pathway reads 3 channels. ``rgb`` and ``pose``
    are the pathway sections (:class:`PathwayOptions`: ``in_channels``, ``base_channels``,
    ``stage_blocks``, strides, ``lateral``, ...; see :class:`RGBPoseConv3D` for their defaults);
    ``dropout`` and ``loss_weights`` (rgb, pose) go to :class:`RGBPoseHead`.

    The MiGA 2024 winner's additions, both off by default (plain RGBPoseConv3D):

    - ``cmf``: a Cross-Modal Fusion Module at each exchange level of ``cmf_levels`` (hidden size
      ``cmf_hidden``, ``cmf_heads`` heads, ``cmf_tokens`` temporal tokens);
    - ``prm``: a Prototypical Refinement Module on each pathway of ``prm_pathways`` (projection to
      ``prm_dim``, temperature ``prm_tau``, EMA momentum ``prm_rho``, loss weight ``prm_alpha``).
    """
    backbone = RGBPoseConv3D(
        **_pathway_kwargs("rgb", rgb),
        **_pathway_kwargs("pose", pose),
        speed_ratio=speed_ratio,
        channel_ratio=channel_ratio,
        fusion_kernel=fusion_kernel,
        cmf_levels=cmf_levels if cmf else (),
        cmf_hidden=cmf_hidden,
        cmf_heads=cmf_heads,
        cmf_tokens=cmf_tokens,
    )
    head = RGBPoseHead(
        backbone.rgb_out_channels, backbone.pose_out_channels, num_classes, dropout, loss_weights=loss_weights
    )
    prms = {}
    if prm:
        channels = {"rgb": backbone.rgb_out_channels, "pose": backbone.pose_out_channels}
        for key in prm_pathways:
            if key not in channels:
                raise ValueError(f"prm_pathways: expected rgb and/or pose, got {list(prm_pathways)}")
            prms[key] = PrototypeRefinement(channels[key], num_classes, prm_dim, prm_tau, prm_rho, prm_calib_weight)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if backbone.rgb.in_channels == 3 else (None, None)
    return RGBPoseClassifier(backbone, head, rgb_mean=mean, rgb_std=std, prm=prms, prm_alpha=prm_alpha)


# --------------------------------------------------------------------------- two-step initialisation


def merge_branch_weights(
    model: RGBPoseClassifier, rgb_state: Mapping[str, torch.Tensor], pose_state: Mapping[str, torch.Tensor]
) -> LoadReport:
    """Initialise ``model`` from an RGB-only and a pose-only classifier (PoseConv3D's two-step init).

    ``rgb_state`` is the state dict of an ``rgb_slowonly`` :class:`~mgcli.models.Classifier`
    (``backbone.*``, ``head.*``) and goes to ``backbone.rgb.*`` / ``head.rgb.*``; ``pose_state``
    (``posec3d_slowonly``) goes to ``backbone.pose.*`` / ``head.pose.*``. A checkpoint dict that
    wraps the weights under ``"state_dict"`` is unwrapped.

    Lateral features are concatenated after a stage's own channels, so where the fused tensor has
    more input channels (dim 1) than the branch's (first conv and shortcut of a receiving stage),
    the branch weights fill the leading channels and the trailing ones are zero: at the start the
    laterals contribute nothing and each pathway computes exactly what its branch did.

    Returns the :class:`~mgcli.models.weights.LoadReport` of both loads: fused tensors copied,
    zero-padded and left new (the laterals, CMF, PRM), and branch tensors with no counterpart
    (prefixed ``rgb:`` / ``pose:``).

    Raises:
        MgError: a tensor whose shape fits neither as it is nor by input-channel padding, or a
            branch that fills nothing of its pathway.
    """
    from mgcli.models.weights import load_weights

    report = None
    for branch, state in (("rgb", rgb_state), ("pose", pose_state)):
        if isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]

        def rename(key: str, branch: str = branch) -> str | None:
            part, _, rest = key.partition(".")
            return f"{part}.{branch}.{rest}" if part in ("backbone", "head") else None

        one = load_weights(model, state, source=f"the {branch} branch", rename=rename, pad_inputs=True, strict=False)
        one.unused = [f"{branch}:{k}" for k in one.unused]
        if not any(k.startswith(f"backbone.{branch}.") for k in one.filled):
            raise MgError(
                f"the {branch} branch weights fill no tensor of the {branch} pathway (not a "
                f"{'rgb_slowonly' if branch == 'rgb' else 'posec3d_slowonly'} state dict?)"
            )
        report = one if report is None else report.merge(one)
    assert report is not None
    report.source = "the rgb and pose branches"
    return report
