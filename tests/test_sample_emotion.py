"""The emotion (win / lose) preset of ``mg sample-data``: label files, cues, ceilings, and the default
sample left byte-identical."""

import hashlib
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d
from typer.testing import CliRunner

from mgcli import __version__
from mgcli.cli import app
from mgcli.dataset import synth
from mgcli.dataset.emotion import emotion_videos, read_emotion_labels
from mgcli.dataset.formats import read_openpose_xlsx
from mgcli.dataset.release import Release
from mgcli.dataset.sample import (
    EmotionConfig,
    SampleConfig,
    draw_emotion_latents,
    generate_sample,
    preset_config,
    single_cue_ceiling,
)
from mgcli.errors import MgError

# Content hashes of two small default samples, computed with the code *before* the emotion preset
# existed (see _content_hash). A change here means `make demo` no longer reproduces its tables.
DEFAULT_HASHES = {
    "a": (
        SampleConfig(videos=3, gestures=3, height=72, width=128, fps=10.0, seed=3),
        "c1c3dfb91b0aa84284a9337407766a8258a3952a8255153a553e36424eb7b5dd",
    ),
    "b": (
        SampleConfig(videos=4, gestures=2, seed=0),
        "17a5a39b3c3b79a29eeb981b525f29b0efca5eb9c5cf254fb7cc5ca2941c7cd7",
    ),
}
SPLIT_DIRS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}


