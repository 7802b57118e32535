"""Online recognition scoring (Track 2): the organisers' F1 and the strict one on constructed cases
with known answers, the detections CSV checks, and mg evaluate-online on the sample."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import DataError
from mgcli.io.detections import read_detections, write_detections
from mgcli.online.metrics import overlap, score_online


def segs(rows, score=None):
    df = pd.DataFrame(rows, columns=["video_id", "label", "start", "end"])
    df["score"] = 1.0 if score is None else score
    return df


def test_overlap_is_intersection_over_hull_in_frames():
    assert overlap(0, 10, 0, 10) == 1.0
    assert overlap(0, 10, 5, 15) == pytest.approx(5 / 15)
    assert overlap(0, 10, 20, 30) == pytest.approx(-10 / 30)  # apart: negative, never a hit
    assert overlap(7, 7, 7, 7) == 1.0  # two identical one-frame segments
    np.testing.assert_allclose(overlap(np.array([0, 0]), np.array([10, 4]), 0, 10), [1.0, 0.4])


def test_threshold_is_strict_just_above_and_below():
    gt = segs([("0001", 3, 0, 99)])
    # hull 0..99 (99 frames as the organisers count), intersection 30 - 0 = 30 -> 0.303 > 0.3: hit
    above = score_online(segs([("0001", 3, 0, 30)]), gt)[0]
    below = score_online(segs([("0001", 3, 0, 29)]), gt)[0]  # 29 / 99 = 0.293
    assert (above.hits, below.hits) == (1, 0)
    assert above.f1 == 1.0 and below.f1 == 0.0
    wrong_class = score_online(segs([("0001", 4, 0, 99)]), gt)[0]
    assert wrong_class.hits == 0 and wrong_class.precision == 0 and wrong_class.recall == 0


def test_one_prediction_covering_two_ground_truth_segments():
    gt = segs([("0001", 3, 0, 45), ("0001", 3, 50, 100)])
    pred = segs([("0001", 3, 0, 100)])  # overlaps 0.45 and 0.5 with the two
    org, marked = score_online(pred, gt, "organisers")
    assert org.hits == 2 and org.precision == 2.0 and org.recall == 1.0  # as the starter code counts
    assert list(marked["hit"]) == [0, 0]
    strict, marked = score_online(pred, gt, "strict")
    assert strict.hits == 1 and strict.precision == 1.0 and strict.recall == 0.5
    assert list(marked["hit"]) == [-1, 0]  # the better overlap (0.5) wins
    assert strict.f1 == pytest.approx(2 / 3)


def test_pooled_over_videos_and_per_class():
    gt = segs([("0001", 3, 0, 50), ("0001", 5, 100, 150), ("0002", 3, 0, 50), ("0002", 3, 200, 260)])
    pred = segs(
        [("0001", 3, 5, 50), ("0001", 5, 100, 150), ("0001", 7, 300, 350), ("0002", 3, 210, 260), ("0003", 3, 0, 9)]
    )
    s, _ = score_online(pred[pred["video_id"] != "0003"], gt, "strict")
    assert (s.hits, s.predictions, s.ground_truth) == (3, 4, 4)
    assert s.precision == 0.75 and s.recall == 0.75 and s.f1 == pytest.approx(0.75)
    assert s.per_class[3] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "hits": 2, "predictions": 2, "ground_truth": 3}
    )
    assert s.per_class[7]["precision"] == 0.0 and s.per_class[7]["ground_truth"] == 0
    # strict: two predictions on one ground truth: one hit, one false positive; organisers agree here
    gt1 = segs([("0001", 3, 0, 50)])
    pred2 = segs([("0001", 3, 0, 40), ("0001", 3, 0, 50)], score=[0.9, 0.2])
    s, marked = score_online(pred2, gt1, "strict")
    assert s.hits == 1 and s.precision == 0.5 and list(marked["hit"]) == [1]  # the better overlap
    s, marked = score_online(pred2, gt1, "organisers")
    assert s.hits == 1 and list(marked["hit"]) == [0]  # the first in file order


def test_a_video_without_detections_misses_all_its_gestures():
    gt = segs([("0001", 3, 0, 50), ("0002", 5, 0, 40), ("0002", 6, 60, 90)])
    pred = segs([("0001", 3, 0, 50)])
    for matching in ("strict", "organisers"):
        s, marked = score_online(pred, gt, matching)
        assert (s.hits, s.predictions, s.ground_truth) == (1, 1, 3) and list(marked["hit"]) == [0, -1, -1]
    s, marked = score_online(pred.iloc[:0], gt, "strict")  # nothing detected anywhere
    assert s.hits == 0 and s.f1 == 0.0 and (marked["hit"] == -1).all()


def test_detections_csv_checks(tmp_path):
    good = tmp_path / "d.csv"
    write_detections(good, segs([("0001", 3, 0, 50), ("0002", 5, 10, 20)], score=[0.9, 0.4]))
    d = read_detections(good, 32)
    assert len(d) == 2 and d.video_ids == ["0001", "0002"] and d.table["score"].tolist() == [0.9, 0.4]
    cases = {
        "video_id,label,start\n0001,3,0\n": "missing column(s) end",
        "video_id,label,start,end\n0001,3,x,5\n": "row 2: start must be an integer",
        "video_id,label,start,end\n0001,3,9,5\n": "row 2: end is before start",
        "video_id,label,start,end\n0001,3,0,5\n1,3,0,5\n": "row 3: video_id must be 4 digits",
        "video_id,label,start,end\n0001,40,0,5\n": "row 2: label must be below 32",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(DataError, match=re.escape(message)):
            read_detections(bad, 32)


def test_evaluate_online_on_the_sample(small_sample, tmp_path):
    """The sample's own test segments as detections: F1 1; shifted and relabelled ones: known F1."""
    from mgcli.dataset.release import Release

    clips = Release(small_sample).clips(check_frames=False)
    test = clips[clips["split"] == "test"].reset_index(drop=True)
    perfect = test[["video_id", "label", "start", "end"]].assign(score=1.0)
    det = tmp_path / "perfect.csv"
    write_detections(det, perfect)
    vid = test["video_id"].iloc[0]
    run = CliRunner()
    r = run.invoke(
        app, ["evaluate-online", str(det), "--release", str(small_sample), "--timeline", vid], env={"COLUMNS": "160"}
    )
    assert r.exit_code == 0, r.output
    body = json.loads((tmp_path / "perfect-online.json").read_text())
    assert body["strict"]["f1"] == 1.0 and body["organisers"]["f1"] == 1.0
    assert body["videos"] == test["video_id"].nunique() and body["strict"]["ground_truth"] == len(test)
    png = tmp_path / f"perfect-timeline-{vid}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every other segment with a wrong class, and a detection on a training video
    half = perfect.copy()
    half.loc[::2, "label"] = (half.loc[::2, "label"] + 1) % 32
    train_vid = clips.loc[clips["split"] == "train", "video_id"].iloc[0]
    half = pd.concat([half, pd.DataFrame([{"video_id": train_vid, "label": 0, "start": 0, "end": 9, "score": 1.0}])])
    write_detections(tmp_path / "half.csv", half)
    r = run.invoke(app, ["evaluate-online", str(tmp_path / "half.csv"), "--release", str(small_sample)])
    assert r.exit_code == 0 and "ignored" in r.output, r.output
    body = json.loads((tmp_path / "half-online.json").read_text())
    hits = len(test) // 2
    assert body["strict"]["hits"] == hits and body["strict"]["precision"] == pytest.approx(hits / len(test))
    assert body["ignored_videos"] == [train_vid]
    # refused: outputs exist, an unknown timeline video, a bad threshold, unknown test classes
    r = run.invoke(app, ["evaluate-online", str(det), "--release", str(small_sample)])
    assert r.exit_code == 2 and "exists" in r.output, r.output
    r = run.invoke(
        app,
        [
            "evaluate-online",
            str(det),
            "--release",
            str(small_sample),
            "--timeline",
            train_vid,
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2 and f"--timeline {train_vid}: not a test video" in r.output, r.output
    r = run.invoke(
        app, ["evaluate-online", str(det), "--release", str(small_sample), "--iou", "1.5", "-o", str(tmp_path / "y")]
    )
    assert r.exit_code == 2 and "--iou must be in [0, 1)" in r.output


def test_submit_online2023_writes_one_file_per_test_video(small_sample, tmp_path):
    import zipfile

    from mgcli.dataset.release import Release

    rel = Release(small_sample)
    clips = rel.clips(check_frames=False)
    test = clips[clips["split"] == "test"]
    vids = sorted(test["video_id"].unique())
    det = pd.DataFrame(
        [
            {"video_id": vids[0], "label": 5, "start": 40, "end": 60, "score": 0.5},
            {"video_id": vids[0], "label": 2, "start": 10, "end": 30, "score": 0.9},
        ]
    )
    write_detections(tmp_path / "det.csv", det)
    out = tmp_path / "online.zip"
    run = CliRunner()
    r = run.invoke(
        app,
        ["submit", str(tmp_path / "det.csv"), "--format", "online2023", "--release", str(small_sample), "-o", str(out)],
    )
    assert r.exit_code == 0 and f"{len(vids)} test videos, 2 segments" in r.output, r.output
    with zipfile.ZipFile(out) as z:
        assert z.namelist() == [f"{v}_prediction.csv" for v in vids]
        raw = rel.label_map.to_raw
        assert z.read(f"{vids[0]}_prediction.csv") == f"{raw(2)},10,30\n{raw(5)},40,60\n".encode()
        assert all(z.read(f"{v}_prediction.csv") == b"" for v in vids[1:])
    first = out.read_bytes()
    r = run.invoke(
        app,
        [
            "submit",
            str(tmp_path / "det.csv"),
            "--task",
            "online",
            "--release",
            str(small_sample),
            "-o",
            str(out),
            "--overwrite",
        ],
    )
    assert r.exit_code == 0 and out.read_bytes() == first  # byte-reproducible
    train_vid = clips.loc[clips["split"] == "train", "video_id"].iloc[0]
    write_detections(tmp_path / "bad.csv", det.assign(video_id=train_vid))
    r = run.invoke(
        app,
        [
            "submit",
            str(tmp_path / "bad.csv"),
            "--format",
            "online2023",
            "--release",
            str(small_sample),
            "-o",
            str(tmp_path / "b.zip"),
        ],
    )
    assert r.exit_code == 2 and "not test videos of the release" in r.output and not (tmp_path / "b.zip").exists()
