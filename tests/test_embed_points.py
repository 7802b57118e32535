"""The keypoint streams of mg embed (face-points, body-motion): descriptors on constructed points,
window means against a loop, and the commands on a tiny emotion sample, whose drawn cues they read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import emotion_sample_via_cli
from mgcli import embed_points as ep
from mgcli.cli import app
from mgcli.io.embeddings import EmbeddingsFile


def face70(lift: float = 0.0, brow: float = 0.0) -> np.ndarray:
    """A frontal face of 70 points [70, 3] (eyes 1 apart, y down) with the mouth corners lifted by
    ``lift`` and the brows raised by ``brow`` (inter-ocular units)."""
    p = np.zeros((70, 2))
    p[0:17] = np.stack([np.linspace(-1, 1, 17), 0.8 - 0.4 * np.cos(np.linspace(0, np.pi, 17))], 1)  # jaw
    p[17:22] = np.stack([np.linspace(-0.8, -0.2, 5), np.full(5, -0.4 - brow)], 1)
    p[22:27] = np.stack([np.linspace(0.2, 0.8, 5), np.full(5, -0.4 - brow)], 1)
    p[27:36] = np.stack([np.zeros(9), np.linspace(0.0, 0.5, 9)], 1)  # nose; 33 is the tip
    p[33] = (0.0, 0.5)
    for c, rows in ((-0.5, range(36, 42)), (0.5, range(42, 48))):
        ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        p[list(rows)] = np.stack([c + 0.15 * np.cos(ang), 0.06 * np.sin(ang)], 1)
    p[48:60] = np.stack(
        [0.4 * np.cos(np.linspace(np.pi, -np.pi, 12)), 0.9 + 0.1 * np.sin(np.linspace(0, 2 * np.pi, 12))], 1
    )
    p[48], p[54] = (-0.4, 0.9 - lift), (0.4, 0.9 - lift)
    p[51], p[57] = (0.0, 0.8), (0.0, 1.0)
    p[60:68] = np.stack(
        [0.3 * np.cos(np.linspace(np.pi, -np.pi, 8)), 0.9 + 0.03 * np.sin(np.linspace(0, 2 * np.pi, 8))], 1
    )
    p[60], p[64], p[62], p[66] = (-0.3, 0.9 - lift), (0.3, 0.9 - lift), (0.0, 0.88), (0.0, 0.92)
    p[68], p[69] = (-0.5, 0.0), (0.5, 0.0)
    return np.concatenate([p, np.ones((70, 1))], 1)


def moved(face: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = face.copy()
    out[:, :2] = face[:, :2] @ np.array([[c, s], [-s, c]]) * scale + np.array(shift)
    return out


def col(name: str) -> int:
    return ep.FACE_FEATURES.index(name)


def test_face_geometry_reads_the_expression_and_ignores_head_pose():
    neutral, smile, frown = face70(), face70(lift=0.1, brow=0.05), face70(lift=-0.1, brow=-0.05)
    f = ep.face_geometry(np.stack([neutral, smile, frown]))
    assert f.shape == (3, len(ep.FACE_FEATURES)) and np.isfinite(f).all()
    np.testing.assert_allclose(f[1, col("corner_lift")] - f[0, col("corner_lift")], 0.1, atol=1e-9)
    np.testing.assert_allclose(f[0, col("corner_lift")] - f[2, col("corner_lift")], 0.1, atol=1e-9)
    np.testing.assert_allclose(f[1, col("brow_left")] - f[0, col("brow_left")], 0.05, atol=1e-9)
    assert f[2, col("brow_inner")] < f[0, col("brow_inner")] < f[1, col("brow_inner")]
    np.testing.assert_allclose(f[0, col("mouth_width")], 0.8) and np.testing.assert_allclose(f[0, col("roll")], 0)
    # a rolled, scaled and shifted head (pixels) gives the same expression; only the roll changes
    g = ep.face_geometry(np.stack([moved(x, 0.3, 80.0, (300.0, 200.0)) for x in (neutral, smile, frown)]))
    keep = [i for i, n in enumerate(ep.FACE_FEATURES) if n != "roll"]
    np.testing.assert_allclose(g[:, keep], f[:, keep], atol=1e-9)
    np.testing.assert_allclose(g[:, col("roll")], 0.3, atol=1e-9)


def test_face_geometry_missing_points_give_nan_rows():
    faces = np.stack([face70(), face70(), face70()])
    faces[1, 40, 2] = 0.0  # an eye point not found
    faces[2, 54] = 0.0  # OpenPose's "not found": 0, 0, 0
    body = np.zeros((3, ep.POINTS, 3))
    body[:, ep.FACE0 : ep.FACE0 + 70] = faces
    f = ep.face_geometry(body)
    assert np.isfinite(f[0]).all() and np.isnan(f[1:]).all()
    with pytest.raises(ValueError):
        ep.face_geometry(np.zeros((2, 50, 3)))


def test_window_means_and_stds_match_a_loop():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 3))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[10:20, 1] = np.nan
    starts = np.array([0, 5, 12, 40, 49])
    ends = np.array([5, 15, 18, 50, 50])
    m, s = ep.window_means(v, starts, ends), ep.window_stds(v, starts, ends)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        for j in range(3):
            x = v[a:b, j][np.isfinite(v[a:b, j])]
            assert (np.isnan(m[k, j]) and len(x) == 0) or np.isclose(m[k, j], x.mean())
            assert (np.isnan(s[k, j]) and len(x) < 2) or np.isclose(s[k, j], x.std())


def body(frames: int = 50, hand_at_face: bool = False, shake: float = 0.0, scale: float = 100.0) -> np.ndarray:
    """A seated person facing the camera [frames, 137, 3] (pixels), shoulders ``scale`` apart; the
    right hand at the nose or on the table; ``shake``: the whole body's sideways motion (pixels)."""
    kp = np.zeros((frames, ep.POINTS, 3))
    pts = {
        ep.NOSE: (0.0, -0.6), ep.NECK: (0.0, 0.0), ep.R_SHOULDER: (-0.5, 0.0), ep.L_SHOULDER: (0.5, 0.0),
        ep.R_ELBOW: (-0.6, 0.6), ep.L_ELBOW: (0.6, 0.6), ep.R_WRIST: (-0.3, 1.0), ep.L_WRIST: (0.3, 1.0),
    }  # fmt: skip
    if hand_at_face:
        pts[ep.R_WRIST] = (-0.1, -0.5)
    for j, (x, y) in pts.items():
        kp[:, j] = (500 + x * scale, 300 + y * scale, 0.9)
    kp[:, :, 0] += shake * np.sin(np.arange(frames))[:, None]
    kp[:, ep.LHAND0 :, :] = 0.0  # no hand points: the wrists stand for the hands
    kp[kp[..., 2] == 0] = 0.0
    return kp


