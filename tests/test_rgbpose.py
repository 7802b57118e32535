"""RGBPoseConv3D: paper-size shapes and size, lateral wiring, gradients, and the two-step init."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
import torch
from torch import nn

from mgcli.errors import MgError
from mgcli.models import IMAGENET_MEAN, IMAGENET_STD, build_model, count_parameters
from mgcli.models import rgbpose as rgbpose_module
from mgcli.models.rgbpose import (
    RGBPoseClassifier,
    RGBPoseConv3D,
    RGBPoseHead,
    merge_branch_weights,
    rgbpose_conv3d,
)

# RGB: width 8, four 1-block stages; pose: width 4, three 1-block stages, 5 joints.
TINY = {
    "rgb_base": 8,
    "pose_base": 4,
    "rgb_stage_blocks": (1, 1, 1, 1),
    "pose_stage_blocks": (1, 1, 1),
    "pose_in_channels": 5,
}
NUM_CLASSES = 6
# the same as pathway sections of the builder (model.rgb / model.pose)
TINY_SECTIONS = {
    "rgb": {"base_channels": 8, "stage_blocks": (1, 1, 1, 1)},
    "pose": {"base_channels": 4, "stage_blocks": (1, 1, 1), "in_channels": 5},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_inputs(n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB ``[n, 3, 2, 64, 64]`` and float heatmaps ``[n, 5, 8, 16, 16]`` (4x the frames, 1/4 the size)."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (n, 3, 2, 64, 64), generator=g, dtype=torch.uint8)
    pose = torch.rand(n, 5, 8, 16, 16, generator=g)
    return rgb, pose


def tiny_model(**overrides) -> RGBPoseClassifier:
    torch.manual_seed(0)
    sections = {m: {**TINY_SECTIONS[m], **overrides.pop(m, {})} for m in TINY_SECTIONS}
    return rgbpose_conv3d(NUM_CLASSES, **sections, **overrides)


# --------------------------------------------------------------------------- paper size


@torch.no_grad()
def test_paper_size_shapes_and_parameters():
    torch.manual_seed(0)
    model = rgbpose_conv3d(60).eval()
    net = model.backbone
    # Measured: the RGB ResNet-50 (31.63M) and pose ResNet3d (1.99M) with their lateral input
    # channels, plus 1.15M of laterals.
    assert count_parameters(net) == 35_994_208
    assert count_parameters(net.rgb) == 32_781_376
    assert count_parameters(net.pose) == 2_065_760
    assert count_parameters(net.rgb_laterals) == 573_440
    assert count_parameters(net.pose_laterals) == 573_632
    assert count_parameters(model) == 35_994_208 + (2048 + 512 + 2) * 60
    # lateral widths as in pyskl's RGBPoseConv3D (its merge notebook pads to 640/1280 and 160/320 inputs)
    assert net.rgb.lateral_inplanes == (0, 0, 128, 256)
    assert net.pose.lateral_inplanes == (0, 32, 64)
    assert net.rgb.stages[2][0].conv1.weight.shape == (256, 640, 3, 1, 1)
    assert net.rgb.stages[3][0].downsample[0].weight.shape == (2048, 1280, 1, 1, 1)
    assert net.pose.stages[1][0].conv1.weight.shape == (64, 160, 3, 1, 1)
    assert net.pose.stages[2][0].downsample[0].weight.shape == (512, 320, 1, 1, 1)
    assert net.rgb_laterals["2"].weight.shape == (128, 128, 7, 1, 1)
    assert net.rgb_laterals["3"].weight.shape == (256, 256, 7, 1, 1)
    assert net.pose_laterals["1"].conv.weight.shape == (512, 32, 7, 1, 1)  # ConvTranspose3d: (in, out, ...)
    assert net.pose_laterals["2"].conv.weight.shape == (1024, 64, 7, 1, 1)

    rgb = torch.randint(0, 256, (1, 3, 8, 224, 224), dtype=torch.uint8)
    pose = torch.rand(1, 17, 32, 56, 56)
    feat_rgb, feat_pose = model.features(rgb, pose)
    assert feat_rgb.shape == (1, 2048, 8, 7, 7)
    assert feat_pose.shape == (1, 512, 32, 7, 7)
    logits = model.head(feat_rgb, feat_pose)
    assert set(logits) == {"rgb", "pose"} and logits["rgb"].shape == logits["pose"].shape == (1, 60)


# --------------------------------------------------------------------------- tiny: structure and training


def test_tiny_forward_backward_reaches_everything():
    torch.manual_seed(0)
    backbone = RGBPoseConv3D(**TINY, zero_init_residual=False)
    model = RGBPoseClassifier(
        backbone, RGBPoseHead(backbone.rgb_out_channels, backbone.pose_out_channels, NUM_CLASSES, dropout=0.0)
    ).train()
    assert isinstance(model.backbone.rgb, nn.Module) and isinstance(model.backbone.pose, nn.Module)
    assert sorted(backbone.rgb_laterals) == ["2", "3"] and sorted(backbone.pose_laterals) == ["1", "2"]
    rgb, pose = tiny_inputs()
    logits = model(rgb, pose)
    assert logits["rgb"].shape == logits["pose"].shape == (2, NUM_CLASSES)
    target = torch.tensor([1, 4])
    losses = model.head.loss(logits, target)
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for part in (
        backbone.rgb_laterals,
        backbone.pose_laterals,
        model.head.rgb,
        model.head.pose,
        backbone.rgb.stem,
        backbone.pose.stem,
    ):
        assert all(p.grad.abs().sum() > 0 for p in part.parameters())


def test_head_loss_weights():
    head = RGBPoseHead(8, 4, 3, dropout=0.0, loss_weights=(2.0, 0.5))
    logits = head(torch.rand(2, 8, 1, 2, 2), torch.rand(2, 4, 1, 2, 2))
    target = torch.tensor([0, 2])
    losses = head.loss(logits, target)
    ce = nn.functional.cross_entropy
    assert torch.allclose(losses["rgb"], 2.0 * ce(logits["rgb"], target))
    assert torch.allclose(losses["pose"], 0.5 * ce(logits["pose"], target))


def test_rgb_is_normalised_on_device_pose_is_not():
    assert rgbpose_module.IMAGENET_MEAN == IMAGENET_MEAN and rgbpose_module.IMAGENET_STD == IMAGENET_STD
    model = tiny_model().eval()
    rgb, pose = tiny_inputs()
    x_rgb, x_pose = model.normalize(rgb, pose)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    assert torch.allclose(x_rgb, (rgb.float() - mean) / std)
    assert x_pose is pose
    with torch.no_grad():
        assert torch.equal(model(rgb, pose)["rgb"], model(rgb.float(), pose)["rgb"])
    assert tiny_model(rgb={"in_channels": 4}).rgb_mean is None


@torch.no_grad()
def test_laterals_connect_the_pathways():
    torch.manual_seed(0)
    rgb, pose = tiny_inputs()
    rgb2, pose2 = tiny_inputs(seed=1)

    def features(net, r, p):
        return net(r.float(), p)

    net = RGBPoseConv3D(**TINY, zero_init_residual=False).eval()
    r1, p1 = features(net, rgb, pose)
    r2, _ = features(net, rgb, pose2)  # other pose input -> other RGB features
    _, p3 = features(net, rgb2, pose)  # other RGB input -> other pose features
    assert not torch.allclose(r1, r2) and not torch.allclose(p1, p3)

    off = RGBPoseConv3D(**TINY, rgb_lateral=(0, 0, 0, 0), pose_lateral=(0, 0, 0), zero_init_residual=False).eval()
    assert len(off.rgb_laterals) == len(off.pose_laterals) == 0
    r1, p1 = features(off, rgb, pose)
    r2, _ = features(off, rgb, pose2)
    _, p3 = features(off, rgb2, pose)
    assert torch.equal(r1, r2) and torch.equal(p1, p3)

    one_way = RGBPoseConv3D(**TINY, rgb_lateral=(0, 0, 1, 0), pose_lateral=(0, 0, 0), zero_init_residual=False).eval()
    r1, p1 = features(one_way, rgb, pose)
    r2, _ = features(one_way, rgb, pose2)
    _, p3 = features(one_way, rgb2, pose)
    assert not torch.allclose(r1, r2) and torch.equal(p1, p3)


def test_drop_path_and_detach():
    rgb, pose = tiny_inputs()
    _, pose2 = tiny_inputs(seed=1)
    torch.manual_seed(0)
    net = RGBPoseConv3D(**TINY, rgb_drop_path=1.0, zero_init_residual=False).train()
    with torch.no_grad():
        assert torch.equal(net(rgb.float(), pose)[0], net(rgb.float(), pose2)[0])  # no pose features into RGB
        net.eval()  # drop path is a training-time thing
        assert not torch.allclose(net(rgb.float(), pose)[0], net(rgb.float(), pose2)[0])

    torch.manual_seed(0)
    net = RGBPoseConv3D(**TINY, rgb_detach=True, zero_init_residual=False).train()
    feat_rgb, _ = net(rgb.float(), pose)
    feat_rgb.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in net.pose.parameters())
    assert all(p.grad is not None and p.grad.any() for p in net.rgb_laterals.parameters())


def test_exchange_is_the_hook_between_stages():
    calls = []

    class Recording(RGBPoseConv3D):
        def exchange(self, level, x_rgb, x_pose):
            calls.append((level, x_rgb.shape[1], x_pose.shape[1]))
            return super().exchange(level, x_rgb, x_pose)

    net = Recording(**TINY).eval()
    rgb, pose = tiny_inputs(1)
    with torch.no_grad():
        net(rgb.float(), pose)
    # level 1: RGB stage 1 out (64) -> RGB stage 2, pose stage 0 out (16) -> pose stage 1; then level 2
    assert calls == [(1, 64, 16), (2, 128, 32)]


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="rgb_lateral"):
        RGBPoseConv3D(**TINY, rgb_lateral=(0, 1, 1, 1))
    with pytest.raises(ValueError, match="pose_lateral"):
        RGBPoseConv3D(**TINY, pose_lateral=(1, 1, 1))
    with pytest.raises(ValueError, match="fusion_kernel"):
        RGBPoseConv3D(**TINY, fusion_kernel=4)
    with pytest.raises(ValueError, match="at least as many stages"):
        RGBPoseConv3D(**{**TINY, "rgb_stage_blocks": (1, 1)})
    net = RGBPoseConv3D(**TINY).eval()
    rgb, _ = tiny_inputs(1)
    with torch.no_grad(), pytest.raises(ValueError, match="speed_ratio"):
        net(rgb.float(), torch.rand(1, 5, 4, 16, 16))  # 2x the frames instead of 4x


def test_builder_options_are_annotated_and_pathways_are_sections():
    from mgcli.models.rgbpose import PathwayOptions

    hints = typing.get_type_hints(rgbpose_conv3d)
    params = [p for p in inspect.signature(rgbpose_conv3d).parameters if p != "num_classes"]
    assert all(p in hints for p in params)
    assert typing.get_type_hints(PathwayOptions)["stage_blocks"] == tuple[int, ...] | None
    # every per-pathway option of RGBPoseConv3D is a field of a pathway section, the rest are the builder's
    fields = {f.name for f in dataclasses.fields(PathwayOptions)}
    for name in set(inspect.signature(RGBPoseConv3D).parameters) - {"zero_init_residual"}:
        mod, _, key = name.partition("_")
        if mod in ("rgb", "pose"):
            assert ("base_channels" if key == "base" else key) in fields, name
        else:
            assert name in params, name
    # sections are checked key by key, with the dotted path in the message
    with pytest.raises(MgError, match=r"model rgbpose_conv3d: unknown option 'rgb.base' \(accepted: base_channels"):
        build_model("rgbpose_conv3d", 3, rgb={"base": 8})
    with pytest.raises(MgError, match=r"option 'pose.stage_blocks'\[0\] must be int, got 'x'"):
        build_model("rgbpose_conv3d", 3, pose={"stage_blocks": ["x", 1, 1]})
    with pytest.raises(MgError, match=r"option 'prm_pathways'\[0\] must be one of rgb, pose, got 'depth'"):
        build_model("rgbpose_conv3d", 3, prm_pathways=["depth"])


# --------------------------------------------------------------------------- two-step init


def _randomise(model: nn.Module, seed: int) -> None:
    """Random weights and BN statistics, so that equality below is not an accident of the init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)


