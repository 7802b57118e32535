"""mgcli.report: metrics on hand-computed examples and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mgcli.errors import MgError
from mgcli.report import (
    confusion_matrix,
    per_class_accuracy,
    plot_confusion,
    plot_curves,
    summarize,
    topk_accuracy,
)

# 6 classes, 5 rows; the last row is unlabelled (-1) and would be wrong if it counted.
PROBS = np.array(
    [
        [0.50, 0.20, 0.10, 0.10, 0.05, 0.05],  # true 0: rank 0
        [0.30, 0.25, 0.20, 0.15, 0.06, 0.04],  # true 3: rank 3
        [0.05, 0.10, 0.15, 0.20, 0.25, 0.25],  # true 5: tie with 4, rank 1 (lower index first)
        [0.10, 0.10, 0.10, 0.10, 0.10, 0.50],  # true 1: rank 2 (ties with 0 count, 2-4 do not)
        [0.90, 0.02, 0.02, 0.02, 0.02, 0.02],  # unlabelled
    ]
)
LABELS = np.array([0, 3, 5, 1, -1])
NAMES = ["a", "b", "c", "d", "e", "f"]


def test_topk_hand_computed() -> None:
    assert topk_accuracy(PROBS, LABELS, 1) == pytest.approx(1 / 4)
    assert topk_accuracy(PROBS, LABELS, 2) == pytest.approx(2 / 4)
    assert topk_accuracy(PROBS, LABELS, 3) == pytest.approx(3 / 4)
    assert topk_accuracy(PROBS, LABELS, 5) == pytest.approx(1.0)
    assert topk_accuracy(PROBS, LABELS, 10) == 1.0
    assert math.isnan(topk_accuracy(PROBS, np.full(5, -1), 1))
    # Top-1 agrees with argmax on ties (first index wins).
    tie = np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])
    assert topk_accuracy(tie, np.array([0, 1]), 1) == 0.5
    with pytest.raises(MgError, match="outside the 6 classes"):
        topk_accuracy(PROBS, np.array([0, 1, 2, 6, 0]), 1)


def test_confusion_and_per_class() -> None:
    cm = confusion_matrix(LABELS, PROBS.argmax(1), 6)
    expected = np.zeros((6, 6), np.int64)
    expected[0, 0] = expected[3, 0] = expected[5, 4] = expected[1, 5] = 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    cm = confusion_matrix([0, 0, 1, 1, 1, 2, -1], [0, 1, 1, 1, 0, 2, 2], 4)
    np.testing.assert_array_equal(cm, [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    acc = per_class_accuracy(cm)
    np.testing.assert_allclose(acc[:3], [0.5, 2 / 3, 1.0])
    assert math.isnan(acc[3])
    with pytest.raises(MgError):
        confusion_matrix([0, 4], [0, 0], 4)


def test_summarize_json_ready() -> None:
    s = summarize(PROBS, LABELS, NAMES)
    assert s["n"] == 4 and s["top1"] == pytest.approx(0.25) and s["top5"] == pytest.approx(1.0)
    # classes with samples: a (1/1), b (0/1), d (0/1), f (0/1); c and e have none.
    assert s["per_class"] == {"a": 1.0, "b": 0.0, "c": None, "d": 0.0, "e": None, "f": 0.0}
    assert s["mean_class_accuracy"] == pytest.approx(0.25)
    assert np.array(s["confusion"]).sum() == 4
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text) == s
    # top-5 with fewer classes than 5 is clipped to K; no labels at all gives None, not NaN.
    s3 = summarize(PROBS[:, :3], np.array([0, 1, 2, 2, 0]), NAMES[:3])
    assert s3["top5"] == 1.0
    empty = summarize(PROBS, np.full(5, -1), NAMES)
    assert empty["n"] == 0 and empty["top1"] is None and empty["mean_class_accuracy"] is None
    json.dumps(empty, allow_nan=False)
    with pytest.raises(MgError, match="class names"):
        summarize(PROBS, LABELS, NAMES[:5])


def _decoded(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        arr = np.asarray(im.convert("L"))
    assert arr.std() > 5  # something was drawn
    assert not list(path.parent.glob(f".{path.name}.tmp-*"))  # atomic: no temporaries left
    return im.size


def test_plot_confusion(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"class name {i}" for i in range(32)]
    labels = rng.integers(0, 32, 500)
    preds = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 32, 500))
    cm = confusion_matrix(labels, preds, 32)
    out = plot_confusion(cm, names, tmp_path / "sub" / "cm.png", title="val")
    assert out == tmp_path / "sub" / "cm.png"
    w, h = _decoded(out)
    small = plot_confusion(cm[:4, :4], names[:4], tmp_path / "cm4.png")
    w4, h4 = _decoded(small)
    assert w > w4 and h > h4  # scales with the number of classes
    plot_confusion(np.zeros((3, 3), np.int64), ["x", "y", "z"], out)  # overwrites; empty rows are fine
    _decoded(out)


def test_plot_curves(tmp_path: Path) -> None:
    history = [
        {"epoch": e, "train_loss": 3.0 / e, "lr": 0.1 * (1 + math.cos(math.pi * e / 10)) / 2}
        | ({"val_top1": 0.1 * e, "val_loss": 2.5 / e} if e % 2 == 0 else {})
        for e in range(1, 11)
    ]
    w3, _ = _decoded(plot_curves(history, tmp_path / "curves.png"))
    no_val = [{k: h[k] for k in ("epoch", "train_loss", "lr")} for h in history]
    w2, _ = _decoded(plot_curves(no_val, tmp_path / "curves2.png"))
    assert w3 > w2  # three panels vs two
    with pytest.raises(MgError):
        plot_curves([], tmp_path / "none.png")


def test_precision_recall_and_confused_pairs_by_hand() -> None:
    from mgcli.report import confused_pairs, precision_recall

    cm = np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0]])
    p, r = precision_recall(cm)
    np.testing.assert_allclose(p[:2], [3 / 5, 2 / 3])
    assert np.isnan(p[2]) and np.isnan(r[2])
    np.testing.assert_allclose(r[:2], [3 / 4, 2 / 4])
    assert confused_pairs(cm) == [(1, 0, 2), (0, 1, 1)]


def test_mg_report_writes_json_and_png(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from mgcli.cli import app
    from mgcli.io.scores import write_scores

    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    write_scores(tmp_path / "s.csv", ["a", "b", "c", "d"], [0, 1, 1, 2], probs)
    res = CliRunner().invoke(app, ["report", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "s-report.json").read_text())
    assert report["top1"] == 0.75 and report["n"] == 4
    # class ids 0-2 are iMiGUE's first three classes
    assert report["per_class"]["turtle neck"] == {"class": 0, "precision": 0.5, "recall": 1.0, "support": 1}
    assert report["confused_pairs"] == [{"true": "deep breath", "predicted": "turtle neck", "count": 1}]
    assert (tmp_path / "s-confusion.png").stat().st_size > 1000
    assert "most confused" in res.output
    write_scores(tmp_path / "u.csv", ["a"], [-1], probs[:1])
    res = CliRunner().invoke(app, ["report", str(tmp_path / "u.csv")])
    assert res.exit_code == 2 and "no labels" in res.output
