"""`mg submit`: both challenge formats byte for byte, and validation against the clip table."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import MgError
from mgcli.io.h5 import write_table
from mgcli.io.scores import write_scores
from mgcli.submit import write_submission

runner = CliRunner()
TEST_IDS = ["0054_0", "0054_1", "0101_0"]


@pytest.fixture
def clips_h5(tmp_path: Path) -> Path:
    import h5py

    table = pd.DataFrame(
        {
            "clip_id": ["0001_0", *TEST_IDS],
            "video_id": ["0001", "0054", "0054", "0101"],
            "split": ["train", "test", "test", "test"],
            "start": [0, 0, 10, 0],
            "end": [5, 9, 20, 7],
            "label": [3, -1, -1, -1],
        }
    )
    path = tmp_path / "clips.h5"
    with h5py.File(path, "w") as f:
        write_table(f.create_group("clips"), table)
    return path


def _scores(path: Path, ids: list[str], preds: list[int], k: int = 32) -> Path:
    probs = np.full((len(ids), k), 0.5 / (k - 1))
    for i, p in enumerate(preds):
        probs[i, p] = 0.5
    write_scores(path, ids, [-1] * len(ids), probs)
    return path


def _member(zip_path: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(zip_path) as z:
        (name,) = z.namelist()
        return name, z.read(name)


def test_kaggle_and_codalab_files_byte_for_byte(tmp_path: Path, clips_h5: Path) -> None:
    scores = _scores(tmp_path / "s.csv", ["0101_0", "0054_0", "0054_1"], [31, 25, 0])  # any order
    path, n = write_submission(scores, clips_h5, "kaggle2025", tmp_path / "prediction.zip")
    assert n == 3
    assert _member(path) == ("prediction.csv", b"Id,Target\n0054_0,25\n0054_1,0\n0101_0,31\n")
    path, _ = write_submission(scores, clips_h5, "codalab2023", tmp_path / "Submission.zip")
    assert _member(path) == ("Submission.csv", b"0054_0,25\n0054_1,0\n0101_0,31\n")
    again, _ = write_submission(scores, clips_h5, "codalab2023", tmp_path / "again.zip")
    assert again.read_bytes() == path.read_bytes()  # reproducible zip
    res = runner.invoke(app, ["submit", str(scores), "--release", str(clips_h5), "-o", str(tmp_path / "p.zip")])
    assert res.exit_code == 0, res.output
    assert "3 test clips" in res.output
    pd.testing.assert_frame_equal(
        pd.read_csv(io.BytesIO(_member(tmp_path / "p.zip")[1])),
        pd.DataFrame({"Id": ["0054_0", "0054_1", "0101_0"], "Target": [25, 0, 31]}),
    )


def test_every_problem_is_listed_and_nothing_written(tmp_path: Path, clips_h5: Path) -> None:
    scores = _scores(tmp_path / "s.csv", ["0054_0", "0001_0", "clip7"], [1, 2, 3])
    out = tmp_path / "p.zip"
    with pytest.raises(MgError) as e:
        write_submission(scores, clips_h5, "kaggle2025", out)
    msg = str(e.value)
    assert "1 malformed clip ids" in msg and "'clip7'" in msg
    assert "2 test clips missing, e.g. 0054_1, 0101_0" in msg
    assert "2 clips that are not test clips" in msg
    assert not out.exists()
    few = _scores(tmp_path / "k.csv", TEST_IDS, [1, 2, 40], k=41)
    with pytest.raises(MgError, match="1 predictions outside classes 0-31, e.g. 0101_0 -> 40"):
        write_submission(few, clips_h5, "kaggle2025", out)
    with pytest.raises(MgError, match="--format must be one of kaggle2025, codalab2023"):
        write_submission(scores, clips_h5, "csv", out)
    res = runner.invoke(app, ["submit", str(scores), "--release", str(clips_h5), "-o", str(out)])
    assert res.exit_code == 2 and "refusing to write a submission" in " ".join(res.output.split())


def test_clip_table_from_the_release(small_sample: Path, tmp_path: Path) -> None:
    from mgcli.dataset.release import Release

    ids = Release(small_sample).clips(check_frames=False)
    test_ids = ids.loc[ids["split"] == "test", "clip_id"].tolist()
    scores = _scores(tmp_path / "s.csv", test_ids, [3] * len(test_ids))
    path, n = write_submission(scores, small_sample, "kaggle2025", tmp_path / "prediction.zip")
    assert n == len(test_ids) > 0
    assert _member(path)[1].decode().splitlines()[1] == f"{test_ids[0]},3"
    path.write_bytes(b"old")
    with pytest.raises(MgError, match="exists"):
        write_submission(scores, small_sample, "kaggle2025", path)
    assert path.read_bytes() == b"old"


def test_release_option(tmp_path: Path, clips_h5: Path) -> None:
    scores = _scores(tmp_path / "s.csv", TEST_IDS, [1, 2, 3])
    res = runner.invoke(app, ["submit", str(scores), "-o", str(tmp_path / "p.zip")])
    assert res.exit_code == 2 and "--release" in res.output  # required
    res = runner.invoke(app, ["submit", str(scores), "--release", str(scores), "-o", str(tmp_path / "p.zip")])
    assert res.exit_code == 2 and "--release must be a release folder or an artifact (.h5)" in res.output
    assert not (tmp_path / "p.zip").exists()
