"""``mg ensemble``: weighted fusion of score CSVs, with optional weight search on validation scores.

Every input is a scores CSV (``clip_id,label,<class ids>``) of the same clips and classes.
Probabilities are averaged with weights (normalised to sum 1); with ``logits=True`` each input is
turned into probabilities by a softmax first. :func:`search_weights` tries every weight vector on
a simplex grid and keeps the one with the best validation top-1 (ties: the lower log-loss, then
the one closer to equal weights, then the earlier grid point). The grid is walked lazily in
chunks (:func:`simplex_chunks`) and capped at :data:`MAX_WEIGHTINGS` points, so memory and time
stay bounded whatever the number of inputs and the step; it only ever runs on validation scores.
:func:`write_ensemble` writes the result (one CSV, or a folder with both splits) and its report,
never over one of its inputs; :func:`ensemble_rows` is the table ``mg ensemble`` prints.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mgcli.errors import DataError, MgError, OutputExistsError
from mgcli.io.atomic import same_file
from mgcli.io.scores import Scores, check_probabilities, read_scores, write_scores
from mgcli.report import topk_accuracy


@dataclass
class Ensemble:
    scores: Scores  # the fused scores (clip order and classes of the first input)
    weights: list[float]  # normalised, one per input
    inputs: list[Scores]  # the inputs, aligned to the first one's clip order and as probabilities
    val_scores: Scores | None = None  # the same weights applied to the validation scores, when known
    val_inputs: list[Scores] | None = None
    paths: list[Path] = field(default_factory=list)  # every file read (test, then validation side)


# The weight search: at most this many weight vectors (simplex grid points) are tried ...
MAX_WEIGHTINGS = 2_000_000
# ... in chunks of at most this many vectors ...
GRID_CHUNK = 65_536
# ... and at most this many fused probabilities (vectors x clips x classes) in memory at once.
_CHUNK_VALUES = 1 << 21
# Log-losses closer than this are a tie (float rounding of mathematically equal mixtures).
_NLL_TIE = 1e-9


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


def grid_divisions(step: float) -> int:
    """``k = 1 / step`` for a weight-search step, which must be in (0, 1] and divide 1 (1/step
    within 1e-5 of a whole number, so 0.333333 stands for 1/3)."""
    if not 0 < step <= 1:
        raise MgError(f"--step must be in (0, 1], got {step}")
    inv = 1 / step
    k = round(inv) if math.isfinite(inv) else 0
    if k < 1 or abs(k * step - 1) > 1e-5:
        raise MgError(f"--step must divide 1 (1/step a whole number, e.g. 0.1, 0.05, 0.02), got {step}")
    return k


def grid_size(n: int, k: int) -> int:
    """How many weight vectors of ``n`` entries in multiples of ``1/k`` sum to 1: the
    compositions of ``k`` into ``n`` parts, C(k + n - 1, n - 1)."""
    return math.comb(k + n - 1, n - 1)


def finest_divisions(n: int, cap: int = MAX_WEIGHTINGS) -> int:
    """The largest ``k`` (finest step ``1/k``) whose grid over ``n`` inputs has at most ``cap``
    points; 0 when not even ``k = 1`` fits."""
    if grid_size(n, 1) > cap:
        return 0
    lo, hi = 1, max(1, cap)  # grid_size(n, k) >= k + 1 for n >= 2, and 1 for n == 1
    if grid_size(n, hi) <= cap:
        return hi
    while hi - lo > 1:  # lo fits, hi does not
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if grid_size(n, mid) > cap else (mid, hi)
    return lo


def _step_text(k: int) -> str:
    """``1/k`` as a ``--step`` to type: the fewest digits (at least 6) that read back as ``k``."""
    text = next(t for t in (f"{1 / k:.{d}g}" for d in range(6, 18)) if _divisions_or_none(float(t)) == k)
    return f"{text} (1/{k})"


def _divisions_or_none(step: float) -> int | None:
    try:
        return grid_divisions(step)
    except MgError:
        return None


def check_grid(n: int, step: float, cap: int = MAX_WEIGHTINGS) -> int:
    """``k = 1 / step`` once the step is valid and the grid over ``n`` inputs has at most ``cap``
    points; otherwise one line saying how many points that is and the finest step that fits."""
    k = grid_divisions(step)
    count = grid_size(n, k)  # exact and cheap (n - 1 factors), even for a huge k
    if count > cap:
        size = f"{count:,}" if count < 10**15 else f"more than 10^{math.floor(math.log10(count))}"
        finest = finest_divisions(n, cap)
        fits = f"the finest step that fits {n} inputs is {_step_text(finest)}" if finest else f"no step fits {n} inputs"
        raise MgError(f"--step {step} over {n} inputs is {size} weightings, over the cap of {cap:,}: {fits}")
    return k


def simplex_chunks(n: int, k: int, chunk: int = GRID_CHUNK) -> Iterator[np.ndarray]:
    """Every composition of ``k`` into ``n`` non-negative parts (the weight vectors ``c / k``),
    lazily, as int64 arrays ``[m, n]`` of at most ``chunk`` rows, in lexicographic order.

    Stars and bars: a composition is a choice of ``n - 1`` bar positions among ``k + n - 1``
    slots, and :func:`itertools.combinations` yields those in the same lexicographic order."""
    if n < 1 or k < 0:
        raise ValueError(f"no simplex grid for n={n}, k={k}")
    if n == 1:
        yield np.array([[k]], np.int64)
        return
    bars = itertools.combinations(range(k + n - 1), n - 1)
    lo = np.full((1, 1), -1, np.int64)
    hi = np.full((1, 1), k + n - 1, np.int64)
    while True:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(bars, max(1, chunk))), np.int64)
        if not flat.size:
            return
        b = flat.reshape(-1, n - 1)
        m = len(b)
        yield np.diff(np.hstack([np.broadcast_to(lo, (m, 1)), b, np.broadcast_to(hi, (m, 1))]), axis=1) - 1


def simplex_grid(n: int, step: float) -> np.ndarray:
    """Every weight vector of ``n`` entries in multiples of ``step`` summing to 1 (``[M, n]``),
    the equal-weight-most point first (a small grid: at most :data:`MAX_WEIGHTINGS` points)."""
    k = check_grid(n, step)
    grid = np.concatenate(list(simplex_chunks(n, k)))
    spread = np.abs(n * grid - k).sum(axis=1)  # exact: n * k * L1 distance to equal weights
    return grid[np.argsort(spread, kind="stable")].astype(np.float64) / k


def search_weights(
    val: Sequence[Scores],
    step: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
    cap: int = MAX_WEIGHTINGS,
) -> tuple[list[float], float]:
    """The grid weights with the best top-1 on the labelled validation clips (ties: lower
    log-loss, then closer to equal weights, then the earlier grid point); returns them and that
    top-1. The grid (at most ``cap`` points, see :func:`check_grid`) is walked in chunks, each
    evaluated at once; ``progress(done, total)`` is called after every chunk."""
    n = len(val)
    k = check_grid(n, step, cap)
    total = grid_size(n, k)
    labels = column_labels(val[0])
    known = labels >= 0
    if not known.any():
        raise MgError("the validation scores carry no labels: nothing to search the weights on")
    y = labels[known]
    n_clips, n_classes = int(known.sum()), len(val[0].classes)
    stack = np.stack([s.probs[known] for s in val])  # [n, N, K]
    flat = stack.reshape(n, n_clips * n_classes)
    at_label = stack[:, np.arange(n_clips), y]  # [n, N]: each input's probability of the true class
    rows = max(1, min(GRID_CHUNK, _CHUNK_VALUES // (n_clips * n_classes)))
    best: tuple[int, float, int] | None = None  # (correct clips, log-loss, spread) of best_c
    best_c: np.ndarray | None = None
    done = 0
    if progress is not None:
        progress(0, total)
    for c in simplex_chunks(n, k, rows):
        w = c / k
        correct = ((w @ flat).reshape(len(c), n_clips, n_classes).argmax(axis=2) == y).sum(axis=1)
        nll = -np.log(np.clip(w @ at_label, 1e-12, None)).mean(axis=1)
        spread = np.abs(n * c - k).sum(axis=1)
        # this chunk's best: most correct, then lowest log-loss, then least spread, then first
        cand = np.flatnonzero(correct == correct.max())
        cand = cand[nll[cand] <= nll[cand].min() + _NLL_TIE]
        j = int(cand[np.argmin(spread[cand])])
        key = (int(correct[j]), float(nll[j]), int(spread[j]))
        if best is None or _better(key, best):
            best, best_c = key, c[j].copy()
        done += len(c)
        if progress is not None:
            progress(done, total)
    assert best is not None and best_c is not None
    return (best_c / k).tolist(), best[0] / n_clips


def _better(a: tuple[int, float, int], b: tuple[int, float, int]) -> bool:
    """Whether grid point ``a`` (correct, log-loss, spread) beats ``b``, which came earlier."""
    if a[0] != b[0]:
        return a[0] > b[0]
    if abs(a[1] - b[1]) > _NLL_TIE:
        return a[1] < b[1]
    return a[2] < b[2]


def resolve_pair(item: str | Path, split: str) -> Path:
    """A run directory stands for its ``scores-{split}.csv``; a file is itself."""
    p = Path(item)
    return p / f"scores-{split}.csv" if p.is_dir() else p


def validation_paths(inputs: Sequence[str | Path], val_inputs: Sequence[str | Path] | None = None) -> list[Path] | None:
    """The validation side: ``val_inputs`` (a run folder stands for its ``scores-val.csv``) when
    given, else every input's ``scores-val.csv`` when each input is a run folder holding one,
    else ``None`` (no validation scores; never the test scores)."""
    if val_inputs:
        return [resolve_pair(v, "val") for v in val_inputs]
    paths = [resolve_pair(i, "val") for i in inputs]
    if inputs and all(Path(i).is_dir() and v.is_file() for i, v in zip(inputs, paths, strict=True)):
        return paths
    return None


def ensemble_input_files(inputs: Sequence[str | Path], val_inputs: Sequence[str | Path] | None = None) -> list[Path]:
    """Every file an ensemble of ``inputs`` reads: the test side, then the validation side."""
    return [resolve_pair(i, "test") for i in inputs] + (validation_paths(inputs, val_inputs) or [])


def run_ensemble(
    inputs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    logits: bool = False,
    val_inputs: Sequence[str | Path] | None = None,
    step: float = 0.1,
    search: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Ensemble, dict[str, float] | None]:
    """Fuse the test inputs with ``weights`` (default equal) or, with ``search``, with the weights
    that give the best top-1 on the validation scores (``progress(done, total)`` follows the
    search). Inputs may be run directories (their ``scores-test.csv``; the validation side then
    defaults to their ``scores-val.csv``). The validation side (``val_inputs``, or every input's
    run directory when each holds one) is fused with the same weights. A search without
    validation scores is refused: it never tunes on the test scores. Returns the ensemble and,
    after a search, ``{"val_top1": ...}``."""
    if search and weights is not None:
        raise MgError("--weights and --search-weights exclude each other")
    if not inputs:
        raise MgError("give at least one scores CSV")
    if search:
        check_grid(len(inputs), step)  # before reading anything: a bad step or a grid too large
    test_paths = [resolve_pair(i, "test") for i in inputs]
    val_paths = validation_paths(inputs, val_inputs)
    if val_paths is not None and len(val_paths) != len(test_paths):
        raise MgError(f"{len(val_paths)} validation files for {len(test_paths)} inputs (give them in the same order)")
    if search:
        if val_paths is None:
            lacking = next(
                (i for i in inputs if not (Path(i).is_dir() and resolve_pair(i, "val").is_file())), inputs[0]
            )
            raise MgError(
                "no validation scores: the weight search needs --val (one per input, in order) or run folders "
                "with scores-val.csv; it never tunes on the test scores",
                lacking,
            )
        for v in val_paths:
            for t in test_paths:
                if same_file(v, t):
                    raise MgError(
                        f"this validation file is also the test input {t}: the weight search never tunes on "
                        "the test scores",
                        v,
                    )
    tests = load_aligned(test_paths, logits)
    vals = None
    if val_paths is not None:
        vals = load_aligned(val_paths, logits)
        if vals[0].classes != tests[0].classes:
            raise DataError("the validation scores have other class columns than the test scores", val_paths[0])
    info = None
    if search:
        assert vals is not None
        w, top1 = search_weights(vals, step, progress)
        info = {"val_top1": top1}
    else:
        w = normalise_weights(weights, len(tests))
    val_scores = fuse(vals, w) if vals is not None else None
    paths = test_paths + (val_paths or [])
    return Ensemble(fuse(tests, w), list(w), tests, val_scores, vals, paths), info


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


def ensemble_output_files(out: str | Path) -> list[Path]:
    """Every file writing an ensemble to ``out`` may replace: the fused scores (see
    :func:`output_paths`) and the report beside the test scores."""
    paths = output_paths(out)
    prefix = paths["test"].with_suffix("")
    report = [prefix.with_name(prefix.name + "-report.json"), prefix.with_name(prefix.name + "-confusion.png")]
    return [*paths.values(), *report]


def check_ensemble_output(out: str | Path, overwrite: bool = False, inputs: Sequence[str | Path] = ()) -> None:
    """Refuse an output that is one of the ``inputs`` (files read; even with ``overwrite``), a
    folder output that is a file, and an existing output (a CSV or a folder) unless ``overwrite``."""
    out = Path(out)
    for target in [out, *ensemble_output_files(out)]:
        for i in inputs:
            if same_file(target, i):
                raise MgError(f"the output would replace the input {i} (choose another --out)", target)
    if out.suffix.lower() != ".csv" and out.exists() and not out.is_dir():
        raise MgError("is a file, not a folder: give a .csv output or a folder", out)
    if out.exists() and not overwrite:
        raise OutputExistsError("exists (pass --overwrite to replace it)", out)


def write_ensemble(ens: Ensemble, out: str | Path, overwrite: bool = False) -> EnsembleFiles:
    """Write the fused scores to ``out`` (see :func:`output_paths`: the validation side is
    written only into a folder, and only when it is known), then the test scores' report
    (``PREFIX-report.json``, ``PREFIX-confusion.png`` beside them) when they carry labels.
    Refuses to write over any file the ensemble was made from (``ens.paths``)."""
    from mgcli.report import write_report

    check_ensemble_output(out, overwrite, ens.paths)
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
