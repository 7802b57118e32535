"""Models: shapes and sizes of the paper configurations, option checking, 2D -> 3D inflation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet50

from mgcli.errors import MgError
from mgcli.models import (
    MODELS,
    Classifier,
    I3DHead,
    ResNet3d,
    build_model,
    count_parameters,
    inflate_2d_weights,
    model_table,
)
from mgcli.models import resnet3d as resnet3d_module

TINY = dict(base_channels=4, stage_blocks=(1, 1), inflate=(0, 1), spatial_strides=(1, 2), temporal_strides=(1, 2))


def tiny_backbone(**overrides) -> ResNet3d:
    """A two-stage ResNet3d small enough to run anywhere in milliseconds."""
    return ResNet3d(**{"in_channels": 3, "conv1_stride": (1, 1), "pool1_stride": (1, 1), **TINY, **overrides})


# --------------------------------------------------------------------------- shapes and sizes


@torch.no_grad()
def test_tiny_shapes():
    torch.manual_seed(0)
    net = tiny_backbone().eval()
    assert net.out_channels == 8 * 4
    assert net(torch.rand(2, 3, 8, 16, 16)).shape == (2, 32, 4, 8, 8)
    assert isinstance(net.stem, nn.Sequential) and len(net.stages) == 2
    model = Classifier(net, I3DHead(net.out_channels, 5)).eval()
    assert model(torch.rand(2, 3, 8, 16, 16)).shape == (2, 5)
    assert model.head.pool(model.features(torch.rand(2, 3, 8, 16, 16))).shape == (2, 32)


@torch.no_grad()
def test_posec3d_paper_size():
    model = build_model("posec3d_slowonly", 60).eval()
    # PoseConv3D reports 2.0M parameters for its joint model; measured here with 60 classes.
    assert count_parameters(model) == 2_024_860
    assert count_parameters(model.backbone) == 1_994_080
    assert count_parameters(build_model("posec3d_slowonly", 60, in_channels=19)) == 2_027_996
    assert model.backbone.out_channels == 512
    x = torch.rand(1, 17, 32, 56, 56)
    assert model.features(x).shape == (1, 512, 16, 7, 7)
    assert model(x).shape == (1, 60)
    # no input normalisation for heatmaps
    assert model.input_mean is None


@torch.no_grad()
def test_rgb_paper_size():
    model = build_model("rgb_slowonly", 32).eval()
    assert count_parameters(model) == 31_700_064
    assert count_parameters(model.backbone) == 31_634_496
    assert model.backbone.out_channels == 2048
    x = torch.randint(0, 256, (1, *MODELS["rgb_slowonly"].example_input()), dtype=torch.uint8)
    assert x.shape == (1, 3, 8, 224, 224)
    assert model.features(x).shape == (1, 2048, 8, 7, 7)


def test_model_table_and_specs():
    rows = {r["name"]: r for r in model_table(num_classes=32)}
    assert (
        set(rows)
        == set(MODELS)
        == {
            "posec3d_slowonly",
            "rgb_slowonly",
            "rgbpose_conv3d",
            "swin3d_t",
            "swin3d_s",
            "swin3d_b",
            "mvit_v2_s",
            "agcn",
            "token_fusion",
            "interfusion",
            "emotion_face",
            "emotion_context",
        }
    )
    assert rows["mvit_v2_s"]["params"] == 34_537_744 - 769 * 400 + 769 * 32  # torchvision MViTv2-S, our head
    assert rows["agcn"]["params"] == 3_449_220  # 2s-AGCN on coco17, 32 classes
    assert rows["agcn"]["input_kind"] == "poses" and rows["token_fusion"]["input_kind"] == "rgbskeleton"
    assert rows["swin3d_b"]["params"] == 87_671_784  # torchvision's Swin-B with our 32-class head
    assert rows["posec3d_slowonly"]["params"] == 2_010_496
    assert rows["posec3d_slowonly"]["input"] == "17 x 48 x 56 x 56 (C x T x H x W)"
    assert rows["rgb_slowonly"]["input_kind"] == "frames"
    assert MODELS["posec3d_slowonly"].example_input(19) == (19, 48, 56, 56)
    # the two-pathway model as pyskl builds it (no CMF / PRM by default): 36M backbone + two heads
    assert rows["rgbpose_conv3d"]["params"] == 35_994_208 + (2048 + 512 + 2) * 32
    assert rows["rgbpose_conv3d"]["input_kind"] == "rgbpose"
    assert rows["rgbpose_conv3d"]["input"] == "3 x 8 x 224 x 224 RGB + 17 x 32 x 56 x 56 heatmaps"


def test_resnet3d_rejects_inconsistent_stage_settings():
    with pytest.raises(ValueError, match="spatial_strides needs one value per stage"):
        ResNet3d(3, stage_blocks=(1, 1, 1), inflate=(0, 0, 0), spatial_strides=(1, 2), temporal_strides=(1, 1, 1))
    with pytest.raises(ValueError, match="1 to 4 stages"):
        ResNet3d(3, stage_blocks=(1,) * 5)


# --------------------------------------------------------------------------- build_model options


def test_build_model_errors():
    with pytest.raises(
        MgError,
        match=r"unknown model 'nope' \(known: posec3d_slowonly, rgb_slowonly, rgbpose_conv3d, swin3d_t, swin3d_s, "
        r"swin3d_b, mvit_v2_s, agcn, token_fusion, interfusion, emotion_face, emotion_context\)",
    ):
        build_model("nope", 3)
    with pytest.raises(MgError, match=r"model posec3d_slowonly: unknown option 'foo' \(accepted: base_channels, "):
        build_model("posec3d_slowonly", 3, foo=1)
    with pytest.raises(MgError, match=r"option 'base_channels' must be int, got 'abc'"):
        build_model("posec3d_slowonly", 3, base_channels="abc")
    with pytest.raises(MgError, match=r"option 'base_channels' must be int, got True"):
        build_model("posec3d_slowonly", 3, base_channels=True)
    with pytest.raises(MgError, match=r"option 'stage_blocks'\[1\] must be int, got 'x'"):
        build_model("posec3d_slowonly", 3, stage_blocks=[1, "x"])
    with pytest.raises(MgError, match=r"option 'dropout' must be float, got None"):
        build_model("posec3d_slowonly", 3, dropout=None)
    with pytest.raises(MgError, match=r"option 'pretrained' must be str or null, got 3"):
        build_model("rgb_slowonly", 3, pretrained=3)
    # a setting the network itself rejects becomes a one-line MgError too
    with pytest.raises(MgError, match="model posec3d_slowonly: inflate needs one value per stage"):
        build_model("posec3d_slowonly", 3, stage_blocks=[1, 1])
    with pytest.raises(MgError, match="num_classes"):
        build_model("posec3d_slowonly", 0)


def test_build_model_converts_yaml_values():
    model = build_model(
        "posec3d_slowonly",
        4,
        in_channels=5,
        base_channels=4,
        stage_blocks=[1, 1],
        inflate=[0, 1],
        spatial_strides=[2, 2],
        temporal_strides=[1, 2],
        dropout=0,
    )
    assert model.backbone.stage_blocks == (1, 1)
    assert isinstance(model.head.dropout, nn.Identity)
    assert model.backbone.stem.conv.in_channels == 5
    with torch.no_grad():
        assert model(torch.rand(1, 5, 8, 16, 16)).shape == (1, 4)
    rgb = build_model(
        "rgb_slowonly",
        2,
        base_channels=4,
        stage_blocks=[1],
        inflate=[1],
        spatial_strides=[1],
        temporal_strides=[1],
        pretrained=None,
    )
    assert rgb.backbone.out_channels == 16


# --------------------------------------------------------------------------- 2D -> 3D inflation


def _random_2d_state() -> dict[str, torch.Tensor]:
    """A random torchvision ResNet-50 state dict with non-trivial BN statistics."""
    torch.manual_seed(1)
    state = resnet50(weights=None).state_dict()
    for k, v in state.items():
        if k.endswith(("running_mean", "bias")):
            state[k] = torch.randn_like(v)
        elif k.endswith(("running_var", "bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
            state[k] = torch.rand_like(v) + 0.5
    return state


def _torchvision_name(name: str) -> str | None:
    """Our module name -> torchvision's (``stages.1.0.conv1`` -> ``layer2.0.conv1``), checked
    against the library's mapping the other way."""
    out = {"stem.conv": "conv1", "stem.bn": "bn1"}.get(name)
    if out is None and name.startswith("stages.") and name.count(".") >= 2:
        _, stage, rest = name.split(".", 2)
        out = f"layer{int(stage) + 1}.{rest}"
    if out is not None:
        assert resnet3d_module._our_name(f"{out}.weight") == f"{name}.weight"
    return out


