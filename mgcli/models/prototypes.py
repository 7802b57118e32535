"""Prototypical Refinement Module (PRM): a training-time prototype loss for ambiguous micro-gestures.

From "Prototype Learning for Micro-gesture Classification" (MiGA 2024 winner), which builds on the
FR-Head "RenovateNet" of Zhou et al. (CVPR 2023). The caller adds it to the classification loss::

    prm = PrototypeRefinement(in_channels=512, num_classes=32)
    loss = F.cross_entropy(logits, labels) + alpha * prm(feat5d, logits, labels)   # alpha ~ 0.1-1

Per batch and class k: TP = labelled k and predicted k (argmax), FN = labelled k but predicted
other, FP = labelled other but predicted k. Class prototypes ``P_k`` (a persistent buffer, so they
travel in checkpoints) are an EMA of the TP features. For sample ``i`` with label ``k``::

    L_PR(i) = CE(z^fp_i, k) + CE(z^fn_i, k)
    z_il = s(F_i, P_l) / tau                                  for l != k
    z_ik = s(F_i, P_k) / tau - calib_weight * (1 - p_ik) * c_i  with c = varphi (FP) or phi (FN)
    phi_i    = 1 - s(F_i, mu_FN^k)   if i is TP and class k has FN in the batch, else 0
    varphi_i = 1 + s(F_i, mu_FP^k)   if i is TP and class k has FP in the batch, else 0

with ``s`` the cosine similarity. Choices where the paper is silent (following FR-Head, cl_version
"V1", the version its released configs use):

- Every sample contributes the plain prototype-contrastive term; only TP samples get the
  calibration (non-TP, or a class without FN/FP in the batch, means ``phi``/``varphi`` = 0).
- ``p_ik`` (softmax of the logits) and the FN/FP centres are *not* detached, so the loss also
  pushes on the logits and on the ambiguous samples' features, as in FR-Head.
- Prototypes start as ``randn(K, D)``; they never carry gradient here. Departure from FR-Head: it
  scores against the prototype *already updated* with the (non-detached) current TP mean; we score
  against the stored prototypes and apply the EMA afterwards with detached features.
- ``calib_weight``: FR-Head writes ``(s - alp * (1 - p) * c) / tmp`` with ``alp = tmp = 0.125``,
  i.e. exactly ``s / tau - 1.0 * (1 - p) * c`` -- the paper's formula, hence the default 1.0. To
  mimic FR-Head at another temperature use ``calib_weight = 0.125 / tau``.
- Distributed: TP feature sums and counts are all-reduced before the EMA so every rank applies
  the same update; FN/FP centres stay per-rank (FR-Head does not reduce anything). That
  all-reduce is a collective: every rank must call ``forward`` in training mode each step (as
  under DDP). Without a process group it is skipped.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["PrototypeRefinement", "batch_groups", "class_centres", "prototype_loss"]


def batch_groups(
    preds: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean ``[N, K]`` masks ``(tp, fn, fp)``: entry ``[i, k]`` says sample ``i`` is a TP/FN/FP of class ``k``."""
    lbl = F.one_hot(labels.long(), num_classes).bool()
    pred = F.one_hot(preds.long(), num_classes).bool()
    tp = lbl & pred
    return tp, lbl & ~pred, pred & ~lbl