def _branches() -> tuple[nn.Module, nn.Module]:
    rgb_branch = build_model("rgb_slowonly", NUM_CLASSES, base_channels=8, stage_blocks=[1, 1, 1, 1])
    pose_branch = build_model(
        "posec3d_slowonly",
        NUM_CLASSES,
        in_channels=5,
        base_channels=4,
        stage_blocks=[1, 1, 1],
        temporal_strides=[1, 1, 1],
    )
    _randomise(rgb_branch, 1)
    _randomise(pose_branch, 2)
    return rgb_branch.eval(), pose_branch.eval()


def test_merge_reproduces_both_branches():
    rgb_branch, pose_branch = _branches()
    fused = tiny_model()
    _randomise(fused, 3)  # laterals and their BNs: anything non-zero
    report = merge_branch_weights(fused, rgb_branch.state_dict(), pose_branch.state_dict())
    fused.eval()

    # every branch tensor found a home; the lateral modules are the only new tensors
    assert report.unused == [] and report.skipped == [] and report.inflated == []
    n_branch = len(rgb_branch.state_dict()) + len(pose_branch.state_dict())
    assert len(report.loaded) + len(report.padded) == n_branch
    assert set(report.new) == {k for k in fused.state_dict() if "_laterals." in k}
    assert sorted(report.padded) == sorted(
        f"backbone.{path}.stages.{i}.0.{layer}.weight"
        for path, stages in (("rgb", (2, 3)), ("pose", (1, 2)))
        for i in stages
        for layer in ("conv1", "downsample.0")
    )

    # padded tensors: branch weights in the leading input channels, zeros in the lateral ones
    fused_state = fused.state_dict()
    for key in report.padded:
        _, path, rest = key.split(".", 2)
        src = (rgb_branch if path == "rgb" else pose_branch).state_dict()[f"backbone.{rest}"]
        dst = fused_state[key]
        assert dst.shape[1] > src.shape[1]
        assert torch.equal(dst[:, : src.shape[1]], src)
        assert not dst[:, src.shape[1] :].any()
    assert torch.equal(fused_state["head.rgb.fc.weight"], rgb_branch.state_dict()["head.fc.weight"])
    assert torch.equal(fused_state["head.pose.fc.weight"], pose_branch.state_dict()["head.fc.weight"])

    # the laterals output something, but it meets zero weights: each pathway is its branch again
    rgb, pose = tiny_inputs()
    with torch.no_grad():
        logits = fused(rgb, pose)
        assert torch.allclose(logits["rgb"], rgb_branch(rgb), atol=1e-5, rtol=1e-4)
        assert torch.allclose(logits["pose"], pose_branch(pose), atol=1e-5, rtol=1e-4)
        _, pose2 = tiny_inputs(seed=1)
        assert torch.allclose(fused(rgb, pose2)["rgb"], logits["rgb"], atol=1e-6)
        # once the padded channels move away from zero, the pose input reaches the RGB logits
        fused.backbone.rgb.stages[3][0].downsample[0].weight[:, -1] += 1.0
        assert not torch.allclose(fused(rgb, pose2)["rgb"], fused(rgb, pose)["rgb"])