def bcol(name: str) -> int:
    return ep.BODY_FEATURES.index(name)


def test_body_motion_descriptors():
    opts = ep.PointsOptions(fps=5.0, window=1.0)
    still, frames, valid = ep.body_steps(body(), 25.0, opts)
    assert still.shape == (len(frames), len(ep.BODY_FEATURES)) and valid.all()
    np.testing.assert_array_equal(frames, np.arange(0, 50, 5))
    assert np.allclose(still[:, [bcol("speed_neck"), bcol("speed_wrists"), bcol("sway")]], 0)
    assert (still[:, bcol("at_face")] == 0).all() and np.allclose(still[:, bcol("hand_hand")], 0.6)
    touch, _, _ = ep.body_steps(body(hand_at_face=True), 25.0, opts)
    assert (touch[:, bcol("at_face")] == 1).all() and touch[0, bcol("hand_face")] < 0.2
    assert touch[0, bcol("hand_height")] > 0.4  # the raised hand is above the neck
    # the same motion at another pixel scale reads the same; more shake, more speed and sway
    a, _, _ = ep.body_steps(body(shake=5.0), 25.0, opts)
    b, _, _ = ep.body_steps(body(shake=10.0, scale=200.0), 25.0, opts)
    np.testing.assert_allclose(a, b, atol=1e-5)
    c, _, _ = ep.body_steps(body(shake=20.0), 25.0, opts)
    assert (c[:, bcol("speed_neck")] > a[:, bcol("speed_neck")] + 1).all() and (
        c[:, bcol("sway")] > a[:, bcol("sway")]
    ).all()
    # nobody in the frames: steps kept, marked invalid, no NaN stored
    empty, _, valid = ep.body_steps(np.zeros((30, ep.POINTS, 3)), 25.0, opts)
    assert not valid.any() and np.isfinite(empty).all()


