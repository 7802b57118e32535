"""CrossModalFusion: shapes, identity at init, C' x C' cross-attention, broadcasting, gradients."""

from __future__ import annotations

import pytest
import torch

from mgcli.models.fusion import CrossModalFusion

C1, C2, HIDDEN = 16, 8, 12


pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(t1: int = 2, t2: int = 8, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C1, t1, 3, 3, generator=g), torch.randn(n, C2, t2, 3, 3, generator=g)


def make(tokens: int = 8, heads: int = 4, live: bool = True, **kw) -> CrossModalFusion:
    """A module; ``live`` gives the zero-initialised output maps random weights."""
    torch.manual_seed(0)
    m = CrossModalFusion(C1, C2, hidden=HIDDEN, heads=heads, tokens=tokens, **kw)
    if live:
        with torch.no_grad():
            m.rgb_out.weight.normal_(0, 0.5)
            m.pose_out.weight.normal_(0, 0.5)
    return m


@pytest.mark.parametrize(
    ("t1", "t2", "tokens", "heads"), [(2, 8, 8, 4), (8, 32, 8, 4), (2, 8, 2, 1), (3, 7, 6, 3), (4, 16, 3, 1)]
)
def test_shapes_preserved(t1, t2, tokens, heads):
    x_rgb, x_pose = inputs(t1, t2)
    m = make(tokens, heads)
    y_rgb, y_pose = m(x_rgb, x_pose)
    assert y_rgb.shape == x_rgb.shape and y_pose.shape == x_pose.shape
    a_rgb, a_pose = m.attention(x_rgb, x_pose)
    assert a_rgb.shape == (2, C1, t1, 1, 1) and a_pose.shape == (2, C2, t2, 1, 1)


def test_identity_at_init():
    x_rgb, x_pose = inputs()
    m = make(live=False)
    y_rgb, y_pose = m(x_rgb, x_pose)
    assert torch.equal(y_rgb, x_rgb) and torch.equal(y_pose, x_pose)


def test_identity_when_attention_output_is_zero(monkeypatch):
    x_rgb, x_pose = inputs()
    m = make()
    y_rgb, y_pose = m(x_rgb, x_pose)
    assert not torch.allclose(y_rgb, x_rgb) and not torch.allclose(y_pose, x_pose)
    # Zero attention output -> zero maps exactly (bias-free output maps), whatever their weights.
    zeros = (torch.zeros(2, HIDDEN, 8), torch.zeros(2, HIDDEN, 8))
    monkeypatch.setattr(m, "_attend", lambda a, b: (*zeros, None, None))
    y_rgb, y_pose = m(x_rgb, x_pose)
    assert torch.equal(y_rgb, x_rgb) and torch.equal(y_pose, x_pose)


def test_attention_is_channel_by_channel_and_normalised():
    x_rgb, x_pose = inputs()
    m = make(heads=2)
    w_rgb, w_pose = m.attention_weights(x_rgb, x_pose)
    for w in (w_rgb, w_pose):
        assert w.shape == (2, 2, HIDDEN, HIDDEN)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, HIDDEN))


def test_cross_modality():
    x_rgb, x_pose = inputs()
    other_rgb, other_pose = inputs(seed=1)
    m = make()
    y_rgb, y_pose = m(x_rgb, x_pose)
    y_rgb2, y_pose2 = m(x_rgb, other_pose)  # same RGB input, different pose
    assert not torch.allclose(y_rgb, y_rgb2)
    y_rgb3, y_pose3 = m(other_rgb, x_pose)  # same pose input, different RGB
    assert not torch.allclose(y_pose, y_pose3)


def test_reweighting_broadcast_over_space():
    x_rgb, x_pose = inputs()
    x_rgb, x_pose = x_rgb.abs() + 0.5, x_pose.abs() + 0.5  # keep away from 0 for the ratio
    m = make()
    y_rgb, y_pose = m(x_rgb, x_pose)
    a_rgb, a_pose = m.attention(x_rgb, x_pose)
    for x, y, a in ((x_rgb, y_rgb, a_rgb), (x_pose, y_pose, a_pose)):
        ratio = (y - x) / x
        torch.testing.assert_close(ratio, a.expand_as(x))
        assert ratio.abs().amax() > 0


def test_gradients_reach_every_parameter():
    x_rgb, x_pose = inputs()
    m = make()
    y_rgb, y_pose = m(x_rgb, x_pose)
    (y_rgb.square().mean() + y_pose.square().mean()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_configuration_and_inputs():
    with pytest.raises(ValueError, match="multiple of heads"):
        CrossModalFusion(C1, C2, tokens=6, heads=4)
    m = make()
    x_rgb, x_pose = inputs()
    with pytest.raises(ValueError, match="channels"):
        m(x_pose, x_rgb)
    with pytest.raises(ValueError, match="batch"):
        m(x_rgb, x_pose[:1])


def test_one_head_by_default_so_keys_hold_every_temporal_value():
    m = CrossModalFusion(C1, C2, hidden=HIDDEN, tokens=8)
    assert m.heads == 1
    w_rgb, w_pose = m.attention_weights(torch.randn(2, C1, 8, 3, 3), torch.randn(2, C2, 32, 3, 3))
    assert w_rgb.shape == w_pose.shape == (2, 1, HIDDEN, HIDDEN)  # one C' x C' map per sample
    torch.testing.assert_close(m.scale, 1 / 8**0.5)  # keys of length 8
