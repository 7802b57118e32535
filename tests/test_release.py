import shutil
from pathlib import Path

import pytest

from conftest import write_video
from mgcli.dataset.release import CLIP_COLUMNS, Release, classify_folder
from mgcli.errors import DataError


def test_clip_table_of_the_mini_release(mini_release: Path) -> None:
    rel = Release(mini_release)
    clips = rel.clips()
    assert list(clips.columns) == list(CLIP_COLUMNS)
    assert clips["clip_id"].tolist() == ["0101_0", "0101_1", "0101_2", "0202_0", "0303_0", "0303_1"]
    row = clips.set_index("clip_id").loc["0101_1"]
    assert (row["video_id"], row["split"], row["start"], row["end"], row["raw_label"], row["label"]) == (
        "0101",
        "train",
        12,
        20,
        99,
        31,
    )
    assert clips.set_index("clip_id").loc["0101_0", "label"] == 3
    assert clips.set_index("clip_id").loc["0202_0", "split"] == "val"
    # test label files carry dummy classes: unknown until true labels are given
    assert clips.loc[clips["split"] == "test", "label"].tolist() == [-1, -1]
    e = rel.videos["0101"]
    assert e.video is not None and e.openpose_xlsx is not None and e.light_hand_csv is not None
    assert rel.videos["0202"].video is None and rel.videos["0303"].video.parent.parent.name == "imigue_rgb_phase2"


def test_true_test_labels(mini_release: Path) -> None:
    (mini_release / "test_labels.csv").write_text("clip_id,label\n0303_0,5\n0303_1,31\n")
    clips = Release(mini_release).clips().set_index("clip_id")
    assert clips.loc["0303_0", "label"] == 5 and clips.loc["0303_1", "label"] == 31
    assert clips.loc["0303_1", "raw_label"] == 32


def test_test_labels_must_name_test_clips(mini_release: Path, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("clip_id,label\n0101_0,5\n")
    with pytest.raises(DataError, match="not test clips"):
        Release(mini_release, test_labels=p).clips()


def test_root_can_be_a_split_folder_or_one_level_up(mini_release: Path, tmp_path: Path) -> None:
    only = Release(mini_release / "imigue_skeleton_train")
    assert list(only.videos) == ["0101"]
    nested = tmp_path / "outer"
    shutil.copytree(mini_release, nested / "iMiGUE")
    assert sorted(Release(nested).videos) == ["0101", "0202", "0303"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("imigue_skeleton_validate", ("val", "skeleton")),
        ("imigue_rgb_phase2", ("test", "rgb")),
        ("validation_data", ("val", "rgb")),
        ("imigue_rgb_train", ("train", "rgb")),
        ("holiday_photos", None),
    ],
)
def test_folder_names(name: str, expected: tuple[str, str] | None) -> None:
    assert classify_folder(name) == expected


def test_unknown_raw_class(mini_release: Path) -> None:
    p = mini_release / "imigue_skeleton_validate" / "0202" / "0202_label.csv"
    p.write_text("11,2,8\n77,9,9\n")
    with pytest.raises(DataError, match=r"0202_label\.csv: row 2: unknown raw class 77"):
        Release(mini_release).clips()


def test_clip_beyond_the_video(mini_release: Path) -> None:
    for folder in ("imigue_skeleton_train", "train_data"):
        (mini_release / folder / "0101" / "0101_label.csv").write_text("4,0,9\n4,30,45\n")
    with pytest.raises(DataError, match="row 2: clip ends at frame 45 but the video has 40 frames"):
        Release(mini_release).clips()
    assert len(Release(mini_release).clips(check_frames=False)) == 5


def test_missing_video(mini_release: Path) -> None:
    rel = Release(mini_release)
    rel.require("skeleton")
    with pytest.raises(DataError, match="missing video 0202.mp4"):
        rel.require("video")
    (mini_release / "validation_data" / "0202").mkdir(parents=True)
    with pytest.raises(DataError, match="validation_data/0202: missing video 0202.mp4"):
        Release(mini_release).require("video")


def test_video_only_release(mini_release: Path) -> None:
    for folder in ("imigue_skeleton_train", "imigue_skeleton_validate", "imigue_skeleton_test"):
        shutil.rmtree(mini_release / folder)
    write_video(mini_release / "test_data" / "0404" / "0404.mp4", 12)
    (mini_release / "test_data" / "0404" / "0404_label.csv").write_text("1,0,11\n")
    rel = Release(mini_release)
    assert sorted(rel.videos) == ["0101", "0303", "0404"]
    rel.require("video")
    with pytest.raises(DataError, match="missing skeleton file"):
        rel.require("skeleton")
    # 0303's label file lived with its skeletons: the RGB folder alone has none
    with pytest.raises(DataError, match=r"imigue_rgb_phase2/0303: no 0303_label\.csv"):
        rel.clips()


def test_same_video_in_two_splits(mini_release: Path) -> None:
    shutil.copytree(mini_release / "imigue_skeleton_train" / "0101", mini_release / "imigue_skeleton_test" / "0101")
    with pytest.raises(DataError, match="video 0101 is in both the (train|test) and the (train|test) split"):
        Release(mini_release)


def test_label_files_disagree(mini_release: Path) -> None:
    (mini_release / "train_data" / "0101" / "0101_label.csv").write_text("4,0,9\n")
    with pytest.raises(DataError, match="disagrees"):
        Release(mini_release).clips()


def test_not_a_release(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no release folders found"):
        Release(tmp_path)
    with pytest.raises(DataError, match="release root not found"):
        Release(tmp_path / "nope")