def test_inflation_from_torchvision_resnet50():
    state_2d = _random_2d_state()
    model = build_model("rgb_slowonly", 8)
    report = inflate_2d_weights(model.backbone, state_2d)
    assert report.new == [] and report.unused == [] and report.skipped == ["fc.weight", "fc.bias"]
    assert len(report.inflated) == 53 and all(k.endswith(".weight") for k in report.inflated)
    convs = 0
    for name, module in model.backbone.named_modules():
        name_2d = _torchvision_name(name)
        if isinstance(module, nn.Conv3d):
            w2d = state_2d[f"{name_2d}.weight"]
            torch.testing.assert_close(module.weight.sum(dim=2), w2d)
            if module.kernel_size[0] == 3:  # an inflated 3x1x1 kernel is spread evenly over time
                torch.testing.assert_close(module.weight[:, :, 0], w2d / 3)
            convs += 1
        elif isinstance(module, nn.BatchNorm3d):
            for key in ("weight", "bias", "running_mean", "running_var"):
                torch.testing.assert_close(getattr(module, key), state_2d[f"{name_2d}.{key}"])
    assert convs == 53  # stem + 16 blocks x 3 + 4 shortcut projections
    assert model.backbone.stages[3][0].conv1.kernel_size == (3, 1, 1)  # inflated stage