@pytest.fixture(scope="module")
def emotion_sample(tmp_path_factory):
    """12 emotion videos of 4 s (6 train / 2 val / 4 test), through the CLI."""
    return emotion_sample_via_cli(tmp_path_factory.mktemp("emo") / "sample", 12, 4)


def test_keypoint_streams_end_to_end(emotion_sample, tmp_path):
    """Both commands write their stream for every video, with the release's splits and labels, and
    the descriptors follow the sample's latent cues (mouth corners and brows with z_face, speed of
    the wrists against z_beh: losers move more)."""
    run = CliRunner()
    face, ctx = tmp_path / "face.h5", tmp_path / "ctx.h5"
    for kind, out in (("face-points", face), ("body-motion", ctx)):
        r = run.invoke(app, ["--quiet", "embed", str(emotion_sample), "--model", kind, "--fps", "4", "-o", str(out)])
        assert r.exit_code == 0, r.output
    meta = json.loads((emotion_sample / "sample.json").read_text())["videos"]
    with EmbeddingsFile(face) as f, EmbeddingsFile(ctx) as c:
        assert (f.stream, f.dim, c.stream, c.dim) == ("face", len(ep.FACE_FEATURES), "context", len(ep.BODY_FEATURES))
        assert sorted(f.video_ids) == sorted(c.video_ids) == sorted(meta)
        split = f.clips.set_index("video_id")["split"].to_dict()
        assert all({"validate": "val"}.get(meta[v]["split"], meta[v]["split"]) == split[v] for v in meta)
        lift, speed, zf, zb = [], [], [], []
        for vid in f.video_ids:
            fv, cv = f.video(vid), c.video(vid)
            assert len(fv.frames) == 16 and fv.valid.mean() > 0.9  # 4 s at 4 steps per second
            lift.append(fv.vectors[fv.valid, col("corner_lift")].mean())
            speed.append(cv.vectors[cv.valid, bcol("speed_wrists")].mean())
            zf.append(meta[vid]["z_face"])
            zb.append(meta[vid]["z_beh"])
    assert np.corrcoef(lift, zf)[0, 1] > 0.6
    assert np.corrcoef(speed, zb)[0, 1] < -0.3
    r = run.invoke(app, ["inspect", str(face)])
    assert r.exit_code == 0 and "face_points" in r.output, r.output


def test_keypoint_streams_bad_input(emotion_sample, tmp_path):
    run = CliRunner()
    r = run.invoke(
        app, ["embed", str(emotion_sample), "--model", "body-motion", "--fps", "0", "-o", str(tmp_path / "x.h5")]
    )
    assert r.exit_code == 2 and "--fps must be positive" in r.output and not (tmp_path / "x.h5").exists()
    # a video whose skeleton file is gone: reported and left out, the others written
    broken = tmp_path / "release"
    import shutil

    shutil.copytree(emotion_sample, broken)
    gone = sorted(broken.glob("imigue_skeleton_train/*/*_openpose.xlsx"))[0]
    gone.unlink()
    out = tmp_path / "face.h5"
    r = run.invoke(app, ["embed", str(broken), "--model", "face-points", "-o", str(out)])
    assert r.exit_code == 1 and gone.name.split("_")[0] in r.output and "1 video(s) failed" in r.output, r.output
    with EmbeddingsFile(out) as f:
        assert len(f.video_ids) == 11