def class_sums(feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class feature sums ``[K, D]`` and counts ``[K]`` over the samples selected by ``mask`` ``[N, K]``."""
    m = mask.to(feats.dtype)
    return m.t() @ feats, m.sum(0)


def class_centres(feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature per class over ``mask`` (``[K, D]``, zeros where empty) and a presence flag ``[K]``."""
    sums, counts = class_sums(feats, mask)
    present = counts > 0
    return sums / counts.clamp_min(1).unsqueeze(1), present


def prototype_loss(
    feats: torch.Tensor,
    prototypes: torch.Tensor,
    probs: torch.Tensor,
    labels: torch.Tensor,
    tp: torch.Tensor,
    fn_centres: torch.Tensor,
    has_fn: torch.Tensor,
    fp_centres: torch.Tensor,
    has_fp: torch.Tensor,
    tau: float,
    calib_weight: float = 1.0,
) -> torch.Tensor:
    """Per-sample PRM loss ``[N]`` (FP-penalty term + FN-compensation term); see the module docstring."""
    labels = labels.long()
    f = F.normalize(feats, dim=1, eps=1e-12)
    base = f @ F.normalize(prototypes.to(f.dtype), dim=1, eps=1e-12).t() / tau  # [N, K]
    is_tp = tp.gather(1, labels[:, None]).squeeze(1).to(f.dtype)
    s_fn = (f * F.normalize(fn_centres, dim=1, eps=1e-12)[labels]).sum(1)
    s_fp = (f * F.normalize(fp_centres, dim=1, eps=1e-12)[labels]).sum(1)
    phi = (1 - s_fn) * has_fn[labels].to(f.dtype) * is_tp
    varphi = (1 + s_fp) * has_fp[labels].to(f.dtype) * is_tp
    w = calib_weight * (1 - probs.gather(1, labels[:, None]).squeeze(1))
    onehot = F.one_hot(labels, base.shape[1]).to(f.dtype)
    z_fp = base - onehot * (w * varphi)[:, None]
    z_fn = base - onehot * (w * phi)[:, None]
    return F.cross_entropy(z_fp, labels, reduction="none") + F.cross_entropy(z_fn, labels, reduction="none")


class PrototypeRefinement(nn.Module):
    """PRM loss head: max-pool + linear projection of a 5D feature map, EMA class prototypes, L_PR.

    Args:
        in_channels: channels ``C`` of the backbone feature map ``[N, C, T, H, W]``.
        num_classes: number of classes ``K``.
        dim: projection size ``D`` (256).
        tau: temperature (0.125).
        rho: EMA momentum of the prototypes (0.9; weight kept on the old prototype).
        calib_weight: factor on the ``(1 - p) * phi`` calibration terms (1.0 = the paper, = FR-Head).
    """

    prototypes: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        dim: int = 256,
        tau: float = 0.125,
        rho: float = 0.9,
        calib_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes < 1 or dim < 1 or in_channels < 1:
            raise ValueError("in_channels, num_classes and dim must be positive")
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {rho}")
        self.num_classes = num_classes
        self.dim = dim
        self.tau = tau
        self.rho = rho
        self.calib_weight = calib_weight
        self.pool = nn.AdaptiveMaxPool3d(1)
        self.fc = nn.Linear(in_channels, dim)
        self.register_buffer("prototypes", torch.randn(num_classes, dim), persistent=True)

    def project(self, feat5d: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> projected features ``[N, D]``."""
        return self.fc(self.pool(feat5d).flatten(1))

    @torch.no_grad()
    def update_prototypes(self, feats: torch.Tensor, tp: torch.Tensor) -> None:
        """EMA update from the TP features (summed over all ranks when a process group is up)."""
        sums, counts = class_sums(feats.detach().float(), tp)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            packed = torch.cat([sums, counts[:, None]], dim=1)
            dist.all_reduce(packed, op=dist.ReduceOp.SUM)
            sums, counts = packed[:, :-1], packed[:, -1]
        present = counts > 0
        means = sums / counts.clamp_min(1)[:, None]
        new = (1 - self.rho) * means.to(self.prototypes) + self.rho * self.prototypes
        self.prototypes.copy_(torch.where(present[:, None].to(self.prototypes.device), new, self.prototypes))

    def forward(self, feat5d: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scalar ``L_PR`` (batch mean); in training mode the prototypes are then EMA-updated."""
        feats = self.project(feat5d)
        labels = labels.long()
        tp, fn, fp = batch_groups(logits.argmax(1), labels, self.num_classes)
        fn_c, has_fn = class_centres(feats, fn)
        fp_c, has_fp = class_centres(feats, fp)
        probs = logits.softmax(1)
        loss = prototype_loss(
            feats, self.prototypes.detach(), probs, labels, tp, fn_c, has_fn, fp_c, has_fp, self.tau, self.calib_weight
        ).mean()
        if self.training:
            self.update_prototypes(feats, tp)
        return loss

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, dim={self.dim}, tau={self.tau}, rho={self.rho}, "
            f"calib_weight={self.calib_weight}"
        )