def test_merge_unwraps_checkpoints_and_names_bad_keys():
    rgb_branch, pose_branch = _branches()
    fused = tiny_model()
    report = merge_branch_weights(
        fused, {"state_dict": rgb_branch.state_dict()}, {**pose_branch.state_dict(), "extra.thing": torch.zeros(1)}
    )
    assert report.unused == ["pose:extra.thing"]

    wide = build_model("rgb_slowonly", NUM_CLASSES, base_channels=16, stage_blocks=[1, 1, 1, 1])
    with pytest.raises(MgError, match="backbone.stem.conv.weight"):
        merge_branch_weights(fused, wide.state_dict(), pose_branch.state_dict())


# --------------------------------------------------------------------------- CMF and PRM inside the model


def test_cmf_sits_at_the_exchange_points_and_starts_as_the_identity():
    plain = tiny_model().eval()
    fused = tiny_model(cmf=True, cmf_hidden=8, cmf_tokens=2).eval()
    cmf = fused.backbone.cmf
    assert sorted(cmf) == ["1", "2"]
    # level j meets the output of RGB stage j (width 8: 64, 128 channels) and of pose stage j-1 (16, 32)
    assert (cmf["1"].rgb_channels, cmf["1"].pose_channels) == (64, 16)
    assert (cmf["2"].rgb_channels, cmf["2"].pose_channels) == (128, 32)
    missing, unexpected = fused.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("backbone.cmf.") for k in missing)
    rgb, pose = tiny_inputs()
    with torch.no_grad():
        a, b = plain(rgb, pose), fused(rgb, pose)
    torch.testing.assert_close(a["rgb"], b["rgb"], rtol=0, atol=0)  # zero-initialised re-weighting maps
    torch.testing.assert_close(a["pose"], b["pose"], rtol=0, atol=0)
    # once the maps are non-zero, the CMF changes both pathways
    with torch.no_grad():
        for level in cmf.values():
            level.rgb_out.weight.normal_(0, 0.5)
            level.pose_out.weight.normal_(0, 0.5)
        c = fused(rgb, pose)
    assert not torch.allclose(a["rgb"], c["rgb"]) and not torch.allclose(a["pose"], c["pose"])
    only_one = tiny_model(cmf=True, cmf_levels=(2,), cmf_hidden=8, cmf_tokens=2)
    assert sorted(only_one.backbone.cmf) == ["2"]
    assert not tiny_model(cmf=False).backbone.cmf
    with pytest.raises(ValueError, match="cmf_levels"):
        tiny_model(cmf=True, cmf_levels=(3,))


