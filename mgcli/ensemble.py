"""``mg ensemble``: weighted fusion of score CSVs, with optional weight search on validation scores.

Every input is a scores CSV (``clip_id,label,<class ids>``) of the same clips and classes.
Probabilities are averaged with weights (normalised to sum 1); with ``logits=True`` each input is
turned into probabilities by a softmax first. :func:`search_weights` tries every weight vector on
a simplex grid and keeps the one with the best validation top-1 (ties: the lower log-loss, then
the earlier grid point, which favours equal weights). :func:`write_ensemble` writes the result
(one CSV, or a folder with both splits) and its report; :func:`ensemble_rows` is the table
``mg ensemble`` prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgcli.errors import DataError, MgError, OutputExistsError
from mgcli.io.scores import Scores, check_probabilities, read_scores, write_scores
from mgcli.report import topk_accuracy


@dataclass
class Ensemble:
    scores: Scores  # the fused scores (clip order and classes of the first input)
    weights: list[float]  # normalised, one per input
    inputs: list[Scores]  # the inputs, aligned to the first one's clip order and as probabilities
    val_scores: Scores | None = None  # the same weights applied to the validation scores, when known
    val_inputs: list[Scores] | None = None


def load_aligned(paths: Sequence[str | Path], logits: bool = False) -> list[Scores]:
    """Read the inputs, check they hold the same clips and classes, and align them to the first
    one's clip order. Probabilities are checked (non-negative, rows sum to 1) unless ``logits``,
    in which case each row is turned into probabilities by a softmax."""
    if not paths:
        raise MgError("give at least one scores CSV")
    out: list[Scores] = []
    for path in paths:
        s = read_scores(path)  # duplicated ids, NaN, bad headers: one line each
        if logits:
            z = s.probs - s.probs.max(axis=1, keepdims=True)
            p = np.exp(z)
            s = Scores(s.clip_ids, s.labels, p / p.sum(axis=1, keepdims=True), s.classes)
        else:
            check_probabilities(s, path)
        if out:
            ref = out[0]
            if s.classes != ref.classes:
                raise DataError(
                    f"class columns differ from {paths[0]} ({len(s.classes)} vs {len(ref.classes)}, "
                    f"first difference at column {_first_difference(s.classes, ref.classes)})",
                    path,
                )
            if set(s.clip_ids) != set(ref.clip_ids):
                missing = sorted(set(ref.clip_ids) - set(s.clip_ids))
                extra = sorted(set(s.clip_ids) - set(ref.clip_ids))
                detail = (
                    f"{len(missing)} missing (e.g. {missing[0]})"
                    if missing
                    else f"{len(extra)} extra (e.g. {extra[0]})"
                )
                raise DataError(f"clip ids differ from {paths[0]}: {detail}", path)
            index = {c: i for i, c in enumerate(s.clip_ids)}
            order = np.array([index[c] for c in ref.clip_ids])
            s = Scores(list(ref.clip_ids), s.labels[order], s.probs[order], s.classes)
            known = (s.labels >= 0) & (ref.labels >= 0)
            if (s.labels[known] != ref.labels[known]).any():
                i = int(np.flatnonzero(known & (s.labels != ref.labels))[0])
                raise DataError(
                    f"clip {ref.clip_ids[i]} is labelled {s.labels[i]} here but {ref.labels[i]} in {paths[0]}", path
                )
        out.append(s)
    return out


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Equal weights by default; otherwise ``n`` non-negative weights, not all zero, scaled to sum 1."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise MgError(f"{len(weights)} weights for {n} inputs")
    w = np.asarray(weights, np.float64)
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise MgError(f"weights must be non-negative and not all zero, got {list(weights)}")
    return (w / w.sum()).tolist()


def fuse(inputs: Sequence[Scores], weights: Sequence[float]) -> Scores:
    """The weighted mean of aligned probability inputs."""
    probs = sum(w * s.probs for w, s in zip(weights, inputs, strict=True))
    labels = np.max(np.stack([s.labels for s in inputs]), axis=0)  # a label from any input
    ref = inputs[0]
    return Scores(list(ref.clip_ids), labels, probs, list(ref.classes))


def column_labels(s: Scores) -> np.ndarray:
    """Labels as column indices (-1 unknown), for the accuracy functions."""
    col = {c: i for i, c in enumerate(s.classes)}
    return np.array([col[int(v)] if v >= 0 else -1 for v in s.labels], np.int64)


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of ``n`` entries in multiples of ``step`` summing to 1 (``[M, n]``),
    the equal-weight-most point first when it is on the grid."""
    if not 0 < step <= 1 or abs(round(1 / step) - 1 / step) > 1e-9:
        raise MgError(f"--step must divide 1 (e.g. 0.1, 0.05), got {step}")
    k = round(1 / step)
    points = [c for c in itertools.product(range(k + 1), repeat=n - 1) if sum(c) <= k]
    grid = np.array([[*c, k - sum(c)] for c in points], np.float64) / k
    spread = np.abs(grid - 1.0 / n).sum(axis=1)
    return grid[np.argsort(spread, kind="stable")]


