"""Tests for the Prototypical Refinement Module (mgcli.models.prototypes)."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch

from mgcli.models.prototypes import PrototypeRefinement, batch_groups, class_centres, prototype_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _cos(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=False)) / (na * nb)


def _logits_for(preds: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Random logits whose argmax is ``preds``."""
    logits = torch.randn(len(preds), k, generator=gen, dtype=torch.float64)
    logits[torch.arange(len(preds)), preds] += 10.0
    return logits


def test_batch_groups_and_centres() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 0, 0, 2])
    tp, fn, fp = batch_groups(preds, labels, 3)
    exp_tp = torch.zeros(6, 3, dtype=torch.bool)
    exp_tp[0, 0] = exp_tp[2, 1] = exp_tp[5, 2] = True
    exp_fn = torch.zeros(6, 3, dtype=torch.bool)
    exp_fn[1, 0] = exp_fn[3, 1] = exp_fn[4, 2] = True
    exp_fp = torch.zeros(6, 3, dtype=torch.bool)
    exp_fp[1, 1] = exp_fp[3, 0] = exp_fp[4, 0] = True
    assert torch.equal(tp, exp_tp) and torch.equal(fn, exp_fn) and torch.equal(fp, exp_fp)

    feats = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    centres, present = class_centres(feats, fp)
    assert present.tolist() == [True, True, False]
    assert torch.allclose(centres[0], (feats[3] + feats[4]) / 2)
    assert torch.allclose(centres[1], feats[1])
    assert torch.equal(centres[2], torch.zeros(2))
    # a class with no FN at all
    _, present_fn = class_centres(feats[:2], batch_groups(torch.tensor([0, 0]), torch.tensor([0, 1]), 3)[1])
    assert present_fn.tolist() == [False, True, False]


def test_prototype_ema_update_and_eval() -> None:
    torch.manual_seed(0)
    prm = PrototypeRefinement(in_channels=3, num_classes=4, dim=5).double()
    feat5d = torch.randn(6, 3, 2, 2, 2, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    preds = torch.tensor([0, 0, 2, 1, 1, 1])  # TP: class 0 (two), class 1 (one); none for 2, 3
    logits = _logits_for(preds, 4, torch.Generator().manual_seed(1))
    before = prm.prototypes.clone()
    with torch.no_grad():
        feats = prm.project(feat5d)
    prm.train()
    prm(feat5d, logits, labels)
    after = prm.prototypes
    assert torch.allclose(after[0], 0.1 * feats[:2].mean(0) + 0.9 * before[0])
    assert torch.allclose(after[1], 0.1 * feats[3] + 0.9 * before[1])
    assert torch.equal(after[2:], before[2:])
    assert not after.requires_grad

    prm.eval()
    snap = prm.prototypes.clone()
    prm(feat5d, logits, labels)
    assert torch.equal(prm.prototypes, snap)


def _manual_loss(feats, protos, probs, labels, preds, tau, cw) -> list[float]:
    """The L_PR formula evaluated one sample at a time with plain Python."""
    n, k = len(labels), len(protos)

    def centre(cls: int, want_fn: bool):
        idx = (
            [j for j in range(n) if (labels[j] == cls and preds[j] != cls)]
            if want_fn
            else [j for j in range(n) if (labels[j] != cls and preds[j] == cls)]
        )
        if not idx:
            return None
        return [sum(feats[j][d] for j in idx) / len(idx) for d in range(len(feats[0]))]

    out = []
    for i in range(n):
        c = labels[i]
        is_tp = preds[i] == c
        mu_fn, mu_fp = centre(c, True), centre(c, False)
        phi = (1 - _cos(feats[i], mu_fn)) if (is_tp and mu_fn is not None) else 0.0
        varphi = (1 + _cos(feats[i], mu_fp)) if (is_tp and mu_fp is not None) else 0.0
        others = sum(math.exp(_cos(feats[i], protos[l_]) / tau) for l_ in range(k) if l_ != c)
        total = 0.0
        for calib in (varphi, phi):
            pos = math.exp(_cos(feats[i], protos[c]) / tau - cw * (1 - probs[i][c]) * calib)
            total += -math.log(pos / (pos + others))
        out.append(total)
    return out


@pytest.mark.parametrize("cw", [1.0, 0.5])
def test_loss_matches_manual_formula(cw: float) -> None:
    gen = torch.Generator().manual_seed(3)
    n, k, d, tau = 8, 4, 5, 0.5  # tau 0.5 keeps exp() well-conditioned for the float comparison
    feats = torch.randn(n, d, generator=gen, dtype=torch.float64)
    protos = torch.randn(k, d, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    # class 0: TP, TP, FN; class 1: TP + FP; class 2: TP + FN (no FP); class 3: FN only
    preds = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])
    probs = _logits_for(preds, k, gen).mul(0.2).softmax(1)
    tp, fn, fp = batch_groups(preds, labels, k)
    fn_c, has_fn = class_centres(feats, fn)
    fp_c, has_fp = class_centres(feats, fp)
    assert has_fn.tolist() == [True, False, True, True] and has_fp.tolist() == [True, True, True, False]
    got = prototype_loss(feats, protos, probs, labels, tp, fn_c, has_fn, fp_c, has_fp, tau, cw)
    want = _manual_loss(feats.tolist(), protos.tolist(), probs.tolist(), labels.tolist(), preds.tolist(), tau, cw)
    assert got.shape == (n,)
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=1e-10)