def test_prm_per_pathway_adds_its_loss_in_training_only():
    model = tiny_model(prm=True, prm_dim=16, prm_alpha=0.5, dropout=0.0).train()
    assert sorted(model.prm) == ["pose", "rgb"]
    assert model.prm["rgb"].fc.in_features == model.backbone.rgb_out_channels
    assert model.prm["pose"].fc.in_features == model.backbone.pose_out_channels
    assert "prm.rgb.prototypes" in model.state_dict() and "prm.pose.prototypes" in model.state_dict()
    rgb, pose = tiny_inputs(4)
    target = torch.tensor([0, 1, 2, 3])
    out = model(rgb, pose, labels=target)
    assert set(out) == {"rgb", "pose", "prm_rgb", "prm_pose"}
    terms = model.loss(out, target)
    assert set(terms) == {"rgb", "pose", "prm_rgb", "prm_pose"}
    torch.testing.assert_close(terms["prm_rgb"], 0.5 * out["prm_rgb"])
    torch.testing.assert_close(terms["rgb"], nn.functional.cross_entropy(out["rgb"], target))
    model.zero_grad()
    (terms["prm_rgb"] + terms["prm_pose"]).backward()  # the PRM terms alone
    for part in (
        model.prm["rgb"].fc,
        model.prm["pose"].fc,
        model.backbone.rgb.stem,
        model.backbone.pose.stem,
        model.backbone.rgb.stages[3],
        model.backbone.pose.stages[2],
    ):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part
    model.eval()
    with torch.no_grad():
        assert set(model(rgb, pose, labels=target)) == {"rgb", "pose"}
    only_pose = tiny_model(prm=True, prm_pathways=("pose",), prm_dim=16)
    assert sorted(only_pose.prm) == ["pose"]
    with pytest.raises(ValueError, match="prm_pathways"):
        tiny_model(prm=True, prm_pathways=("depth",))


