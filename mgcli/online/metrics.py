"""Online recognition (MiGA Track 2) scores: detected segments against the ground truth.

Two matchings, both with the organisers' overlap ``(min(end_p, end_g) - max(start_p, start_g)) /
(max(end_p, end_g) - min(start_p, start_g))`` (intersection over the hull of the two segments, in
frames as written, no +1; two identical one-frame segments count as 1) and a threshold (0.3):

- ``organisers``: what the organisers' starter code (SMG ``THDutils.tester_SMG``) computes. For
  each ground-truth segment, in order, the first prediction (in file order) of the same class with
  an overlap above the threshold is a hit. A prediction is not used up, so one prediction can be
  the hit of several ground-truth segments (and precision can then exceed 1).
- ``strict`` (our default): one-to-one. Per video and class, the pairs above the threshold are
  taken by decreasing overlap (then by the prediction's score, then file order), each prediction
  and each ground-truth segment at most once.

Precision = hits / predictions and recall = hits / ground-truth segments, pooled over every
video; F1 = 2PR / (P + R) (0 when both are 0). Per class: the predictions and ground-truth
segments of that class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MATCHINGS = ("strict", "organisers")


def overlap(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """The organisers' overlap of segments ``[ps, pe]`` and ``[gs, ge]`` (broadcast)."""
    ps, pe, gs, ge = (np.asarray(a, np.float64) for a in (ps, pe, gs, ge))
    inter = np.minimum(pe, ge) - np.maximum(ps, gs)
    hull = np.maximum(pe, ge) - np.minimum(ps, gs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hull > 0, inter / np.where(hull > 0, hull, 1.0), 1.0)


def match_video(pred: pd.DataFrame, gt: pd.DataFrame, matching: str, threshold: float) -> np.ndarray:
    """For each ground-truth row of one video, the index (row position in ``pred``) of its hit, or -1."""
    if matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    hit = np.full(len(gt), -1, np.int64)
    if not len(pred) or not len(gt):
        return hit
    ov = overlap(
        pred["start"].to_numpy()[None], pred["end"].to_numpy()[None], gt["start"].to_numpy()[:, None],
        gt["end"].to_numpy()[:, None],
    )  # fmt: skip
    ok = (gt["label"].to_numpy()[:, None] == pred["label"].to_numpy()[None]) & (ov > threshold)  # [G, P]
    if matching == "organisers":
        first = ok.argmax(1)
        return np.where(ok.any(1), first, -1)
    g_idx, p_idx = np.nonzero(ok)
    score = pred["score"].to_numpy()[p_idx]
    order = np.lexsort((p_idx, -score, -ov[g_idx, p_idx]))  # overlap desc, score desc, file order
    used = np.zeros(len(pred), bool)
    for g, p in zip(g_idx[order], p_idx[order], strict=True):
        if hit[g] < 0 and not used[p]:
            hit[g], used[p] = p, True
    return hit


@dataclass
class OnlineScore:
    matching: str
    threshold: float
    hits: int
    predictions: int
    ground_truth: int
    per_class: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.hits / self.predictions if self.predictions else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.ground_truth if self.ground_truth else 0.0

    @property
    def f1(self) -> float:
        return f1(self.precision, self.recall)

    def to_dict(self) -> dict[str, Any]:
        return {
            "matching": self.matching,
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "hits": self.hits,
            "predictions": self.predictions,
            "ground_truth": self.ground_truth,
            "per_class": {str(k): v for k, v in self.per_class.items()},
        }


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score_online(
    pred: pd.DataFrame, gt: pd.DataFrame, matching: str = "strict", threshold: float = 0.3
) -> tuple[OnlineScore, pd.DataFrame]:
    """Score predictions (``video_id, label, start, end, score``) against ground-truth segments
    (``video_id, label, start, end``). Every prediction counts, so give only those of the ground
    truth's videos (see :func:`split_detections`). Returns the score and the ground truth with a
    ``hit`` column (the row position in ``pred`` of its hit, or -1)."""
    pred = pred.reset_index(drop=True)
    gt = gt.reset_index(drop=True).copy()
    gt["hit"] = -1
    by_video = {v: g.index.to_numpy() for v, g in pred.groupby("video_id")}
    for vid, g in gt.groupby("video_id"):
        rows = by_video.get(vid)
        if rows is None:  # nothing detected in this video: every gesture of it is missed
            continue
        local = match_video(pred.loc[rows], g, matching, threshold)
        gt.loc[g.index, "hit"] = np.where(local >= 0, rows[np.maximum(local, 0)], -1)
    hits = int((gt["hit"] >= 0).sum())
    per_class: dict[int, dict[str, float]] = {}
    for c in sorted(set(gt["label"]) | set(pred["label"])):
        n_gt = int((gt["label"] == c).sum())
        n_pred = int((pred["label"] == c).sum())
        h = int(((gt["label"] == c) & (gt["hit"] >= 0)).sum())
        p, r = (h / n_pred if n_pred else 0.0), (h / n_gt if n_gt else 0.0)
        per_class[int(c)] = {"precision": p, "recall": r, "f1": f1(p, r), "hits": h, "predictions": n_pred,
                             "ground_truth": n_gt}  # fmt: skip
    return OnlineScore(matching, threshold, hits, len(pred), len(gt), per_class), gt


def split_detections(pred: pd.DataFrame, video_ids: list[str] | set[str]) -> tuple[pd.DataFrame, list[str]]:
    """The predictions on ``video_ids`` (renumbered from 0) and the other videos they name."""
    inside = pred["video_id"].isin(set(video_ids))
    return pred[inside].reset_index(drop=True), sorted(pred.loc[~inside, "video_id"].unique())
