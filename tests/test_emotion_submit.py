"""`mg submit --task emotion`: one win/lose row per test video, byte for byte, and its refusals."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_emotion_labels import fake_release
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import MgError
from mgcli.io.scores import write_scores
from mgcli.submit import emotion_test_ids, write_emotion_submission

runner = CliRunner()
VIDEOS = {"train": ["0001", "0007"], "val": ["0020"], "test": ["0009", "0010", "0012"]}


@pytest.fixture
def release(tmp_path: Path) -> Path:
    fake_release(tmp_path / "release", VIDEOS)
    return tmp_path / "release"


def _scores(path: Path, p_win: dict[str, float], classes: int = 2) -> Path:
    ids = list(p_win)
    probs = np.zeros((len(ids), classes))
    probs[:, 1] = [p_win[v] for v in ids]
    probs[:, 0] = 1 - probs[:, 1] - probs[:, 2:].sum(1)
    write_scores(path, ids, [-1] * len(ids), probs)
    return path


def _member(zip_path: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(zip_path) as z:
        (name,) = z.namelist()
        return name, z.read(name)


def test_submission_bytes(tmp_path: Path, release: Path) -> None:
    scores = _scores(tmp_path / "s.csv", {"0012": 0.2, "0009": 0.9, "0010": 0.5})  # any order; 0.5 is a win
    path, table = write_emotion_submission(scores, tmp_path / "prediction.zip", release)
    assert _member(path) == ("prediction.csv", b"video_id,label\n0009,1\n0010,1\n0012,0\n")
    assert table["label"].tolist() == [1, 1, 0]
    again, _ = write_emotion_submission(scores, tmp_path / "again.zip", release)
    assert again.read_bytes() == path.read_bytes()  # reproducible: fixed timestamps


def test_columns_option(tmp_path: Path, release: Path) -> None:
    scores = _scores(tmp_path / "s.csv", {"0009": 0.9, "0010": 0.1, "0012": 0.7})
    path, _ = write_emotion_submission(scores, tmp_path / "a.zip", release, columns="Id, Target")
    assert _member(path)[1] == b"Id,Target\n0009,1\n0010,0\n0012,1\n"
    path, _ = write_emotion_submission(scores, tmp_path / "b.zip", release, columns="none")
    assert _member(path)[1] == b"0009,1\n0010,0\n0012,1\n"
    with pytest.raises(MgError, match="--columns must be two column names"):
        write_emotion_submission(scores, tmp_path / "c.zip", release, columns="video_id")
    assert not (tmp_path / "c.zip").exists()


def test_cli(tmp_path: Path, release: Path) -> None:
    scores = _scores(tmp_path / "s.csv", {"0009": 0.9, "0010": 0.1, "0012": 0.7})
    out = tmp_path / "prediction.zip"
    args = ["submit", "--task", "emotion", str(scores), "--release", str(release), "-o", str(out)]
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "3 test videos, 2 win, 1 lose" in res.output
    assert _member(out) == ("prediction.csv", b"video_id,label\n0009,1\n0010,0\n0012,1\n")
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 2 and "already exists" in res.output
    res = runner.invoke(app, [*args, "--overwrite", "--columns", "id,pred"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert _member(out)[1] == b"id,pred\n0009,1\n0010,0\n0012,1\n"


@pytest.mark.parametrize(
    ("p_win", "classes", "match"),
    [
        ({"0009": 0.9, "0010": 0.1}, 2, r"1 test videos missing, e\.g\. 0012"),
        (
            {"0009": 0.9, "0010": 0.1, "0012": 0.5, "0001": 0.3},
            2,
            r"1 videos that are not test videos of the release, e\.g\. 0001",
        ),
        ({"0009": 0.9, "0010": 0.1, "0012": 0.5, "0999": 0.3}, 2, r"not test videos of the release, e\.g\. 0999"),
        ({"0009": 0.5, "0010": 0.1, "0012": 0.2}, 3, r"expected 2 classes \(columns 0 = lose, 1 = win\), got 3"),
        ({"0009": 0.9, "0010": 0.1, "0012_0": 0.5}, 2, r"1 malformed video ids .*'0012_0'.*1 test videos missing"),
    ],
    ids=["missing", "extra-release-video", "extra-unknown-video", "three-classes", "clip-ids"],
)
def test_refusals(tmp_path: Path, release: Path, p_win: dict[str, float], classes: int, match: str) -> None:
    scores = _scores(tmp_path / "s.csv", p_win, classes)
    out = tmp_path / "p.zip"
    with pytest.raises(MgError, match="refusing to write a submission: .*" + match):
        write_emotion_submission(scores, out, release)
    assert not out.exists()
    res = runner.invoke(
        app,
        ["submit", "--task", "emotion", str(scores), "--release", str(release), "-o", str(out)],
        env={"COLUMNS": "300"},
    )
    assert res.exit_code == 2 and "refusing to write a submission" in res.output
    assert len(res.output.strip().splitlines()) == 1  # one line
    assert not out.exists()


def test_test_ids_from_protocol(tmp_path: Path) -> None:
    ids = emotion_test_ids(None, "imigue2021")
    assert len(ids) == 100 and ids[:3] == ["0009", "0010", "0012"]
    # a release whose folders disagree with the protocol: the protocol's test videos it has
    fake_release(tmp_path / "r", {"train": ["0009", "0012"], "test": ["0001", "0010"]})
    assert emotion_test_ids(tmp_path / "r") == ["0001", "0010"]
    assert emotion_test_ids(tmp_path / "r", "imigue2021") == ["0009", "0010", "0012"]
    scores = _scores(tmp_path / "s.csv", {v: 0.6 for v in ids})
    path, table = write_emotion_submission(scores, tmp_path / "p.zip", protocol="imigue2021")
    assert len(table) == 100 and _member(path)[1].startswith(b"video_id,label\n0009,1\n0010,1\n")
    with pytest.raises(MgError, match="needs --release"):
        emotion_test_ids(None, None)
    with pytest.raises(MgError, match="must be a release folder"):
        emotion_test_ids(scores)


def test_cli_task_checks(tmp_path: Path, release: Path) -> None:
    scores = _scores(tmp_path / "s.csv", {"0009": 0.9, "0010": 0.1, "0012": 0.7})
    res = runner.invoke(app, ["submit", "--task", "mood", str(scores), "--release", str(release)])
    assert res.exit_code == 2 and "--task must be one of gesture, emotion" in res.output
    res = runner.invoke(app, ["submit", str(scores), "-o", str(tmp_path / "p.zip")])
    assert res.exit_code == 2 and "--release is required" in res.output
    res = runner.invoke(
        app, ["submit", "--task", "emotion", str(scores), "--release", str(release), "--format", "codalab2023"]
    )
    assert res.exit_code == 2 and "--format must be one of kaggle2025 for --task emotion" in res.output


def test_columns_on_the_gesture_formats(tmp_path: Path, release: Path) -> None:
    from mgcli.submit import write_submission

    ids = ["0009_0", "0010_0", "0012_0"]  # one clip per video in the fake release
    probs = np.full((3, 32), 0.5 / 31)
    probs[[0, 1, 2], [4, 0, 31]] = 0.5
    scores = write_scores(tmp_path / "g.csv", ids, [-1] * 3, probs)
    path, n = write_submission(scores, release, "kaggle2025", tmp_path / "default.zip")
    assert n == 3 and _member(path) == ("prediction.csv", b"Id,Target\n0009_0,4\n0010_0,0\n0012_0,31\n")
    path, _ = write_submission(scores, release, "kaggle2025", tmp_path / "c.zip", columns="clip,cls")
    assert _member(path) == ("prediction.csv", b"clip,cls\n0009_0,4\n0010_0,0\n0012_0,31\n")