@torch.no_grad()
def test_cmf_laterals_read_the_maps_before_re_weighting():
    """Eq. 4: X_rgb' = [X''_rgb; Conv3d(X_pose)], X_pose' = [X''_pose; ConvT3d(X_rgb)] -- each lateral
    reads the other pathway's raw map, while each pathway keeps its own re-weighted one."""
    model = tiny_model(cmf=True, cmf_hidden=8, cmf_tokens=2).eval()
    net = model.backbone
    for level in net.cmf.values():  # non-zero attention: the re-weighted maps differ from the raw ones
        level.rgb_out.weight.normal_(0, 0.5)
        level.pose_out.weight.normal_(0, 0.5)
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        net.rgb_laterals["2"].register_forward_hook(lambda m, i, o: seen.__setitem__("into_rgb", i[0])),
        net.pose_laterals["1"].register_forward_hook(lambda m, i, o: seen.__setitem__("into_pose", i[0])),
    ]
    x_rgb = torch.randn(2, 64, 2, 8, 8)  # what RGB stage 1 and pose stage 0 give at level 1
    x_pose = torch.randn(2, 16, 8, 8, 8)
    out_rgb, out_pose = net.exchange(1, x_rgb, x_pose)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(seen["into_rgb"], x_pose, rtol=0, atol=0)
    torch.testing.assert_close(seen["into_pose"], x_rgb, rtol=0, atol=0)
    re_rgb, re_pose = net.cmf["1"](x_rgb, x_pose)
    assert not torch.allclose(re_rgb, x_rgb)
    torch.testing.assert_close(out_rgb[:, :64], re_rgb)  # own channels first: the re-weighted map
    torch.testing.assert_close(out_pose[:, :16], re_pose)
    torch.testing.assert_close(out_rgb[:, 64:], net.rgb_laterals["2"](x_pose))
    torch.testing.assert_close(out_pose[:, 16:], net.pose_laterals["1"](x_rgb))