def _content_hash(root: Path) -> str:
    """Every file's path and bytes; xlsx files by their members' names and contents (zipfile stamps
    each member with the current time), and the mgcli version masked in sample.json / README.md."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        h.update(p.relative_to(root).as_posix().encode())
        if p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                for name in sorted(z.namelist()):
                    h.update(name.encode())
                    h.update(hashlib.sha256(z.read(name)).digest())
        else:
            data = p.read_bytes()
            if p.suffix in (".json", ".md"):
                data = data.replace(__version__.encode(), b"VERSION")
            h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


@pytest.fixture(scope="module")
def emotion_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("emo") / "sample"
    cfg, emotion = preset_config("emotion")
    t0 = time.perf_counter()
    generate_sample(root, cfg, workers=2, emotion=emotion)
    return root, time.perf_counter() - t0


def _corr(a: list[float], b: list[float]) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("name", sorted(DEFAULT_HASHES))
def test_default_sample_is_unchanged(name: str, tmp_path: Path) -> None:
    cfg, expected = DEFAULT_HASHES[name]
    generate_sample(tmp_path / name, cfg, workers=1)
    assert not (tmp_path / name / "train_label.csv").exists()
    assert _content_hash(tmp_path / name) == expected


def test_preset_takes_seconds(emotion_sample: tuple[Path, float]) -> None:
    assert emotion_sample[1] < 30.0


def test_label_files_are_balanced_and_match_the_videos(emotion_sample: tuple[Path, float]) -> None:
    root, _ = emotion_sample
    meta = json.loads((root / "sample.json").read_text())
    sizes = {"train": 24, "val": 6, "test": 10}
    for split, name in {"train": "train_label.csv", "val": "validation_label.csv", "test": "test_label.csv"}.items():
        lines = (root / name).read_text().splitlines()
        assert lines[0] == "video_id,label"
        labels = read_emotion_labels(root / name)
        folder_ids = sorted(p.name for p in (root / SPLIT_DIRS[split]).iterdir())
        assert sorted(labels) == folder_ids and len(folder_ids) == sizes[split]
        assert sum(labels.values()) == sizes[split] // 2  # half win
        for vid, label in labels.items():
            v = meta["videos"][vid]
            assert v["split"] == split and v["label"] == label
            assert label == int(v["z_face"] + v["z_beh"] > 0)
    table = emotion_videos(Release(root))  # the emotion reader picks the files up
    assert len(table) == 40 and (table["label"] >= 0).all()
    assert meta["emotion"]["expected_test_ceilings"]["face_only"] == pytest.approx(0.75)
    readme = (root / "README.md").read_text()
    assert "label = 1[z_face + z_beh > 0]" in readme and "0.75" in readme


def test_face_cue_is_in_the_face_points(emotion_sample: tuple[Path, float]) -> None:
    """Mouth-corner height above the lip centre (in inter-ocular distances) follows z_face."""
    root, _ = emotion_sample
    meta = json.loads((root / "sample.json").read_text())
    z, lift = [], []
    for vid, e in Release(root).videos.items():
        face = read_openpose_xlsx(e.openpose_xlsx)[:, 25:95]
        face = face[(face[:, [36, 45, 48, 51, 54, 57], 2] > 0).all(1)]
        eyes = np.linalg.norm(face[:, 36, :2] - face[:, 45, :2], axis=1)
        centre = 0.5 * (face[:, 51, 1] + face[:, 57, 1])
        corners = 0.5 * (face[:, 48, 1] + face[:, 54, 1])
        lift.append(float(np.median((centre - corners) / eyes)))
        z.append(meta["videos"][vid]["z_face"])
    assert _corr(z, lift) > 0.6
    assert _corr([meta["videos"][v]["z_beh"] for v in sorted(meta["videos"])], lift) < 0.4  # not the other cue


def test_behaviour_cue_is_in_the_gestures_and_the_motion(emotion_sample: tuple[Path, float]) -> None:
    """Losers (low z_beh) make more self-touching gestures and rock more (neck, high-passed)."""
    root, _ = emotion_sample
    meta = json.loads((root / "sample.json").read_text())
    rel = Release(root)
    clips = rel.clips()
    z, touch, rock = [], [], []
    for vid, e in rel.videos.items():
        z.append(meta["videos"][vid]["z_beh"])
        labels = clips.loc[clips["video_id"] == vid, "label"]
        touch.append(float(np.isin(labels, synth.SELF_TOUCH_LABELS).mean()))
        kp = read_openpose_xlsx(e.openpose_xlsx)
        seen = kp[:, 1, 2] > 0
        x = np.interp(np.arange(len(kp)), np.flatnonzero(seen), kp[seen, 1, 0])
        shoulders = np.median(np.linalg.norm(kp[:, 2, :2] - kp[:, 5, :2], axis=1))
        rock.append(float(np.log((uniform_filter1d(x, 5) - uniform_filter1d(x, 50)).std() / shoulders)))
    assert _corr(z, touch) < -0.4
    assert _corr(z, rock) < -0.5


def test_expression_moves_mouth_corners_and_brows() -> None:
    off = synth.expression_offsets(np.array([1.0, -1.0, 0.0]), 80)
    assert off[0, 48, 1] == pytest.approx(-synth.MOUTH_GAIN) and off[1, 54, 1] == pytest.approx(synth.MOUTH_GAIN)
    assert (off[0, 17:27, 1] < 0).all() and (off[1, 17:27, 1] > 0).all()  # brows up when smiling, down
    assert not off[2].any() and not off[:, [51, 57]].any()  # neutral face; the lip centre stays


def test_latents_and_ceilings() -> None:
    splits = ["train"] * 8 + ["val"] * 4 + ["test"] * 6
    latents = draw_emotion_latents(5, splits)
    assert latents == draw_emotion_latents(5, splits)
    for split, n in (("train", 8), ("val", 4), ("test", 6)):
        assert sum(z.label for z, s in zip(latents, splits, strict=True) if s == split) == n // 2
    assert all(z.label == int(z.z_face + z.z_beh > 0) for z in latents)
    assert single_cue_ceiling() == pytest.approx(0.75)
    zz = np.random.default_rng(0).standard_normal((200_000, 2))
    label = zz.sum(1) > 0
    assert np.mean((zz[:, 0] > 0) == label) == pytest.approx(0.75, abs=0.005)
    unequal = np.mean((zz[:, 0] > 0) == (2 * zz[:, 0] + zz[:, 1] > 0))
    assert single_cue_ceiling(2.0, 1.0) == pytest.approx(unequal, abs=0.005)


def test_config_checks() -> None:
    assert EmotionConfig.for_videos(40) == EmotionConfig(train=24, val=6, test=10)
    with pytest.raises(MgError, match="even"):
        EmotionConfig(train=5)
    with pytest.raises(MgError, match="even"):
        EmotionConfig.for_videos(9)
    with pytest.raises(MgError, match="gestures"):
        preset_config("emotion", gestures=3)
    with pytest.raises(MgError, match="seconds"):
        preset_config("default", seconds=5.0)
    with pytest.raises(MgError, match="preset"):
        preset_config("happy")
    assert preset_config() == (SampleConfig(), None)
    with pytest.raises(MgError, match="videos"):
        generate_sample("unused", SampleConfig(videos=8), emotion=EmotionConfig())


def test_cli_preset_and_workers(tmp_path: Path) -> None:
    args = ["--preset", "emotion", "--videos", "6", "--seconds", "3", "--size", "96x160", "--seed", "2"]
    res = CliRunner().invoke(app, ["sample-data", str(tmp_path / "a"), *args, "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "win/lose" in res.output
    cfg, emotion = preset_config("emotion", videos=6, size=(96, 160), seed=2, seconds=3.0)
    generate_sample(tmp_path / "b", cfg, workers=2, emotion=emotion)
    for name in ("train_label.csv", "validation_label.csv", "test_label.csv", "sample.json", "test_labels.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    res = CliRunner().invoke(app, ["sample-data", str(tmp_path / "c"), "--preset", "emotion", "--gestures", "4"])
    assert res.exit_code == 2 and "gestures" in res.output
