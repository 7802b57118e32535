"""`mg ensemble`: weighted fusion arithmetic, weight search, and every malformed input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.ensemble import normalise_weights, run_ensemble, search_weights, simplex_grid
from mgcli.errors import MgError
from mgcli.io.scores import read_scores, write_scores

runner = CliRunner()


def _csv(
    path: Path, ids: list[str], labels: list[int], probs: list[list[float]], classes: list[int] | None = None
) -> Path:
    write_scores(path, ids, labels, np.asarray(probs, np.float64), classes)
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    a = _csv(tmp_path / "a.csv", ["c1", "c2", "c3"], [0, 1, 2], [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    # the same clips in another order
    b = _csv(tmp_path / "b.csv", ["c3", "c1", "c2"], [2, 0, 1], [[0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.0, 1.0, 0.0]])
    return a, b


def test_weighted_mean_aligned_by_clip_id(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    ens, info = run_ensemble([a, b], [1, 3])
    assert info is None and ens.weights == [0.25, 0.75]
    expected = 0.25 * np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]) + 0.75 * np.array(
        [[0.2, 0.7, 0.1], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8]]
    )
    np.testing.assert_allclose(ens.scores.probs, expected, atol=1e-6)
    assert ens.scores.clip_ids == ["c1", "c2", "c3"]
    equal, _ = run_ensemble([a, b])
    assert equal.weights == [0.5, 0.5]
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--weights", "1,3", "-o", str(tmp_path / "e.csv")])
    assert res.exit_code == 0, res.output
    written = read_scores(tmp_path / "e.csv")
    np.testing.assert_allclose(written.probs, expected, atol=1e-6)
    assert list(written.labels) == [0, 1, 2]
    assert "ensemble" in res.output and "top-1" in res.output
    assert (tmp_path / "e-report.json").is_file() and (tmp_path / "e-confusion.png").is_file()  # labelled: a report


def test_logits_are_softmaxed_first(tmp_path: Path) -> None:
    a = _csv(tmp_path / "a.csv", ["x"], [1], [[0.0, 2.0]])
    b = _csv(tmp_path / "b.csv", ["x"], [1], [[1.0, -1.0]])
    with pytest.raises(MgError, match="sum to 2.0000, not 1 \\(pass --logits"):
        run_ensemble([a, b])
    ens, _ = run_ensemble([a, b], logits=True)
    pa = np.exp([0.0, 2.0]) / np.exp([0.0, 2.0]).sum()
    pb = np.exp([1.0, -1.0]) / np.exp([1.0, -1.0]).sum()
    np.testing.assert_allclose(ens.scores.probs[0], (pa + pb) / 2)


def test_search_finds_the_known_best_weights(tmp_path: Path) -> None:
    # Constructed: model A is right on clips 0-5, B on clips 4-9, each wrong elsewhere with a
    # confident miss; only weights near 0.5/0.5 get all 10 right (A right ones at 0.9, B at 0.9,
    # misses at 0.6 on the wrong class).
    rng = np.random.default_rng(0)
    ids = [f"v_{i}" for i in range(10)]
    labels = rng.integers(0, 3, 10)

    def model(right: range) -> np.ndarray:
        p = np.zeros((10, 3))
        for i in range(10):
            if i in right:
                p[i] = 0.05
                p[i, labels[i]] = 0.9
            else:
                wrong = (labels[i] + 1) % 3
                p[i] = 0.2
                p[i, wrong] = 0.6
        return p

    pa, pb = model(range(0, 6)), model(range(4, 10))
    val_a = _csv(tmp_path / "va.csv", ids, list(labels), pa.tolist())
    val_b = _csv(tmp_path / "vb.csv", ids, list(labels), pb.tolist())
    from mgcli.ensemble import load_aligned

    w, top1 = search_weights(load_aligned([val_a, val_b]), step=0.1)
    assert top1 == 1.0 and w == pytest.approx([0.5, 0.5])
    # Skew B so that it is always right: the search must then put all weight on B.
    val_c = _csv(tmp_path / "vc.csv", ids, list(labels), model(range(10)).tolist())
    w, top1 = search_weights(load_aligned([val_a, val_c]), step=0.25)
    assert top1 == 1.0 and w[1] > w[0]
    # Run folders stand for their scores-val.csv / scores-test.csv pair.
    for name, p in (("ra", pa), ("rb", pb)):
        (tmp_path / name).mkdir()
        _csv(tmp_path / name / "scores-val.csv", ids, list(labels), p.tolist())
        _csv(tmp_path / name / "scores-test.csv", ids, [-1] * 10, p.tolist())
    res = runner.invoke(
        app, ["ensemble", str(tmp_path / "ra"), str(tmp_path / "rb"), "--search-weights", "-o", str(tmp_path / "s.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "val top-1 1.0000" in res.output
    np.testing.assert_allclose(read_scores(tmp_path / "s.csv").probs, (pa + pb) / 2, atol=1e-6)


def test_simplex_grid_and_weights() -> None:
    g = simplex_grid(3, 0.5)
    assert g.shape == (6, 3) and np.allclose(g.sum(1), 1)
    assert simplex_grid(2, 0.1)[0].tolist() == [0.5, 0.5]  # equal weights first
    with pytest.raises(MgError, match="--step must divide 1"):
        simplex_grid(2, 0.3)
    with pytest.raises(MgError, match="2 weights for 3 inputs"):
        normalise_weights([1, 2], 3)
    with pytest.raises(MgError, match="non-negative and not all zero"):
        normalise_weights([1, -1], 2)


@pytest.mark.parametrize(
    ("rows_b", "message"),
    [
        (
            "clip_id,label,0,1,2\nc1,0,0.5,0.5,0\nc2,1,0.5,0.5,0\nc9,2,0.2,0.2,0.6\n",
            "clip ids differ from .*1 missing \\(e.g. c3\\)",
        ),
        ("clip_id,label,0,1\nc1,0,0.5,0.5\nc2,1,0.5,0.5\nc3,1,0.2,0.8\n", "class columns differ"),
        ("clip_id,label,0,1,2\nc1,0,0.5,0.5,0\nc1,1,0.5,0.5,0\nc3,2,0.2,0.2,0.6\n", "duplicated clip id c1"),
        ("clip_id,label,0,1,2\nc1,0,0.5,0.5,0\nc2,1,nan,0.5,0\nc3,2,0.2,0.2,0.6\n", "row 3: class 0 is empty, NaN"),
        ("clip_id,label,0,1,2\nc1,0,1.5,-0.5,0\nc2,1,0.5,0.5,0\nc3,2,0.2,0.2,0.6\n", "row 2: negative probability"),
        (
            "clip_id,label,0,1,2\nc1,0,0.5,0.6,0\nc2,1,0.5,0.5,0\nc3,2,0.2,0.2,0.6\n",
            "row 2: probabilities sum to 1.1000",
        ),
        ("clip_id,label,0,1,2\nc1,1,0.5,0.5,0\nc2,1,0.5,0.5,0\nc3,2,0.2,0.2,0.6\n", "clip c1 is labelled 1 here but 0"),
    ],
)
def test_malformed_inputs_are_one_line_exit_2(
    two: tuple[Path, Path], tmp_path: Path, rows_b: str, message: str
) -> None:
    a, _ = two
    bad = tmp_path / "bad.csv"
    bad.write_text(rows_b)
    with pytest.raises(MgError, match=message):
        run_ensemble([a, bad])
    res = runner.invoke(app, ["ensemble", str(a), str(bad), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "bad.csv" in res.output
    assert not (tmp_path / "o.csv").exists()


def test_cli_argument_errors(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--weights", "1,2,3", "-o", str(out)])
    assert res.exit_code == 2 and "3 weights for 2 inputs" in res.output
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--weights", "x,1", "-o", str(out)])
    assert res.exit_code == 2 and "comma-separated numbers" in res.output
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--weights", "1,1", "--search-weights", "-o", str(out)])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--search-weights", "--val", str(a), "-o", str(out)])
    assert res.exit_code == 2 and "1 validation files for 2 inputs" in res.output
    out.write_text("keep me")
    res = runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 2 and out.read_text() == "keep me"


def run_folders(tmp: Path, sources: tuple[Path, ...], other_val: bool = False) -> list[Path]:
    """Run folders ra, rb, ... holding each source as scores-test.csv and as scores-val.csv (its
    classes reversed with ``other_val``)."""
    runs = []
    for name, src in zip(("ra", "rb", "rc"), sources, strict=False):
        d = tmp / name
        d.mkdir()
        s = read_scores(src)
        write_scores(d / "scores-test.csv", s.clip_ids, s.labels, s.probs, s.classes)
        val = s.probs[:, ::-1].copy() if other_val else s.probs
        write_scores(d / "scores-val.csv", s.clip_ids, s.labels, val, s.classes)
        runs.append(d)
    return runs


def test_folder_output_nests_as_an_input(two: tuple[Path, Path], tmp_path: Path) -> None:
    """Run folders bring their validation scores: the table gains a val column, a folder output
    holds the fused scores of both splits, and that folder is itself an input of another ensemble."""
    a, b = two
    runs = run_folders(tmp_path, (a, b), other_val=True)
    out = tmp_path / "j_l"
    res = runner.invoke(app, ["ensemble", *map(str, runs), "--weights", "0.4,0.6", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "val top-1" in res.output
    ens, _ = run_ensemble(runs, [0.4, 0.6])
    assert ens.val_scores is not None
    np.testing.assert_allclose(read_scores(out / "scores-val.csv").probs, ens.val_scores.probs, atol=1e-6)
    np.testing.assert_allclose(read_scores(out / "scores-test.csv").probs, ens.scores.probs, atol=1e-6)
    # the folder nests: equal weights of (j_l, ra) on test are 0.5 * (0.4 a + 0.6 b) + 0.5 a
    nested, _ = run_ensemble([out, runs[0]])
    expected = 0.5 * ens.scores.probs + 0.5 * read_scores(a).probs
    np.testing.assert_allclose(nested.scores.probs, expected, atol=1e-6)
    assert nested.val_scores is not None  # both inputs are folders with validation scores
    # plain CSV inputs have no validation side unless --val is given
    assert run_ensemble([a, b])[0].val_scores is None
    with_val = run_ensemble([a, b], [1, 1], val_inputs=[runs[0] / "scores-val.csv", runs[1] / "scores-val.csv"])[0]
    assert with_val.val_scores is not None


def test_write_ensemble_csv_or_folder(two: tuple[Path, Path], tmp_path: Path) -> None:
    """The library writer: a .csv is one file (plus the report when labelled), anything else a
    folder with both splits; an existing output is refused unless overwrite."""
    from mgcli.ensemble import output_paths, write_ensemble
    from mgcli.errors import OutputExistsError

    a, b = two
    ens, _ = run_ensemble([a, b], [1, 3])
    files = write_ensemble(ens, tmp_path / "e.csv")
    assert files.scores == [tmp_path / "e.csv"]
    assert files.report == [tmp_path / "e-report.json", tmp_path / "e-confusion.png"]
    np.testing.assert_allclose(read_scores(tmp_path / "e.csv").probs, ens.scores.probs, atol=1e-6)
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        write_ensemble(ens, tmp_path / "e.csv")
    assert write_ensemble(ens, tmp_path / "e.csv", overwrite=True).scores == [tmp_path / "e.csv"]
    # a folder without validation scores holds the test side only
    assert output_paths(tmp_path / "f") == {
        "test": tmp_path / "f/scores-test.csv",
        "val": tmp_path / "f/scores-val.csv",
    }
    assert write_ensemble(ens, tmp_path / "f").scores == [tmp_path / "f/scores-test.csv"]
    assert not (tmp_path / "f/scores-val.csv").exists()
    # with validation scores both splits land in the folder; a CSV output keeps the test side only
    with_val, _ = run_ensemble([a, b], [1, 3], val_inputs=[b, a])
    files = write_ensemble(with_val, tmp_path / "g")
    assert files.scores == [tmp_path / "g/scores-test.csv", tmp_path / "g/scores-val.csv"]
    assert with_val.val_scores is not None
    np.testing.assert_allclose(read_scores(tmp_path / "g/scores-val.csv").probs, with_val.val_scores.probs, atol=1e-6)
    assert write_ensemble(with_val, tmp_path / "h.CSV").scores == [tmp_path / "h.CSV"]
    # unlabelled test scores: no report
    s = read_scores(a)
    unlabelled = _csv(tmp_path / "u.csv", s.clip_ids, [-1] * 3, s.probs.tolist())
    files = write_ensemble(run_ensemble([unlabelled])[0], tmp_path / "u-ens.csv")
    assert files.report == [] and not (tmp_path / "u-ens-report.json").exists()


def test_ensemble_rows(two: tuple[Path, Path], tmp_path: Path) -> None:
    from mgcli.ensemble import ensemble_rows, input_name

    a, b = two
    ens, _ = run_ensemble([a, b], [1, 3])
    rows = ensemble_rows(ens, ["a", "b"])
    assert [r.name for r in rows] == ["a", "b", "ensemble"] and [r.fused for r in rows] == [False, False, True]
    assert [r.weight for r in rows] == [0.25, 0.75, 1.0]
    # a: argmax 0, 0, 2 against labels 0, 1, 2; b: c1 -> 1, c2 -> 1, c3 -> 2 (aligned to a's order)
    assert rows[0].test_top1 == pytest.approx(2 / 3) and rows[1].test_top1 == pytest.approx(2 / 3)
    assert rows[2].test_top1 == pytest.approx(2 / 3) and rows[2].test_top5 == 1.0
    assert all(r.val_top1 is None for r in rows)  # no validation side
    with_val, _ = run_ensemble([a, b], [1, 0], val_inputs=[a, b])
    assert ensemble_rows(with_val, ["a", "b"])[2].val_top1 == pytest.approx(2 / 3)
    s = read_scores(a)
    unlabelled = _csv(tmp_path / "u.csv", s.clip_ids, [-1] * 3, s.probs.tolist())
    (row, fused) = ensemble_rows(run_ensemble([unlabelled])[0], ["u"])
    assert row.test_top1 is None and fused.test_top5 is None
    (tmp_path / "run").mkdir()
    assert input_name(tmp_path / "run") == "run" and input_name(a) == str(a)


# ---------------------------------------------------------------- the bounded, lazy weight search


def _old_search(val: list, step: float) -> tuple[list[float], float]:
    """The exhaustive search as it was: the full product grid, sorted by spread, one weighting at a time."""
    import itertools

    n, k = len(val), round(1 / step)
    points = [c for c in itertools.product(range(k + 1), repeat=n - 1) if sum(c) <= k]
    grid = np.array([[*c, k - sum(c)] for c in points], np.float64) / k
    grid = grid[np.argsort(np.abs(grid - 1.0 / n).sum(axis=1), kind="stable")]
    from mgcli.ensemble import column_labels

    labels = column_labels(val[0])
    known = labels >= 0
    y = labels[known]
    stack = np.stack([s.probs[known] for s in val])
    best, best_w = None, None
    for w in grid:
        p = np.tensordot(w, stack, axes=1)
        key = (float((p.argmax(1) == y).mean()), -float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()))
        if best is None or key > best:
            best, best_w = key, w
    return best_w.tolist(), best[0]


def _random_scores(rng: np.random.Generator, n: int, clips: int, classes: int) -> list:
    from mgcli.io.scores import Scores

    y = rng.integers(0, classes, clips)
    ids = [f"v{i}" for i in range(clips)]
    return [Scores(ids, y, rng.dirichlet(np.ones(classes) * 0.5, clips), list(range(classes))) for _ in range(n)]


def test_lazy_grid_is_the_full_enumeration_and_its_count() -> None:
    import itertools
    import math

    from mgcli.ensemble import grid_size, simplex_chunks

    for n in range(1, 5):
        for k in range(7):
            full = [(*c, k - sum(c)) for c in itertools.product(range(k + 1), repeat=n - 1) if sum(c) <= k]
            for chunk in (1, 4, 65536):
                chunks = list(simplex_chunks(n, k, chunk))
                assert all(1 <= len(c) <= chunk and c.shape[1] == n for c in chunks)
                assert [tuple(r) for c in chunks for r in c.tolist()] == full, (n, k, chunk)
            assert grid_size(n, k) == len(full) == math.comb(k + n - 1, n - 1)
    assert grid_size(5, 100) == 4_598_126
    # the sorted small grid still starts at equal weights and holds every point once
    g = simplex_grid(4, 0.25)
    assert g[0].tolist() == [0.25] * 4 and len({tuple(r) for r in g.tolist()}) == len(g) == grid_size(4, 4)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_search_keeps_the_exhaustive_result(n: int) -> None:
    rng = np.random.default_rng(n)
    for step in (0.5, 0.25, 0.2, 0.1):
        for clips in (5, 17):
            val = _random_scores(rng, n, clips, 4)
            w, top1 = search_weights(val, step)
            w_old, top1_old = _old_search(val, step)
            assert w == w_old and top1 == top1_old, (step, clips)


def test_search_in_many_chunks_is_the_same_and_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    import mgcli.ensemble as ensemble

    val = _random_scores(np.random.default_rng(7), 3, 20, 5)
    calls: list[tuple[int, int]] = []
    w, top1 = search_weights(val, 0.05, progress=lambda done, total: calls.append((done, total)))
    total = ensemble.grid_size(3, 20)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    monkeypatch.setattr(ensemble, "_CHUNK_VALUES", 20 * 5 * 7)  # 7 weightings a chunk
    chunked: list[tuple[int, int]] = []
    assert search_weights(val, 0.05, progress=lambda d, t: chunked.append((d, t))) == (w, top1)
    done = [d for d, _ in chunked]
    assert len(chunked) == 1 + -(-total // 7) and done == sorted(done) and done[-1] == total
    assert all(d - p <= 7 for p, d in zip(done, done[1:], strict=False))
    assert (w, top1) == _old_search(val, 0.05)


def test_identical_inputs_tie_to_equal_weights() -> None:
    """Mixtures of one model are all the same mixture: the tie goes to equal weights, not to float noise."""
    (s,) = _random_scores(np.random.default_rng(3), 1, 30, 6)
    w, _ = search_weights([s, s, s], 0.1)
    assert w == [0.3, 0.3, 0.4]  # the least spread (3/3/4 tenths and permutations), the first of them
    assert search_weights([s, s], 0.1)[0] == [0.5, 0.5]


def test_grid_cap_and_step_checks() -> None:
    from mgcli.ensemble import MAX_WEIGHTINGS, check_grid, finest_divisions, grid_size

    assert finest_divisions(5) == 80 and grid_size(5, 80) <= MAX_WEIGHTINGS < grid_size(5, 81)
    assert check_grid(5, 0.0125) == 80 and check_grid(3, 1 / 3) == 3 and check_grid(3, 0.333333) == 3
    with pytest.raises(MgError, match="2,024,785 weightings, over the cap of 2,000,000.* 0.0125 \\(1/80\\)"):
        check_grid(5, 1 / 81)
    with pytest.raises(MgError, match="more than 10\\^300 weightings"):
        check_grid(2, 1e-300)
    for n in (2, 3, 4, 7, 10, 30):  # the suggested step reads back as the finest grid that fits
        k = finest_divisions(n)
        with pytest.raises(MgError, match="over the cap") as refused:
            check_grid(n, 1 / (k + 1))
        suggested = float(str(refused.value).rsplit(" is ", 1)[1].split()[0])
        assert check_grid(n, suggested) == k
    in_range = "in \\(0, 1\\]"
    for bad, message in ((0, in_range), (1.5, in_range), (float("nan"), in_range), (0.3, "divide 1")):
        with pytest.raises(MgError, match=message):
            check_grid(2, bad)


def _one_line_error(res: Any, *parts: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_cli_refuses_a_grid_over_the_cap(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    out = tmp_path / "o.csv"
    inputs = [str(a), str(b), str(a), str(b), str(a)]
    vals = [x for v in inputs for x in ("--val", v)]
    res = runner.invoke(app, ["ensemble", *inputs, "--search-weights", "--step", "0.01", *vals, "-o", str(out)])
    _one_line_error(res, "4,598,126 weightings", "cap of 2,000,000", "finest step that fits 5 inputs is 0.0125 (1/80)")
    assert not out.exists()
    step = ["--search-weights", "--step", "0.3", "--val", str(a), "--val", str(b)]
    res = runner.invoke(app, ["ensemble", str(a), str(b), *step, "-o", str(out)])
    _one_line_error(res, "--step must divide 1")


def test_search_without_validation_scores_is_refused(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["ensemble", str(a), str(b), "--search-weights", "-o", str(out)])
    _one_line_error(res, "no validation scores", "--val", "scores-val.csv", "never tunes on the test scores")
    assert not out.exists()
    with pytest.raises(MgError, match="no validation scores"):
        run_ensemble([a, b], search=True)
    # a run folder with scores-val.csv beside a plain CSV: the CSV is named
    run = tmp_path / "run"
    run.mkdir()
    s = read_scores(a)
    write_scores(run / "scores-test.csv", s.clip_ids, s.labels, s.probs, s.classes)
    write_scores(run / "scores-val.csv", s.clip_ids, s.labels, s.probs, s.classes)
    res = runner.invoke(app, ["ensemble", str(run), str(b), "--search-weights", "-o", str(out)])
    _one_line_error(res, f"{b}: no validation scores")
    # a test input given as a validation file is not validation scores either
    res = runner.invoke(
        app, ["ensemble", str(a), str(b), "--search-weights", "--val", str(run), "--val", str(b), "-o", str(out)]
    )
    _one_line_error(res, "is also the test input", "never tunes on the test scores")
    assert not out.exists()


def test_output_that_is_an_input_is_refused(two: tuple[Path, Path], tmp_path: Path) -> None:
    from mgcli.ensemble import write_ensemble

    a, b = two
    before = a.read_bytes()
    for out in (a, tmp_path / "x" / ".." / "a.csv"):
        res = runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(out), "--overwrite"])
        _one_line_error(res, "the output would replace the input", "a.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(a)
    res = runner.invoke(app, ["ensemble", str(link), str(b), "-o", str(a), "--overwrite"])
    _one_line_error(res, "the output would replace the input")
    with pytest.raises(MgError, match="would replace the input"):
        write_ensemble(run_ensemble([a, b])[0], a, overwrite=True)
    assert a.read_bytes() == before and not (tmp_path / "a-report.json").exists()
    # a folder output over a run folder input, or over a validation file it would rewrite
    runs = run_folders(tmp_path, (a, b))
    kept = {p: p.read_bytes() for d in runs for p in d.iterdir()}
    res = runner.invoke(app, ["ensemble", *map(str, runs), "-o", str(runs[0]), "--overwrite"])
    _one_line_error(res, "scores-test.csv: the output would replace the input")
    val_run = runs[1] / "scores-val.csv"
    vals = ["--val", str(runs[0]), "--val", str(val_run)]
    res = runner.invoke(app, ["ensemble", str(a), str(b), *vals, "-o", str(runs[1]), "--overwrite"])
    _one_line_error(res, "scores-val.csv: the output would replace the input")
    assert {p: p.read_bytes() for d in runs for p in d.iterdir()} == kept


@pytest.mark.parametrize(
    ("val_b", "message"),
    [
        (None, "1 validation files for 2 inputs"),
        ("clip_id,label,0,1,2\nc1,0,0.5,0.5,0\nc9,1,0.5,0.5,0\nc3,2,0.2,0.2,0.6\n", "vb.csv: clip ids differ"),
        ("clip_id,label,0,1\nc1,0,0.5,0.5\nc2,1,0.5,0.5\nc3,1,0.2,0.8\n", "vb.csv: class columns differ"),
        ("missing", "vb.csv: scores file not found"),
    ],
)
def test_validation_mismatch_is_one_line(
    two: tuple[Path, Path], tmp_path: Path, val_b: str | None, message: str
) -> None:
    a, b = two
    va, vb = tmp_path / "va.csv", tmp_path / "vb.csv"
    va.write_bytes(a.read_bytes())
    vals = ["--val", str(va)]
    if val_b is not None:
        if val_b != "missing":
            vb.write_text(val_b)
        vals += ["--val", str(vb)]
    for search in ([], ["--search-weights"]):
        res = runner.invoke(app, ["ensemble", str(a), str(b), *vals, *search, "-o", str(tmp_path / "o.csv")])
        _one_line_error(res, message)
    assert not (tmp_path / "o.csv").exists()
