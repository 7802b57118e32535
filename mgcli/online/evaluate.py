"""``mg evaluate-online``: a detections CSV against the ground-truth segments of a release split."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mgcli.dataset.release import Release
from mgcli.errors import DataError, MgError
from mgcli.io.atomic import atomic_output, check_output
from mgcli.io.detections import read_detections
from mgcli.online.metrics import MATCHINGS, OnlineScore, score_online, split_detections
from mgcli.online.timeline import plot_timeline


@dataclass
class OnlineReport:
    scores: dict[str, OnlineScore]  # by matching
    class_names: list[str]
    videos: int
    ignored_videos: list[str] = field(default_factory=list)  # detections on videos outside the split
    files: list[Path] = field(default_factory=list)


def ground_truth(
    root: str | Path, split: str = "test", test_labels: str | Path | None = None
) -> tuple[pd.DataFrame, list[str], Release]:
    """The labelled segments ``video_id, label, start, end`` of one split of a release, its class
    names and the release."""
    release = Release(root, test_labels=test_labels)
    clips = release.clips(check_frames=False)
    gt = clips[clips["split"] == split]
    if not len(gt):
        raise DataError(f"the release has no {split} clips", release.root)
    if (gt["label"] < 0).any():
        raise DataError(
            f"the {split} split's classes are unknown (the challenge's test label files carry dummy "
            "classes): give --test-labels clip_id,label",
            release.root,
        )
    gt = gt[["video_id", "label", "start", "end"]].sort_values(["video_id", "start"], kind="stable")
    return gt.reset_index(drop=True), list(release.label_map.names), release


def evaluate_online(
    detections: str | Path,
    root: str | Path,
    split: str = "test",
    test_labels: str | Path | None = None,
    threshold: float = 0.3,
    timelines: list[str] | tuple[str, ...] = (),
    prefix: str | Path | None = None,
    overwrite: bool = False,
) -> OnlineReport:
    """Score ``detections`` with both matchings (see :mod:`mgcli.online.metrics`), write
    ``PREFIX-online.json`` and a ``PREFIX-timeline-VID.png`` per video of ``timelines``."""
    if not 0 <= threshold < 1:
        raise MgError(f"--iou must be in [0, 1), got {threshold}")
    detections = Path(detections)
    gt, names, release = ground_truth(root, split, test_labels)
    pred, ignored = split_detections(read_detections(detections, len(names)).table, set(gt["video_id"]))
    prefix = Path(prefix) if prefix is not None else detections.with_suffix("")
    js = prefix.with_name(prefix.name + "-online.json")
    pngs = {vid: prefix.with_name(f"{prefix.name}-timeline-{vid}.png") for vid in timelines}
    unknown = [v for v in timelines if v not in set(gt["video_id"])]
    if unknown:
        raise MgError(f"--timeline {unknown[0]}: not a {split} video of the release", release.root)
    for path in (js, *pngs.values()):
        check_output(path, overwrite, inputs=[detections])
    scores, marked = {}, {}
    for m in MATCHINGS:
        scores[m], marked[m] = score_online(pred, gt, m, threshold)
    report = OnlineReport(scores, names, int(gt["video_id"].nunique()), ignored)
    body = {
        "detections": str(detections),
        "release": str(release.root),
        "split": split,
        "videos": report.videos,
        "ignored_videos": ignored,
        "class_names": names,
        **{m: s.to_dict() for m, s in scores.items()},
    }
    with atomic_output(js, overwrite=True) as tmp:
        tmp.write_text(json.dumps(body, indent=1))
    report.files.append(js)
    for vid, png in pngs.items():
        info = release.video_info(vid)
        strict = marked["strict"]
        plot_timeline(
            pred[pred["video_id"] == vid], strict[strict["video_id"] == vid], names, png,
            fps=float(info.fps) if info else None, title=f"video {vid}: detections vs ground truth (strict matching)",
        )  # fmt: skip
        report.files.append(png)
    return report
