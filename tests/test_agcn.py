"""2s-AGCN: skeleton graphs from the layouts, bones, the adaptive graph convolution and the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgcli.models.agcn import AGCN, AdaptiveGraphConv, agcn, joint_to_bone
from mgcli.pose.layouts import LAYOUTS, Layout, get_layout

pytestmark = pytest.mark.usefixtures("one_thread")

CONNECTED = ("coco17", "body25", "openpose35", "upper22")


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _hops(lay: Layout) -> np.ndarray:
    """Hop distance from the centre along the parent tree (-1: not connected)."""
    hops = np.full(lay.num_joints, -1)
    hops[lay.center] = 0
    for _ in range(lay.num_joints):
        for v, p in enumerate(lay.parents):
            if v != p and hops[p] >= 0:
                hops[v] = hops[p] + 1
    return hops


# ---------------------------------------------------------------- graphs


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_adjacency_partition(name: str) -> None:
    lay = LAYOUTS[name]
    v = lay.num_joints
    a = lay.adjacency
    assert a.shape == (3, v, v) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(v))
    for k in (1, 2):
        sums = a[k].sum(axis=0)
        nonzero = (a[k] != 0).any(axis=0)
        np.testing.assert_allclose(sums[nonzero], 1.0, rtol=1e-6)
        assert (sums[~nonzero] == 0).all()
    inward, outward = (a[1] > 0).astype(int), (a[2] > 0).astype(int)
    np.testing.assert_array_equal(inward, outward.T)
    np.testing.assert_array_equal(inward + outward, (inward + outward).T)
    # In[parent, child] = 1: under x @ A[1] a child receives its parent's features.
    expected = np.zeros((v, v), int)
    for child, parent in lay.inward:
        expected[parent, child] = 1
    np.testing.assert_array_equal(inward, expected)
    # Every inward edge is a limb and goes one hop towards the centre.
    hops = _hops(lay)
    limbs = {frozenset(limb) for limb in lay.limbs}
    for child, parent in lay.inward:
        assert frozenset((child, parent)) in limbs
        assert hops[parent] >= 0 and hops[child] == hops[parent] + 1
    # Parents, bone pairs: the centre and unconnected joints are their own parent.
    assert lay.parents.dtype == np.int64 and lay.parents[lay.center] == lay.center
    assert lay.bone_pairs == tuple((i, int(p)) for i, p in enumerate(lay.parents))
    for i, p in enumerate(lay.parents):
        if i != p:
            assert (int(i), int(p)) in lay.inward
        elif i != lay.center:
            assert not any(i in edge for edge in lay.inward)


@pytest.mark.parametrize("name", CONNECTED)
def test_body_layouts_are_connected(name: str) -> None:
    lay = LAYOUTS[name]
    assert (_hops(lay) >= 0).all()
    assert sum(1 for i, p in enumerate(lay.parents) if i == p) == 1


def test_coco17_graph_matches_pyskl() -> None:
    coco = get_layout("coco17")
    pyskl = [
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 5),
        (12, 6),
        (9, 7),
        (7, 5),
        (10, 8),
        (8, 6),
        (5, 0),
        (6, 0),
        (1, 0),
        (3, 1),
        (2, 0),
        (4, 2),
    ]
    assert len(coco.inward) == len(pyskl) and set(coco.inward) == set(pyskl)  # the hip-hip limb is left out
    assert coco.parents.tolist() == [0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14]


def test_openpose137_face_is_unconnected() -> None:
    lay = get_layout("openpose137")
    face = range(25, 95)
    assert all(lay.parents[i] == i for i in face)
    assert lay.adjacency[1][:, face].sum() == 0 and lay.adjacency[2][:, face].sum() == 0
    assert all(lay.parents[i] != i for i in range(95, 137))  # hands hang off the wrists


# ---------------------------------------------------------------- bones


def test_joint_to_bone() -> None:
    # A 5-joint chain with a branch: 0 centre, 1-0, 2-1, 3-0, 4-3.
    lay = Layout("toy", tuple(f"j{i}" for i in range(5)), ((0, 1), (1, 2), (0, 3), (3, 4)), 0)
    assert lay.parents.tolist() == [0, 0, 1, 0, 3]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    bone = joint_to_bone(x, lay)
    assert bone.shape == x.shape and bone.dtype == np.float32
    for v, p in enumerate([0, 0, 1, 0, 3]):
        np.testing.assert_allclose(bone[..., v, :2], x[..., v, :2] - x[..., p, :2])
        np.testing.assert_allclose(bone[..., v, 2], (x[..., v, 2] + x[..., p, 2]) / 2)
    assert (bone[..., 0, :2] == 0).all()
    np.testing.assert_array_equal(joint_to_bone(x[..., :2], lay), bone[..., :2])
    with pytest.raises(ValueError):
        joint_to_bone(x[..., :4, :], lay)


# ---------------------------------------------------------------- the adaptive graph convolution


def _reference_gcn(gcn: AdaptiveGraphConv, x: torch.Tensor) -> torch.Tensor:
    """2s-AGCN's unit_gcn, literally: a loop over the subsets with separate weight slices per subset."""
    n, c, t, v = x.shape
    inner = gcn.inner
    y = 0
    for k in range(3):
        rows = slice(k * inner, (k + 1) * inner)
        a1 = F.conv2d(x, gcn.theta.weight[rows], gcn.theta.bias[rows]).permute(0, 3, 1, 2).reshape(n, v, inner * t)
        a2 = F.conv2d(x, gcn.phi.weight[rows], gcn.phi.bias[rows]).reshape(n, inner * t, v)
        graph = torch.softmax(a1 @ a2 / (inner * t), dim=-2) + gcn.A[k] + gcn.B[k]
        z = (x.reshape(n, c * t, v) @ graph).reshape(n, c, t, v)
        y = y + F.conv2d(z, gcn.conv.weight[:, k * c : (k + 1) * c])
    y = gcn.bn(y + gcn.conv.bias[None, :, None, None])
    return torch.relu(y + gcn.down(x))