def search_weights(val: Sequence[Scores], step: float = 0.1) -> tuple[list[float], float]:
    """The grid weights with the best top-1 on the labelled validation clips (ties: lower
    log-loss, then closer to equal weights); returns them and that top-1."""
    labels = column_labels(val[0])
    known = labels >= 0
    if not known.any():
        raise MgError("the validation scores carry no labels: nothing to search the weights on")
    y = labels[known]
    stack = np.stack([s.probs[known] for s in val])  # [n, N, K]
    best: tuple[float, float] | None = None
    best_w: np.ndarray | None = None
    for w in simplex_grid(len(val), step):
        p = np.tensordot(w, stack, axes=1)
        top1 = float((p.argmax(1) == y).mean())
        nll = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())
        key = (top1, -nll)
        if best is None or key > best:
            best, best_w = key, w
    assert best is not None and best_w is not None
    return best_w.tolist(), best[0]


def resolve_pair(item: str | Path, split: str) -> Path:
    """A run directory stands for its ``scores-{split}.csv``; a file is itself."""
    p = Path(item)
    return p / f"scores-{split}.csv" if p.is_dir() else p


def run_ensemble(
    inputs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    logits: bool = False,
    val_inputs: Sequence[str | Path] | None = None,
    step: float = 0.1,
    search: bool = False,
) -> tuple[Ensemble, dict[str, float] | None]:
    """Fuse the test inputs with ``weights`` (default equal) or, with ``search``, with the weights
    that give the best top-1 on the validation scores. Inputs may be run directories (their
    ``scores-test.csv``; the validation side then defaults to their ``scores-val.csv``). The
    validation side (``val_inputs``, or every input's run directory when each holds one) is fused
    with the same weights. Returns the ensemble and, after a search, ``{"val_top1": ...}``."""
    if search and weights is not None:
        raise MgError("--weights and --search-weights exclude each other")
    test_paths = [resolve_pair(i, "test") for i in inputs]
    tests = load_aligned(test_paths, logits)
    val_paths = [resolve_pair(i, "val") for i in (val_inputs or inputs)]
    if not (
        search or val_inputs or all(Path(i).is_dir() and v.is_file() for i, v in zip(inputs, val_paths, strict=True))
    ):
        val_paths = []
    vals = None
    if val_paths:
        if len(val_paths) != len(test_paths):
            raise MgError(
                f"{len(val_paths)} validation files for {len(test_paths)} inputs (give them in the same order)"
            )
        vals = load_aligned(val_paths, logits)
        if vals[0].classes != tests[0].classes:
            raise DataError("the validation scores have other class columns than the test scores", val_paths[0])
    info = None
    if search:
        assert vals is not None
        w, top1 = search_weights(vals, step)
        info = {"val_top1": top1}
    else:
        w = normalise_weights(weights, len(tests))
    val_scores = fuse(vals, w) if vals is not None else None
    return Ensemble(fuse(tests, w), list(w), tests, val_scores, vals), info


