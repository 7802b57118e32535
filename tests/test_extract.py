"""extract-pose: release skeleton import, the clip cache, corrupt videos, kill-and-resume."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.dataset.formats import LIGHT_HAND_FROM_OPENPOSE, read_light_hand_csv, read_openpose_xlsx
from mgcli.dataset.release import Release
from mgcli.errors import MgError
from mgcli.io import FramesFile, PosesFile
from mgcli.pose.extract import ExtractOptions, extract_pose, parts_dir_for
from mgcli.pose.layouts import convert

runner = CliRunner()


def test_mixed_skeleton_formats_need_a_layout(mini_release: Path, tmp_path: Path) -> None:
    with pytest.raises(MgError, match="different layouts .* --layout"):
        extract_pose(mini_release, tmp_path / "p.h5", ExtractOptions())
    assert not (tmp_path / "p.h5").exists() and not parts_dir_for(tmp_path / "p.h5").exists()


def test_release_skeletons_imported_exactly(mini_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "poses.h5"
    report = extract_pose(mini_release, out, ExtractOptions(layout="openpose35"))
    assert [o.ok for o in report.outcomes] == [True, True, True]
    assert not parts_dir_for(out).exists()  # merged and cleaned up
    with PosesFile(out) as p:
        assert p.layout == "openpose35" and p.video_ids == ["0101", "0202", "0303"]
        xlsx = read_openpose_xlsx(mini_release / "imigue_skeleton_train/0101/0101_openpose.xlsx")
        v = p["0101"]
        assert v.keypoint.shape == (1, 40, 35, 2) and v.img_shape == (48, 64) and v.fps == 25.0
        sub = xlsx[:, list(LIGHT_HAND_FROM_OPENPOSE)]
        np.testing.assert_allclose(v.keypoint[0], sub[..., :2], atol=1e-4)
        np.testing.assert_allclose(v.keypoint_score[0], sub[..., 2], atol=1e-4)
        _, lh = read_light_hand_csv(mini_release / "imigue_skeleton_validate/0202/0202_light_hand.csv")
        v = p["0202"]  # no video: frame count from the file, frame size from the points
        np.testing.assert_allclose(v.keypoint[0], lh[..., :2], atol=1e-4)
        assert v.total_frames == 10 and v.img_shape == (720, 1280) and v.fps == 0.0
        expected = Release(mini_release).clips(check_frames=False)
        pd.testing.assert_frame_equal(p.clips, expected)


def test_layout_conversion_on_import(mini_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "coco.h5"
    extract_pose(mini_release, out, ExtractOptions(layout="coco17"))
    xlsx = read_openpose_xlsx(mini_release / "imigue_skeleton_test/0303/0303_openpose.xlsx")
    kp, sc = convert(xlsx[..., :2], xlsx[..., 2], "openpose137", "coco17")
    with PosesFile(out) as p:
        np.testing.assert_allclose(p["0303"].keypoint[0], kp, atol=1e-4)
        np.testing.assert_allclose(p["0303"].keypoint_score[0], sc, atol=1e-4)
    with pytest.raises(MgError, match="no 0202_openpose.xlsx"):
        extract_pose(mini_release, tmp_path / "x.h5", ExtractOptions(layout="coco17", skeleton_file="xlsx"))


def test_sample_with_clip_cache(small_sample: Path, tmp_path: Path) -> None:
    out, frames = tmp_path / "poses.h5", tmp_path / "frames.h5"
    opts = ExtractOptions(layout="upper22", frames_out=frames, frame_size=64, jpeg_quality=95)
    report = extract_pose(small_sample, out, opts)
    assert not report.failed
    rel = Release(small_sample)
    clips = rel.clips()
    with PosesFile(out) as p, FramesFile(frames) as fr:
        pd.testing.assert_frame_equal(p.clips, clips)
        xlsx = read_openpose_xlsx(rel.videos["0001"].openpose_xlsx)
        kp, _ = convert(xlsx[..., :2], xlsx[..., 2], "openpose137", "upper22")
        np.testing.assert_allclose(p["0001"].keypoint[0], kp, atol=1e-4)
        for c in clips.itertuples():
            assert fr.num_frames(c.clip_id) == c.end - c.start + 1
            assert fr.frame_index(c.clip_id).tolist() == list(range(c.start, c.end + 1))
        c = clips.iloc[5]
        cap = cv2.VideoCapture(str(rel.videos[c.video_id].video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(c.start) + 3)
        ok, bgr = cap.read()
        assert ok
        want = cv2.cvtColor(cv2.resize(bgr, (107, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        got = fr.read(c.clip_id, [3])[0]
        assert got.shape == (64, 107, 3) and np.abs(got.astype(int) - want.astype(int)).mean() < 4


def test_workers_give_the_same_artifact(small_sample: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    extract_pose(small_sample, a, ExtractOptions(layout="coco17", workers=1))
    extract_pose(small_sample, b, ExtractOptions(layout="coco17", workers=2))
    with PosesFile(a) as pa, PosesFile(b) as pb:
        pd.testing.assert_frame_equal(pa.clips, pb.clips)
        for vid in pa.video_ids:
            np.testing.assert_array_equal(pa[vid].keypoint, pb[vid].keypoint)


def test_corrupt_and_truncated_videos_are_reported(small_sample: Path, tmp_path: Path) -> None:
    root = tmp_path / "broken"
    shutil.copytree(small_sample, root)
    (root / "validation_data/0002/0002.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    v3 = root / "test_data/0003/0003.mp4"
    v3.write_bytes(v3.read_bytes()[: v3.stat().st_size // 2])
    out, frames = tmp_path / "poses.h5", tmp_path / "frames.h5"
    r = runner.invoke(
        app, ["extract-pose", str(root), "-o", str(out), "--frames-out", str(frames), "--frame-size", "64"]
    )
    assert r.exit_code == 1, r.output
    assert "2 video(s) failed" in r.stderr
    assert "0002" in r.output and "cannot open video" in r.output
    with PosesFile(out) as p, FramesFile(frames) as fr:
        assert p.video_ids == ["0001"]
        assert set(p.clips["video_id"]) == {"0001"} and set(fr.clips["video_id"]) == {"0001"}


RUN = [sys.executable, "-m", "mgcli", "--quiet", "extract-pose"]


def test_kill_9_then_resume_gives_the_same_artifact(small_sample: Path, tmp_path: Path) -> None:
    common = ["--layout", "coco17", "--frame-size", "64"]
    ref, ref_frames = tmp_path / "ref.h5", tmp_path / "ref_frames.h5"
    subprocess.run([*RUN, str(small_sample), "-o", str(ref), "--frames-out", str(ref_frames), *common], check=True)

    out, frames = tmp_path / "poses.h5", tmp_path / "frames.h5"
    args = [*RUN, str(small_sample), "-o", str(out), "--frames-out", str(frames), *common]
    parts = parts_dir_for(out)
    proc = subprocess.Popen(args)
    deadline = time.time() + 60
    while not list(parts.glob("*.h5")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and not frames.exists()
    finished = {p.stem for p in parts.glob("*.h5")}
    assert 1 <= len(finished) < 3

    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert not parts.exists()
    with PosesFile(ref) as a, PosesFile(out) as b:
        pd.testing.assert_frame_equal(a.clips, b.clips)
        assert a.video_ids == b.video_ids
        for vid in a.video_ids:
            np.testing.assert_array_equal(a[vid].keypoint, b[vid].keypoint)
            np.testing.assert_array_equal(a[vid].keypoint_score, b[vid].keypoint_score)
    with FramesFile(ref_frames) as a, FramesFile(frames) as b:
        pd.testing.assert_frame_equal(a.clips, b.clips)
        for cid in a.clips["clip_id"]:
            assert [bytes(x) for x in a.f["frames"][cid][()]] == [bytes(x) for x in b.f["frames"][cid][()]]


def test_overwrite_is_refused_without_the_flag(mini_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.h5"
    out.write_text("keep me")
    r = runner.invoke(app, ["extract-pose", str(mini_release), "-o", str(out), "--layout", "coco17"])
    assert r.exit_code == 2 and "already exists" in r.stderr and out.read_text() == "keep me"
    assert not parts_dir_for(out).exists()


def test_summary_table_rows() -> None:
    import io

    from rich.console import Console

    from mgcli.output import extract_table
    from mgcli.pose.extract import ExtractReport, VideoOutcome

    outcomes = [
        VideoOutcome("0101", True, frames=1200, processed=340, clips=7, seconds=2.25),
        VideoOutcome("0202", False, "truncated at frame 90", frames=90),
        VideoOutcome("0303", True, frames=50, clips=1, skipped=True),
    ]
    report = ExtractReport(Path("p.h5"), None, "coco17", "video", outcomes)
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(extract_table(report))
    lines = [[c.strip() for c in line.split("│")[1:-1]] for line in buf.getvalue().splitlines() if "│" in line]
    assert "extract-pose: video -> coco17" in buf.getvalue()
    assert lines == [
        ["0101", "ok", "1,200", "340", "7", "2.2"],
        ["0202", "failed: truncated at frame 90", "90", "-", "0", "0.0"],
        ["0303", "done earlier", "50", "-", "1", "0.0"],
    ]