@torch.no_grad()
@pytest.mark.parametrize("c_in, c_out", [(6, 8), (8, 8)])
def test_adaptive_conv_equals_per_subset_sum(c_in: int, c_out: int) -> None:
    torch.manual_seed(0)
    lay = get_layout("coco17")
    gcn = AdaptiveGraphConv(c_in, c_out, lay.adjacency).eval()
    assert gcn.inner == 2 and not gcn.A.requires_grad and gcn.B.requires_grad
    assert torch.equal(gcn.B, torch.full((3, 17, 17), 1e-6))
    gcn.bn.weight.fill_(1.0)  # undo the 1e-6 init, or the comparison would see only the residual
    x = torch.randn(2, c_in, 5, 17)
    # Embeddings and B removed: C_k is uniform 1 / V.
    for conv in (gcn.theta, gcn.phi):
        conv.weight.zero_()
        conv.bias.zero_()
    gcn.B.zero_()
    torch.testing.assert_close(gcn.graphs(x), (gcn.A + 1 / 17).expand(2, 3, 17, 17))
    torch.testing.assert_close(gcn(x), _reference_gcn(gcn, x))
    # Everything on: random embeddings and learned graph.
    for p in (gcn.theta.weight, gcn.theta.bias, gcn.phi.weight, gcn.phi.bias, gcn.B):
        p.normal_()
    torch.testing.assert_close(gcn(x), _reference_gcn(gcn, x))


def test_gradients_reach_learned_graph_and_embeddings() -> None:
    torch.manual_seed(0)
    gcn = AdaptiveGraphConv(4, 8, get_layout("upper22").adjacency)
    gcn(torch.randn(2, 4, 6, 22)).square().sum().backward()
    for p in (gcn.B, gcn.theta.weight, gcn.phi.weight, gcn.conv.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert "A" in dict(gcn.named_buffers())


# ---------------------------------------------------------------- the network


@torch.no_grad()
@pytest.mark.parametrize("name, num_person", [("coco17", 1), ("upper22", 1), ("coco17", 2)])
def test_agcn_shapes(name: str, num_person: int) -> None:
    torch.manual_seed(0)
    model = agcn(5, layout=name, num_person=num_person, base_channels=16, dropout=0.5).eval()
    v = LAYOUTS[name].num_joints
    assert isinstance(model, AGCN) and model.layout is LAYOUTS[name] and model.out_channels == 64
    assert (model.num_classes, model.in_channels, model.num_person) == (5, 3, num_person)
    x = torch.randn(2, 3, 20, v, num_person)
    logits, feats, emb = model(x), model.features(x), model.embed(x)
    assert logits.shape == (2, 5)
    assert feats.shape == (2, num_person, 64, 5, v)
    assert emb.shape == (2, 64)
    torch.testing.assert_close(emb, feats.mean(dim=(3, 4)).mean(dim=1))
    torch.testing.assert_close(logits, model.fc(emb))
    # Non-contiguous input (channels_last_3d) gives the same result.
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last_3d)), logits)
    with pytest.raises(ValueError):
        model(torch.randn(2, 3, 20, v + 1, num_person))


@torch.no_grad()
def test_agcn_full_width_embed() -> None:
    model = agcn(4, layout="upper22").eval()
    assert model.out_channels == 256
    x = torch.randn(2, 3, 20, 22, 1)
    assert model.embed(x).shape == (2, 256) and model.features(x).shape == (2, 1, 256, 5, 22)


def test_parameter_counts() -> None:
    counts = {name: _count(agcn(32, layout=name)) for name in ("coco17", "upper22")}
    print(counts)
    for n in counts.values():
        assert 3_300_000 <= n <= 3_600_000
    # Only the learned graphs B (3 x V x V per block) and data_bn (2 x 3V) depend on V.
    assert counts["upper22"] - counts["coco17"] == 10 * 3 * (22**2 - 17**2) + 2 * 3 * (22 - 17)


def test_a_few_sgd_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = agcn(4, layout="coco17", base_channels=8)
    x, y = torch.randn(8, 3, 12, 17, 1), torch.arange(8) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