def test_module_loss_equals_functional_with_old_prototypes() -> None:
    torch.manual_seed(4)
    prm = PrototypeRefinement(in_channels=3, num_classes=4, dim=6, tau=0.125)
    feat5d = torch.randn(8, 3, 2, 3, 3)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    logits = torch.randn(8, 4)
    protos = prm.prototypes.clone()
    loss = prm(feat5d, logits, labels)
    with torch.no_grad():
        feats = prm.project(feat5d)
    tp, fn, fp = batch_groups(logits.argmax(1), labels, 4)
    fn_c, has_fn = class_centres(feats, fn)
    fp_c, has_fp = class_centres(feats, fp)
    ref = prototype_loss(feats, protos, logits.softmax(1), labels, tp, fn_c, has_fn, fp_c, has_fp, 0.125, 1.0).mean()
    assert loss.dim() == 0 and torch.allclose(loss, ref)


def test_gradients_reach_projection_and_input() -> None:
    torch.manual_seed(5)
    prm = PrototypeRefinement(in_channels=4, num_classes=3, dim=8)
    feat5d = torch.randn(6, 4, 2, 2, 2, requires_grad=True)
    logits = torch.randn(6, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    prm(feat5d, logits, labels).backward()
    assert prm.fc.weight.grad is not None and prm.fc.weight.grad.abs().sum() > 0
    assert prm.fc.bias.grad is not None
    assert feat5d.grad is not None and feat5d.grad.abs().sum() > 0
    assert not prm.prototypes.requires_grad and prm.prototypes.grad is None
    assert "prototypes" not in dict(prm.named_parameters())


def test_prototypes_in_state_dict_and_reload() -> None:
    torch.manual_seed(6)
    prm = PrototypeRefinement(in_channels=4, num_classes=3, dim=8)
    prm(torch.randn(6, 4, 1, 2, 2), torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]))
    sd = prm.state_dict()
    assert "prototypes" in sd and sd["prototypes"].shape == (3, 8)
    torch.manual_seed(99)
    other = PrototypeRefinement(in_channels=4, num_classes=3, dim=8)
    assert not torch.equal(other.prototypes, prm.prototypes)
    other.load_state_dict(sd)
    assert torch.equal(other.prototypes, prm.prototypes)


# --- distributed ---------------------------------------------------------------------------------


def _dist_batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(11)
    labels = [torch.tensor([0, 0, 1, 2, 3]), torch.tensor([0, 1, 1, 2, 2, 3])]
    preds = [torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 1, 2, 1, 1])]  # class 3: no TP anywhere
    out = []
    for lab, pr in zip(labels, preds, strict=False):
        feat = torch.randn(len(lab), 3, 2, 2, 2, generator=gen)
        out.append((feat, _logits_for(pr, 4, gen).float(), lab))
    return out


def _dist_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        prm = PrototypeRefinement(in_channels=3, num_classes=4, dim=5)
        feat, logits, labels = _dist_batches()[rank]
        prm(feat, logits, labels)
        torch.save(prm.prototypes, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_prototypes_stay_identical(tmp_path) -> None:
    import torch.multiprocessing as mp

    mp.start_processes(_dist_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    p0, p1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(p0, p1)

    # single-process reference on the concatenated batch
    torch.manual_seed(0)
    prm = PrototypeRefinement(in_channels=3, num_classes=4, dim=5)
    init = prm.prototypes.clone()
    batches = _dist_batches()
    feat = torch.cat([b[0] for b in batches])
    logits = torch.cat([b[1] for b in batches])
    labels = torch.cat([b[2] for b in batches])
    with torch.no_grad():
        feats = prm.project(feat)
    tp = logits.argmax(1) == labels
    expected = init.clone()
    for c in range(3):
        sel = tp & (labels == c)
        expected[c] = 0.1 * feats[sel].mean(0) + 0.9 * init[c]
    assert torch.allclose(p0, expected, atol=1e-6)
    assert torch.equal(p0[3], init[3])
    prm(feat, logits, labels)
    assert torch.allclose(prm.prototypes, p0, atol=1e-6)
    # each rank alone would have produced something different
    assert not torch.allclose(p0[0], 0.1 * feats[:5][tp[:5] & (labels[:5] == 0)].mean(0) + 0.9 * init[0])
