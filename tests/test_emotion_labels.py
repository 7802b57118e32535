"""Emotion (win / lose) labels: the label CSV reader, the release's label files, the imigue2021
protocol, the per-video table and the counts in `mg inspect`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.dataset.emotion import (
    EMOTION_PROTOCOLS,
    emotion_videos,
    find_emotion_label_files,
    read_emotion_labels,
)
from mgcli.dataset.release import Release
from mgcli.errors import DataError, MgError

runner = CliRunner()


def fake_release(root: Path, videos: dict[str, list[str]], nested: str | None = None) -> Path:
    """Split folders with one light_hand file and one label file per video; returns the folder
    holding the split folders (``root`` or ``root/nested``)."""
    base = root / nested if nested else root
    folders = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}
    for split, vids in videos.items():
        for vid in vids:
            d = base / folders[split] / vid
            d.mkdir(parents=True)
            (d / f"{vid}_light_hand.csv").write_text("0," + ",".join(["1.0"] * 105) + "\n")
            (d / f"{vid}_label.csv").write_text("1,0,5\n")
    return base


VIDEOS = {"train": ["0001", "0007", "0008"], "val": ["0020"], "test": ["0009", "0010"]}


def _csv(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the reader


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0007,1\n0008,0\n", {"0007": 1, "0008": 0}),
        ("video_id,label\n0007,1\n0008,0\n", {"0007": 1, "0008": 0}),
        ("vid,emotion\r\n7,1\r\n8,0\r\n", {"0007": 1, "0008": 0}),
        ("7,win\n8,lose\n", {"0007": 1, "0008": 0}),
        ("7, WIN \n 8 ,Lose\n", {"0007": 1, "0008": 0}),
        ("7,Positive\n8,NEGATIVE\n", {"0007": 1, "0008": 0}),
        ("7,1.0\n8,0.0\n", {"0007": 1, "0008": 0}),
        ("7.0,1\n0453,0\n", {"0007": 1, "0453": 0}),
        ("\ufeffvideo_id,label\n\n0007,1\n\n", {"0007": 1}),
    ],
    ids=["digits", "header", "other-header-crlf", "win-lose", "case-space", "pos-neg", "float", "id-forms", "bom"],
)
def test_accepted_label_formats(tmp_path: Path, text: str, expected: dict[str, int]) -> None:
    assert read_emotion_labels(_csv(tmp_path, text)) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0007,1\n0008,2\n", r"row 2: label '2' is not 1/0"),
        ("0007,maybe\n", r"row 1: label 'maybe' is not"),
        ("0007,0.5\n", r"row 1: label '0.5'"),
        ("0007,\n", r"row 1: label '' is not"),
        ("0007,1\n7,0\n", r"row 2: video 0007 is listed twice \(first on row 1\)"),
        ("0007,1\n,0\n", r"row 2: empty video id"),
        ("0007,1\nabc,0\n", r"row 2: video id 'abc' is not a number"),
        ("0007,1\n12345,0\n", r"row 2: video id '12345'"),
        ("0007,1\n-3,0\n", r"row 2: video id '-3'"),
        ("0007,1\n0008,0,extra\n", r"row 2: expected 2 fields video_id,label, got 3"),
        ("0007\n", r"row 1: expected 2 fields"),
        ("", r"emotion label file has no rows"),
        ("\n  \n", r"emotion label file has no rows"),
        ("video_id,label\n", r"emotion label file has no rows"),
    ],
    ids=[
        "label-2",
        "label-word",
        "label-half",
        "label-empty",
        "duplicate",
        "empty-id",
        "text-id",
        "long-id",
        "negative-id",
        "three-columns",
        "one-column",
        "empty-file",
        "blank-file",
        "header-only",
    ],
)
def test_malformed_label_files(tmp_path: Path, text: str, match: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(DataError, match=match) as e:
        read_emotion_labels(path)
    assert e.value.path == str(path)


def test_missing_label_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read emotion labels"):
        read_emotion_labels(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- the protocol


def test_imigue2021_protocol_lists() -> None:
    p = EMOTION_PROTOCOLS["imigue2021"]
    assert set(p) == {"train", "test"}
    assert len(p["train"]) == 102 and len(set(p["train"])) == 102
    assert len(p["test"]) == 100 and len(set(p["test"])) == 100
    assert not set(p["train"]) & set(p["test"])
    assert all(len(v) == 4 and v.isdigit() for v in p["train"] + p["test"])
    # ranges expanded at both ends, and the ids around them
    assert {"0102", "0103", "0104", "0105", "0106", "0448", "0453"} <= set(p["train"])
    assert "0107" in p["test"] and "0101" not in p["train"] + p["test"]
    assert {"0049", "0050", "0051", "0052", "0447"} <= set(p["test"])
    assert p["train"][0] == "0001" and p["test"][0] == "0009"


# --------------------------------------------------------------------------- the release's files


@pytest.mark.parametrize("where", ["root", "beside", "parent-of-split-root"])
def test_release_label_files_found(tmp_path: Path, where: str) -> None:
    nested = "imigue_release" if where == "beside" else None
    base = fake_release(tmp_path / "r", VIDEOS, nested)
    (base / "train_label.csv").write_text("video_id,label\n1,1\n7,0\n")  # 0008 unlabelled
    (base / "validation_label.csv").write_text("0020,win\n")
    (base / "test_label.csv").write_text("9,1\n10,0\n")
    root = base / "imigue_skeleton_train" if where == "parent-of-split-root" else tmp_path / "r"
    release = Release(root)
    table = emotion_videos(release)
    got = {r.video_id: (r.split, r.label) for r in table.itertuples()}
    if where == "parent-of-split-root":  # only the train folder is this release: only its file is read
        assert find_emotion_label_files(release) == {"train": [base / "train_label.csv"]}
        assert got == {"0001": ("train", 1), "0007": ("train", 0), "0008": ("train", -1)}
        return
    assert find_emotion_label_files(release) == {
        "train": [base / "train_label.csv"],
        "val": [base / "validation_label.csv"],
        "test": [base / "test_label.csv"],
    }
    assert got == {
        "0001": ("train", 1),
        "0007": ("train", 0),
        "0008": ("train", -1),
        "0020": ("val", 1),
        "0009": ("test", 1),
        "0010": ("test", 0),
    }
    assert list(table.columns) == ["video_id", "split", "label"] and table["label"].dtype == "int64"
    assert table["video_id"].tolist() == sorted(got)
    assert table.attrs["warnings"] == []


def test_no_label_files_means_unlabelled(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    release = Release(tmp_path)
    assert find_emotion_label_files(release) == {}
    table = emotion_videos(release)
    assert len(table) == 6 and (table["label"] == -1).all()


def test_label_files_that_disagree(tmp_path: Path) -> None:
    base = fake_release(tmp_path, VIDEOS, "inner")
    (tmp_path / "train_label.csv").write_text("1,1\n")
    (base / "train_label.csv").write_text("1,0\n")
    with pytest.raises(DataError, match="video 0001 is lose here but win in"):
        emotion_videos(Release(tmp_path))


def test_videos_without_files_are_left_out(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    (tmp_path / "imigue_skeleton_train" / "0030").mkdir()  # a folder with nothing in it
    table = emotion_videos(Release(tmp_path))
    assert "0030" not in set(table["video_id"]) and len(table) == 6


def test_unknown_ids_in_release_file(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    (tmp_path / "train_label.csv").write_text("1,1\n2,0\n3,1\n4,0\n5,1\n6,1\n7,0\n")
    with pytest.raises(
        DataError, match=r"5 labelled videos are not in the release .* \(e\.g\. 0002, 0003, 0004, 0005"
    ) as e:
        emotion_videos(Release(tmp_path))
    assert e.value.path == str(tmp_path / "train_label.csv")


def test_labels_file_replaces_the_release_files(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    (tmp_path / "train_label.csv").write_text("1,this file is broken and must not be read\n")
    mine = _csv(tmp_path, "1,lose\n9,win\n", "mine.csv")
    table = emotion_videos(Release(tmp_path), labels_file=mine)
    assert table.set_index("video_id")["label"].to_dict() == {
        "0001": 0,
        "0007": -1,
        "0008": -1,
        "0009": 1,
        "0010": -1,
        "0020": -1,
    }
    unknown = _csv(tmp_path, "1,1\n0999,0\n", "unknown.csv")
    with pytest.raises(DataError, match=r"1 labelled videos are not in the release .*0999") as e:
        emotion_videos(Release(tmp_path), labels_file=unknown)
    assert e.value.path == str(unknown)


def test_protocol_splits(tmp_path: Path) -> None:
    # 0001, 0007 train and 0009 test in imigue2021; 0020 is in neither list; 0010 is test there
    fake_release(tmp_path, {"train": ["0001", "0009"], "val": ["0020"], "test": ["0007", "0010"]})
    (tmp_path / "train_label.csv").write_text("1,1\n9,0\n")
    table = emotion_videos(Release(tmp_path), protocol="imigue2021")
    got = {r.video_id: (r.split, r.label) for r in table.itertuples()}
    assert got == {"0001": ("train", 1), "0007": ("train", -1), "0009": ("test", 0), "0010": ("test", -1)}
    (warning,) = table.attrs["warnings"]
    assert warning.startswith("198 of the imigue2021 protocol's videos are not in this release (e.g. 0008, 0011")
    with pytest.raises(MgError, match="unknown emotion protocol 'nope'"):
        emotion_videos(Release(tmp_path), protocol="nope")


# --------------------------------------------------------------------------- mg inspect


def test_inspect_counts(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    (tmp_path / "train_label.csv").write_text("video_id,label\n1,1\n7,0\n8,0\n")
    (tmp_path / "validation_label.csv").write_text("20,1\n")
    res = runner.invoke(app, ["inspect", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "emotion labels (videos)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 5}
    cells = {k: [c.strip() for c in v.split("│")[2:5]] for k, v in rows.items() if k in ("train", "val", "test")}
    assert cells == {"train": ["1", "2", "0"], "val": ["1", "0", "0"], "test": ["0", "0", "2"]}
    assert "train_label.csv" in out and "clips per class" in out  # the existing output is kept


def test_inspect_without_label_files(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    res = runner.invoke(app, ["inspect", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "emotion" not in res.output and "clips per class" in res.output


def test_inspect_reports_a_bad_label_file(tmp_path: Path) -> None:
    fake_release(tmp_path, VIDEOS)
    (tmp_path / "train_label.csv").write_text("1,2\n")
    res = runner.invoke(app, ["inspect", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "emotion labels:" in res.output and "row 1: label '2'" in res.output