def test_inflation_refuses_mismatched_shapes():
    # nothing is skipped silently: another input width or base width is one line naming the tensor
    backbone = build_model("rgb_slowonly", 8, in_channels=4).backbone
    with pytest.raises(
        MgError,
        match=r"'conv1.weight' has shape \[64, 3, 7, 7\] but 'stem.conv.weight' here has "
        r"\[64, 4, 1, 7, 7\]",
    ):
        inflate_2d_weights(backbone, _random_2d_state())
    pose = build_model("posec3d_slowonly", 8).backbone
    with pytest.raises(MgError, match="has shape"):
        inflate_2d_weights(pose, _random_2d_state())


def test_inflated_network_matches_2d_network_on_a_static_clip():
    torch.manual_seed(2)
    net2d = resnet50(weights=None)
    state = net2d.state_dict()
    for k, v in state.items():  # non-zero residual branches and BN statistics
        if k.endswith("running_mean"):
            state[k] = torch.randn_like(v) * 0.1
        elif k.endswith(("bn3.weight",)):
            state[k] = torch.rand_like(v)
    net2d.load_state_dict(state)
    net2d.eval()
    net3d = ResNet3d(3, inflate=(0, 0, 0, 0)).eval()  # no temporal kernels: no padding at clip edges
    assert inflate_2d_weights(net3d, state).new == []
    img = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        feat2d = nn.Sequential(*list(net2d.children())[:-2])(img)
        feat3d = net3d(img.unsqueeze(2).expand(-1, -1, 2, -1, -1))
    torch.testing.assert_close(feat3d[:, :, 0], feat2d, rtol=1e-4, atol=1e-4)