# ------------------------------------------------------------------------- what mg ensemble writes


@dataclass
class EnsembleFiles:
    scores: list[Path]  # the fused scores-test (and scores-val) CSVs
    report: list[Path]  # the report JSON and confusion PNG of the test scores, when labelled


@dataclass
class EnsembleRow:
    """One line of the ensemble table: an input or the ensemble itself (``None``: no labels)."""

    name: str
    weight: float
    val_top1: float | None
    test_top1: float | None
    test_top5: float | None
    fused: bool = False


def output_paths(out: str | Path) -> dict[str, Path]:
    """Where the fused scores go: ``out`` itself when it ends in ``.csv``, otherwise a folder
    holding ``scores-test.csv`` and ``scores-val.csv`` (so it is an input of another ensemble)."""
    out = Path(out)
    if out.suffix.lower() == ".csv":
        return {"test": out}
    return {split: out / f"scores-{split}.csv" for split in ("test", "val")}


def check_ensemble_output(out: str | Path, overwrite: bool = False) -> None:
    """Refuse an existing output (a CSV or a folder) unless ``overwrite``."""
    if Path(out).exists() and not overwrite:
        raise OutputExistsError("exists (pass --overwrite to replace it)", out)


def write_ensemble(ens: Ensemble, out: str | Path, overwrite: bool = False) -> EnsembleFiles:
    """Write the fused scores to ``out`` (see :func:`output_paths`: the validation side is
    written only into a folder, and only when it is known), then the test scores' report
    (``PREFIX-report.json``, ``PREFIX-confusion.png`` beside them) when they carry labels."""
    from mgcli.report import write_report

    check_ensemble_output(out, overwrite)
    paths = output_paths(out)
    if "val" in paths:
        Path(out).mkdir(parents=True, exist_ok=True)
    written = [_write(paths["test"], ens.scores)]
    if ens.val_scores is not None and "val" in paths:
        written.append(_write(paths["val"], ens.val_scores))
    report: list[Path] = []
    if (ens.scores.labels >= 0).any():
        _, report = write_report(ens.scores, paths["test"].with_suffix(""), title=str(paths["test"]))
    return EnsembleFiles(written, report)


def _write(path: Path, s: Scores) -> Path:
    return write_scores(path, s.clip_ids, s.labels, s.probs, s.classes, overwrite=True)


def _accuracy(s: Scores | None, k: int) -> float | None:
    if s is None:
        return None
    y = column_labels(s)
    return topk_accuracy(s.probs, y, k) if (y >= 0).any() else None


def ensemble_rows(ens: Ensemble, names: Sequence[str]) -> list[EnsembleRow]:
    """Top-1 / top-5 of every input (named by ``names``) and of the ensemble, last; the
    validation top-1 where validation scores are known."""
    vals: Sequence[Scores | None] = ens.val_inputs if ens.val_inputs is not None else [None] * len(ens.inputs)
    rows = [
        EnsembleRow(name, w, _accuracy(v, 1), _accuracy(s, 1), _accuracy(s, 5))
        for name, w, s, v in zip(names, ens.weights, ens.inputs, vals, strict=True)
    ]
    rows.append(
        EnsembleRow(
            "ensemble",
            1.0,
            _accuracy(ens.val_scores, 1),
            _accuracy(ens.scores, 1),
            _accuracy(ens.scores, 5),
            fused=True,
        )
    )
    return rows


def input_name(item: str | Path) -> str:
    """How the table names an input: a run folder by its name, a file by its path as given."""
    p = Path(item)
    return p.name if p.is_dir() else str(p)
