"""The real-skeleton benchmark's pieces: the AR.data converter, a release's own label map, the
run budget (minimum steps, lr scaled to the batch), the recipes of config-less runs, baselines."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.io.poses import PosesFile
from mgcli.train.config import load_config
from mgcli.train.optim import budget, lr_at

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO / "tests" / "benchmarks" / "real")]

import ar_data_release  # noqa: E402
import jhmdb_release  # noqa: E402

runner = CliRunner()
rdata = pytest.importorskip("rdata")


def fake_ar_data(per_class: int = 10, frames: int = 24, seed: int = 0) -> dict:
    """AR.data's layout (``{class: [50 x T]}``, x rows then y rows): a standing body whose right
    wrist moves at a speed that depends on the class, plus noise."""
    rng = np.random.default_rng(seed)
    body = np.stack([np.linspace(300, 340, 25), np.linspace(100, 400, 25)], -1)  # [25, 2]
    out = {}
    for c, name in enumerate(ar_data_release.CLASSES):
        seqs = []
        for _ in range(per_class):
            t = np.arange(frames)
            kp = np.repeat(body[None], frames, 0) + rng.normal(0, 1.5, (frames, 25, 2))
            kp[:, 4, 1] -= 60 * np.sin(t * (c + 1) * np.pi / frames)  # RWrist of BODY_25
            kp[:, 4, 0] += 20 * c
            seqs.append(np.concatenate([kp[..., 0].T, kp[..., 1].T], 0))  # [50, T]
        out[name] = seqs
    return out


@pytest.fixture(scope="module")
def ar_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ar")
    rdata.write_rda(str(d / "AR.data.rda"), {"AR.data": fake_ar_data()})
    ar_data_release.main([str(d / "AR.data.rda"), str(d / "release")])
    return d


@pytest.fixture(scope="module")
def ar_poses(ar_release: Path) -> Path:
    """The release's poses.h5 (coco17), made here so that no test depends on another's run order."""
    out = ar_release / "poses.h5"
    if not out.exists():
        r = runner.invoke(
            app, ["--quiet", "extract-pose", str(ar_release / "release"), "--layout", "coco17", "-o", str(out)]
        )
        assert r.exit_code == 0, r.output
    return out


def test_converter_writes_a_release_with_its_own_label_map(ar_release: Path) -> None:
    root = ar_release / "release"
    assert (root / "label_map.csv").is_file() and not (ar_release / "release.tmp").exists()
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["clips"] == {"train": 36, "val": 12, "test": 12}  # 6 / 2 / 2 of each class's 10
    # extract-pose reads the release's label_map.csv without --label-map: 6 classes, not 32
    r = runner.invoke(app, ["--quiet", "extract-pose", str(root), "--layout", "coco17", "-o", str(ar_release / "p.h5")])
    assert r.exit_code == 0, r.output
    with PosesFile(ar_release / "p.h5") as pf:
        assert pf.class_names == list(ar_data_release.CLASSES)
        clips = pf.clips
        assert sorted(clips.label.unique()) == list(range(6))
        assert (clips.groupby("split").size().to_dict()) == {"test": 12, "train": 36, "val": 12}
        assert (clips.end - clips.start + 1 == 24).all()
        v = pf["0001"]  # BODY_25 -> coco17 kept the coordinates: the nose is BODY_25's point 0
        raw = ar_data_release.read_ar_data(ar_release / "AR.data.rda")["come"][0]
        assert np.allclose(v.keypoint[0, :, 0], raw[:, 0], atol=1e-3) and (v.keypoint_score == 1).all()
    r = runner.invoke(app, ["inspect", str(root)])
    assert r.exit_code == 0 and "look_at" in r.output


def test_converter_refuses_a_file_that_is_not_ar_data(tmp_path: Path) -> None:
    rdata.write_rda(str(tmp_path / "x.rda"), {"other": {"a": [np.zeros((3, 3))]}})
    with pytest.raises(SystemExit, match="not the AR.data file"):
        ar_data_release.read_ar_data(tmp_path / "x.rda")


def test_budget_stretches_short_runs_and_scales_the_lr() -> None:
    cfg = load_config(
        None, ["train.epochs=10", "train.batch_size=16", "train.min_steps=300", "optim.lr=0.1", "optim.lr_batch=0"]
    )
    b = budget(cfg, num_clips=164)  # 11 steps per epoch: 10 epochs are 110 steps, fewer than 300
    assert (b.steps, b.epochs, b.lr) == (11, math.ceil(300 / 11), 0.1)
    # the whole schedule stretches: the lr at stretched epoch e is the configured lr at e / stretch
    for e in (0.0, 3.3, 12.0, 27.0):
        assert lr_at(cfg, e, b) == pytest.approx(lr_at(cfg, e / b.stretch))
    assert b.val_every(cfg) == round(cfg.train.val_every * b.stretch)
    big = budget(cfg, num_clips=13000)  # iMiGUE's size: min_steps changes nothing
    assert big.epochs == 10 and big.stretch == 1
    scaled = load_config(None, ["optim.lr=0.4", "optim.lr_batch=256", "train.batch_size=16"])
    assert budget(scaled, 1000, world=4).lr == pytest.approx(0.4 * 64 / 256)
    assert budget(scaled, 1000, world=1).lr == pytest.approx(0.4 * 16 / 256)


def test_baselines_learn_the_fake_gestures(ar_poses: Path) -> None:
    import baselines

    pytest.importorskip("sklearn")
    data = baselines.clip_arrays(str(ar_poses), frames=16)
    assert data["train"][0].shape == (36, 16, 17, 2)
    # centred on the shoulders and one shoulder width to the unit, whatever the camera
    x = data["train"][0]
    assert np.abs(x[:, :, 5:7].mean(2)).max() < 1e-4
    assert np.allclose(np.linalg.norm(x[:, :, 5] - x[:, :, 6], axis=-1).mean(), 1.0, atol=0.1)
    assert baselines.random_forest(data, seed=0) > 0.5  # chance: 1/6
    assert baselines.temporal_cnn(data, seed=0, epochs=30) > 0.5


def test_runs_without_a_config_file_start_from_the_model_recipe(tmp_path: Path) -> None:
    from mgcli.train.recipes import RECIPES

    cfg = load_config(None, ["model.name=agcn", "optim.weight_decay=0"], recipe=True)
    assert cfg.optim.lr_batch == RECIPES["agcn"]["optim"]["lr_batch"] and cfg.optim.weight_decay == 0
    assert cfg.train.min_steps == RECIPES["agcn"]["train"]["min_steps"]
    # a config file is a complete recipe: nothing of the model's recipe leaks in
    (tmp_path / "c.yaml").write_text("model: {name: agcn}\n")
    cfg = load_config(tmp_path / "c.yaml", recipe=True)
    assert cfg.optim.lr_batch == 0 and cfg.train.min_steps == 0
    assert load_config(None, ["model.name=agcn"]).train.min_steps == 0  # the library's plain defaults


def test_skeleton_files_without_confidences_keep_their_points() -> None:
    from mgcli.pose.sources import scores_or_presence

    kp = np.zeros((3, 4, 2), np.float32)
    kp[:, :3] = 5.0  # joint 3 never seen
    got = scores_or_presence(kp, np.zeros((3, 4), np.float32))
    assert (got[:, :3] == 1).all() and (got[:, 3] == 0).all()
    real = np.full((3, 4), 0.7, np.float32)
    assert scores_or_presence(kp, real) is real  # real confidences are kept as they are


def walking_person(frames: int = 40) -> np.ndarray:
    """coco17 keypoints ``[1, T, 17, 2]`` of a person who walks up to the camera from the left:
    they grow three times taller and cross half the frame, raising the right wrist half-way."""
    from mgcli.pose.layouts import get_layout

    layout = get_layout("coco17")
    base = np.zeros((17, 2), np.float32)
    for name, (x, y) in {
        "nose": (0, -1.6), "left_eye": (0.1, -1.7), "right_eye": (-0.1, -1.7), "left_ear": (0.2, -1.6),
        "right_ear": (-0.2, -1.6), "left_shoulder": (0.5, -1), "right_shoulder": (-0.5, -1),
        "left_elbow": (0.6, -0.3), "right_elbow": (-0.6, -0.3), "left_wrist": (0.6, 0.3),
        "right_wrist": (-0.6, 0.3), "left_hip": (0.3, 0.7), "right_hip": (-0.3, 0.7), "left_knee": (0.3, 1.6),
        "right_knee": (-0.3, 1.6), "left_ankle": (0.3, 2.5), "right_ankle": (-0.3, 2.5),
    }.items():  # fmt: skip
        base[layout.index(name)] = (x, y)
    t = np.linspace(0, 1, frames)[:, None, None]
    kp = base[None] * (20 + 40 * t) + np.concatenate([100 + 200 * t, 200 + 0 * t], -1)
    kp[frames // 2 :, layout.index("right_wrist"), 1] -= 30
    return kp[None].astype(np.float32)


def test_heatmap_boxes_follow_a_person_who_walks_up_but_not_a_seated_one() -> None:
    from mgcli.heatmaps.build import BuildOptions, moves_about, render_clip, shoulder_track
    from mgcli.pose.layouts import get_layout

    layout = get_layout("coco17")
    walk = walking_person()
    seated = np.repeat(walk[:, :1], 40, axis=1) + np.random.default_rng(0).normal(0, 0.5, walk.shape[:3] + (2,))
    assert moves_about(walk, layout) and not moves_about(seated.astype(np.float32), layout)
    centre = shoulder_track(walk, layout)
    assert np.ptp(centre[:, 0]) == pytest.approx(200, rel=0.05)
    sc = np.ones(walk.shape[:3], np.float32)
    kp_frame, _, _ = render_clip(walk, sc, (480, 640), layout, BuildOptions(compact="frame"))
    kp_clip, _, _ = render_clip(walk, sc, (480, 640), layout, BuildOptions(compact="clip"))
    kp_auto, _, _ = render_clip(walk, sc, (480, 640), layout, BuildOptions(compact="auto"))
    assert np.allclose(kp_auto, kp_frame)
    ls, rs = layout.index("left_shoulder"), layout.index("right_shoulder")
    width = lambda k: np.linalg.norm(k[0, :, ls] - k[0, :, rs], axis=-1)  # noqa: E731
    # followed: the shoulders keep one place on the canvas, the person still grows 3x
    mid = lambda k: (k[0, :, ls] + k[0, :, rs]) / 2  # noqa: E731
    assert np.ptp(mid(kp_frame)[:, 0]) < 0.5 < 5 < np.ptp(mid(kp_clip)[:, 0])
    assert width(kp_frame)[-1] / width(kp_frame)[0] == pytest.approx(3.0, rel=0.1)
    # the raised wrist is still raised, relative to the shoulders (in shoulder widths)
    rw = layout.index("right_wrist")
    drop = (kp_frame[0, :, rw, 1] - kp_frame[0, :, rs, 1]) / width(kp_frame)
    assert drop[-1] < drop[0] - 0.3
    kp_seated, _, _ = render_clip(seated.astype(np.float32), sc, (480, 640), layout, BuildOptions(compact="auto"))
    kp_seated_clip, _, _ = render_clip(seated.astype(np.float32), sc, (480, 640), layout, BuildOptions(compact="clip"))
    assert np.array_equal(kp_seated, kp_seated_clip)  # a seated person keeps PoseConv3D's box


def test_skeleton_centre_norm_is_one_shoulder_width_around_the_shoulders() -> None:
    from mgcli.data.skeleton import centre_scale, normalise
    from mgcli.pose.layouts import get_layout

    layout = get_layout("coco17")
    walk = walking_person()
    out = centre_scale(walk, (480, 640), layout)
    ls, rs = layout.index("left_shoulder"), layout.index("right_shoulder")
    assert np.abs((out[0, :, ls] + out[0, :, rs]) / 2).max() < 1e-4
    assert np.median(np.linalg.norm(out[0, :, ls] - out[0, :, rs], axis=-1)) == pytest.approx(1.0, rel=1e-3)
    missing = walk.copy()
    missing[0, :5, ls] = 0  # a shoulder lost for five frames: those frames take the mean centre
    assert np.isfinite(centre_scale(missing, (480, 640), layout)).all()
    assert (centre_scale(missing, (480, 640), layout)[0, :5, ls] == 0).all()
    # nothing seen of the shoulders: the clip's box, as norm: box
    blind = walk.copy()
    blind[0, :, [ls, rs]] = 0
    assert np.allclose(centre_scale(blind, (480, 640), layout), normalise(blind, (480, 640)))


def test_pose_views_render_with_their_own_sigma(train_artifacts: Path) -> None:
    from mgcli.data.heatmaps import HeatmapClips, PoseViewConfig

    path = train_artifacts / "heatmaps-joint.h5"
    view = PoseViewConfig(clip_len=8, num_clips=1, resize_short=64, train_size=56, test_size=64)
    plain = HeatmapClips(path, "test", False, view)
    wide = HeatmapClips(path, "test", False, PoseViewConfig(**{**view.__dict__, "sigma": 2.0}))
    assert plain.sigma == 0.6 and wide.sigma == 2.0
    a, b = plain.test_sample(0)["x"], wide.test_sample(0)["x"]
    assert a.shape == b.shape
    # wider blobs: more pixels lit around every joint (peaks at most the joint's score)
    assert (b > 0.1).sum() > 2 * (a > 0.1).sum()
    assert float(a.max()) <= float(b.max()) <= 1.0


def test_jhmdb_converter_keeps_the_official_split_and_maps_the_joints(tmp_path: Path) -> None:
    import pickle

    rng = np.random.default_rng(0)
    names = ["clap", "golf", "wave"]
    parts = {}
    for part, per_class in (("train", 7), ("test", 3)):
        poses = [rng.normal(0, 0.3, (int(rng.integers(15, 41)), 15, 2)) for _ in range(per_class * len(names))]
        parts[part] = {"pose": poses, "label": [names[i % 3] for i in range(len(poses))]}
        with (tmp_path / f"GT_{part}_1.pkl").open("wb") as f:
            pickle.dump(parts[part], f)
    counts = jhmdb_release.write_release(jhmdb_release.read_jhmdb(tmp_path), tmp_path / "release")
    assert counts == {"train": 18, "val": 3, "test": 9}  # 15 % of each class's 7 train clips is val
    r = runner.invoke(
        app, ["--quiet", "extract-pose", str(tmp_path / "release"), "--layout", "coco17", "-o", str(tmp_path / "p.h5")]
    )
    assert r.exit_code == 0, r.output
    with PosesFile(tmp_path / "p.h5") as pf:
        assert pf.class_names == names
        test = pf.clips[pf.clips.split == "test"].sort_values("video_id")
        assert test.label.tolist() == [names.index(n) for n in parts["test"]["label"]]
        # the test clips are the official test part, in order, with all their frames
        first = pf[test.video_id.iloc[0]]
        want = parts["test"]["pose"][0]
        assert first.keypoint.shape[1] == len(want)
        lw = 11  # JHMDB's right wrist -> BODY_25 4 -> coco17 right_wrist
        from mgcli.pose.layouts import get_layout

        coco = get_layout("coco17")
        assert np.allclose(first.keypoint[0, :, coco.index("right_wrist")], 200 * want[:, lw] + [640, 360], atol=1e-3)
        assert (first.keypoint_score[0, :, coco.index("left_eye")] == 0).all()  # no eyes in JHMDB
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "GT_train_1.pkl").write_bytes(pickle.dumps({"pose": [np.zeros((3, 14, 2))], "label": ["clap"]}))
    (bad / "GT_test_1.pkl").write_bytes((tmp_path / "GT_test_1.pkl").read_bytes())
    with pytest.raises(SystemExit, match="expected T x 15 x 2"):
        jhmdb_release.read_jhmdb(bad)