def test_pretrained_imagenet_without_network_is_one_clear_error(monkeypatch):
    from torchvision.models import ResNet50_Weights

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(type(ResNet50_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(MgError, match=r"could not fetch the ImageNet ResNet-50 weights .*pass `pretrained: null`"):
        build_model(
            "rgb_slowonly",
            3,
            base_channels=4,
            stage_blocks=[1],
            inflate=[0],
            spatial_strides=[1],
            temporal_strides=[1],
            pretrained="imagenet",
        )


def test_pretrained_from_path(tmp_path):
    state = _random_2d_state()
    path = tmp_path / "r50.pth"
    torch.save({"state_dict": state}, path)
    model = build_model("rgb_slowonly", 3, pretrained=str(path))
    torch.testing.assert_close(model.backbone.stem.conv.weight[:, :, 0], state["conv1.weight"])
    report = model.load_reports[0]  # what was loaded, always reported
    assert len(report.inflated) == 53 and not report.new and report.skipped == ["fc.weight", "fc.bias"]
    assert report.describe().startswith(f"pretrained {str(path)!r}: 265 tensors loaded, 53 inflated 2D -> 3D")
    with pytest.raises(MgError, match=r"'conv1.weight' has shape"):
        build_model("rgb_slowonly", 3, in_channels=4, pretrained=str(path))
    with pytest.raises(MgError, match="pretrained weights not found"):
        build_model("rgb_slowonly", 3, pretrained=str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(MgError, match="not a loadable state dict"):
        build_model("rgb_slowonly", 3, pretrained=str(tmp_path / "junk.pth"))
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(MgError, match="does not fit: 265 tensors of the model not in it"):
        build_model("rgb_slowonly", 3, pretrained=str(tmp_path / "other.pth"))


# --------------------------------------------------------------------------- properties


@torch.no_grad()
def test_static_clip_gives_identical_features_over_time():
    torch.manual_seed(3)
    net = tiny_backbone(inflate=(0, 0), temporal_strides=(1, 1), zero_init_residual=False).eval()
    for m in net.modules():  # make BN non-trivial in eval mode
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    frame = torch.rand(2, 3, 1, 16, 16)
    feat = net(frame.expand(-1, -1, 6, -1, -1))
    assert feat.shape[2] == 6
    torch.testing.assert_close(feat, feat[:, :, :1].expand_as(feat))
    # with a temporal kernel the zero padding makes the edge frames differ
    inflated = tiny_backbone(inflate=(1, 1), temporal_strides=(1, 1), zero_init_residual=False).eval()
    feat = inflated(frame.expand(-1, -1, 6, -1, -1))
    torch.testing.assert_close(feat[:, :, 2], feat[:, :, 3])
    assert not torch.allclose(feat[:, :, 0], feat[:, :, 2])


@torch.no_grad()
def test_lateral_inplanes_widen_the_first_block_of_a_stage():
    plain = tiny_backbone(stage_blocks=(1, 2))
    wide = tiny_backbone(stage_blocks=(1, 2), lateral_inplanes=(0, 6))
    first, first_plain = wide.stages[1][0], plain.stages[1][0]
    assert first.conv1.in_channels == first_plain.conv1.in_channels + 6 == 16 + 6
    assert first.downsample[0].in_channels == 22
    assert wide.stages[1][1].conv1.in_channels == 32  # later blocks unchanged
    assert count_parameters(wide) > count_parameters(plain)
    wide.eval()
    x = wide.stages[0](wide.stem(torch.rand(1, 3, 4, 16, 16)))
    lateral = torch.rand(1, 6, *x.shape[2:])
    assert wide.stages[1](torch.cat([x, lateral], dim=1)).shape == (1, 32, 2, 8, 8)
    with pytest.raises(RuntimeError, match="lateral"):
        wide(torch.rand(1, 3, 4, 16, 16))


@torch.no_grad()
def test_zero_init_residual_and_head_init():
    net = tiny_backbone()
    assert all(float(b.bn3.weight.abs().sum()) == 0 for stage in net.stages for b in stage)
    assert float(tiny_backbone(zero_init_residual=False).stages[0][0].bn3.weight.sum()) > 0
    head = I3DHead(64, 10)
    assert float(head.fc.bias.abs().sum()) == 0 and 0.005 < float(head.fc.weight.std()) < 0.015


@torch.no_grad()
def test_uint8_input_is_normalised_inside_the_rgb_model():
    torch.manual_seed(4)
    model = build_model(
        "rgb_slowonly",
        5,
        base_channels=4,
        stage_blocks=[1, 1],
        inflate=[0, 1],
        spatial_strides=[1, 2],
        temporal_strides=[1, 1],
    ).eval()
    x8 = torch.randint(0, 256, (2, 3, 4, 32, 32), dtype=torch.uint8)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1, 1)
    manual = (x8.float() - mean) / std
    torch.testing.assert_close(model(x8), model.head(model.backbone(manual)))
    torch.testing.assert_close(model(x8), model(x8.float()))
    # the normalisation buffers are not part of checkpoints
    assert not any(k.startswith("input_") for k in model.state_dict())
