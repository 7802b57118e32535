"""``mg sample-data``: a small synthetic iMiGUE laid out exactly like the MiGA release.

Every video is one synthetic interviewee (see :mod:`mgcli.dataset.synth` for what is rendered and
why). Files written, per video ``vid`` of split ``S`` (train / validate / test)::

    imigue_skeleton_S/{vid}/{vid}_openpose.xlsx     137 points x (x, y, conf), no header
    imigue_skeleton_S/{vid}/{vid}_light_hand.csv    frame + 35 joints x (x, y, c), header row
    imigue_skeleton_S/{vid}/{vid}_label.csv         class,start,end (raw classes; dummy in test)
    {train,validation,test}_data/{vid}/{vid}.mp4    the long interview video (mp4v)
    {train,validation,test}_data/{vid}/{vid}_label.csv
    test_labels.csv                                 clip_id,label: the true test labels
    sample.json, README.md                          what was generated, with the expected ceilings

Each video gets its own random stream spawned from the seed, so the output does not depend on
the number of worker processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mgcli import __version__
from mgcli.dataset import synth
from mgcli.dataset.formats import write_label_csv, write_light_hand_csv, write_openpose_xlsx
from mgcli.dataset.labels import DEFAULT_LABEL_MAP
from mgcli.errors import MgError
from mgcli.io.atomic import AtomicOutput

SKELETON_FOLDERS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}
RGB_FOLDERS = {"train": "train_data", "val": "validation_data", "test": "test_data"}
DUMMY_TEST_RAW = 1  # what the challenge's test label files carry instead of the class


@dataclass(frozen=True)
class SampleConfig:
    videos: int = 16
    gestures: int = 24
    height: int = 180
    width: int = 320
    fps: float = 25.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.videos < 3:
            raise MgError("--videos must be at least 3 (one per split)")
        if self.gestures < 1:
            raise MgError("--gestures must be at least 1")
        if min(self.height, self.width) < 64:
            raise MgError("--size must be at least 64x64")
        if self.fps <= 0:
            raise MgError("--fps must be positive")
        if self.seed < 0:
            raise MgError(f"--seed must be 0 or more, not {self.seed}")

    def splits(self) -> list[str]:
        """Split of each video: about 25 % test, 12.5 % validation, the rest train."""
        n_test = max(1, round(0.25 * self.videos))
        n_val = max(1, round(0.125 * self.videos))
        n_train = self.videos - n_test - n_val
        return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


@dataclass
class VideoResult:
    video_id: str
    split: str
    frames: int
    segments: list[tuple[int, int, int]]  # (label, start, end)


@dataclass
class SampleSummary:
    root: Path
    config: SampleConfig
    videos: list[VideoResult]
    seconds: float
    clips_per_split: dict[str, int] = field(default_factory=dict)
    ceilings: dict[str, float] = field(default_factory=dict)


def _make_video(root: Path, vid: str, split: str, cfg: SampleConfig, seed: np.random.SeedSequence) -> VideoResult:
    rng = np.random.default_rng(seed)
    subject = synth.random_subject(rng, cfg.height, cfg.width)
    segments, n_frames = synth.plan_segments(rng, cfg.gestures, cfg.fps)
    rgb_dir = root / RGB_FOLDERS[split] / vid
    skel_dir = root / SKELETON_FOLDERS[split] / vid
    rgb_dir.mkdir(parents=True)
    skel_dir.mkdir(parents=True)

    writer = cv2.VideoWriter(
        str(rgb_dir / f"{vid}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height)
    )
    if not writer.isOpened():
        raise MgError("OpenCV cannot write mp4 (mp4v) videos on this machine", rgb_dir / f"{vid}.mp4")
    keypoints = np.empty((n_frames, 137, 3), np.float32)
    for t, (frame, kp) in enumerate(synth.render(subject, segments, n_frames, cfg.fps, cfg.height, cfg.width, rng)):
        writer.write(frame)
        keypoints[t] = kp
    writer.release()

    noisy = synth.openpose_noise(keypoints, rng)
    write_openpose_xlsx(skel_dir / f"{vid}_openpose.xlsx", noisy)
    write_light_hand_csv(skel_dir / f"{vid}_light_hand.csv", noisy)
    if split == "test":
        rows = [(DUMMY_TEST_RAW, s, e) for _, s, e in segments]
    else:
        rows = [(DEFAULT_LABEL_MAP.to_raw(label), s, e) for label, s, e in segments]
    for folder in (skel_dir, rgb_dir):
        write_label_csv(folder / f"{vid}_label.csv", rows)
    return VideoResult(vid, split, n_frames, segments)


def confusable_ceiling(labels: list[int], pairs: tuple[tuple[int, int], ...]) -> float:
    """Best top-1 of a model that cannot tell the two classes of each pair apart (it can at best
    always answer the more frequent one of a pair)."""
    counts = {c: labels.count(c) for c in set(labels)}
    lost = sum(min(counts.get(a, 0), counts.get(b, 0)) for a, b in pairs)
    return 1.0 - lost / max(1, len(labels))


def generate_sample(
    out: str | Path,
    config: SampleConfig = SampleConfig(),
    overwrite: bool = False,
    workers: int = 2,
    progress: Callable[[VideoResult], None] | None = None,
) -> SampleSummary:
    """Generate the sample dataset under ``out`` (written to a temporary folder, then renamed)."""
    if workers < 1:
        raise MgError(f"--workers must be at least 1, not {workers}")
    t0 = time.perf_counter()
    splits = config.splits()
    vids = [f"{i + 1:04d}" for i in range(config.videos)]
    seeds = np.random.SeedSequence(config.seed).spawn(config.videos)
    results: list[VideoResult] = []
    with AtomicOutput(out, overwrite) as tmp:
        tmp.mkdir()
        jobs = list(zip(vids, splits, seeds, strict=True))
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_make_video, tmp, v, s, config, sd) for v, s, sd in jobs]
                for fut in futures:
                    results.append(fut.result())
                    if progress:
                        progress(results[-1])
        else:
            for v, s, sd in jobs:
                results.append(_make_video(tmp, v, s, config, sd))
                if progress:
                    progress(results[-1])
        summary = _summarise(Path(out), config, results, time.perf_counter() - t0)
        _write_root_files(tmp, summary)
    return summary


def _summarise(root: Path, cfg: SampleConfig, results: list[VideoResult], seconds: float) -> SampleSummary:
    per_split = {s: sum(len(r.segments) for r in results if r.split == s) for s in ("train", "val", "test")}
    test_labels = [label for r in results if r.split == "test" for label, _, _ in r.segments]
    ceilings = {
        "pose_only": confusable_ceiling(test_labels, synth.APPEARANCE_PAIRS),
        "rgb_only_8_frames": confusable_ceiling(test_labels, synth.TEMPORAL_PAIRS),
        "fused": 1.0,
    }
    return SampleSummary(root, cfg, results, seconds, per_split, ceilings)


def _write_root_files(tmp: Path, summary: SampleSummary) -> None:
    lines = ["clip_id,label"]
    for r in summary.videos:
        if r.split == "test":
            lines += [f"{r.video_id}_{k},{label}" for k, (label, _, _) in enumerate(r.segments)]
    (tmp / "test_labels.csv").write_text("\n".join(lines) + "\n")
    names = DEFAULT_LABEL_MAP.names
    meta = {
        "generator": f"mgcli {__version__} sample-data",
        "config": asdict(summary.config),
        "classes": {str(c): names[c] for c in synth.SAMPLE_LABELS},
        "appearance_pairs": [list(p) for p in synth.APPEARANCE_PAIRS],
        "temporal_pairs": [list(p) for p in synth.TEMPORAL_PAIRS],
        "videos": {
            r.video_id: {"split": r.split, "frames": r.frames, "clips": len(r.segments)} for r in summary.videos
        },
        "clips_per_split": summary.clips_per_split,
        "expected_test_ceilings": summary.ceilings,
    }
    (tmp / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    (tmp / "README.md").write_text(_readme(summary))


def _readme(s: SampleSummary) -> str:
    names = DEFAULT_LABEL_MAP.names
    rows = "\n".join(f"| {c} | {names[c]} | {synth.CLASS_MOTIONS[c]} |" for c in synth.SAMPLE_LABELS)
    pairs = lambda ps: ", ".join(f"{names[a]} / {names[b]}" for a, b in ps)  # noqa: E731
    c = s.config
    return f"""# mgcli synthetic sample (seed {c.seed})

Generated by `mg sample-data` (mgcli {__version__}): {c.videos} interview videos of
{c.height}x{c.width} pixels at {c.fps:g} fps, {c.gestures} gestures each, in the layout of the MiGA
release. Clips: {s.clips_per_split["train"]} train, {s.clips_per_split["val"]} validation,
{s.clips_per_split["test"]} test. Test label files carry a dummy class; the true test labels are in
`test_labels.csv`.

| id | class | what the subject does |
|---|---|---|
{rows}

Pairs that only one modality can separate, by construction:
- same keypoint motion, different appearance (pose cannot tell them apart): {pairs(synth.APPEARANCE_PAIRS)}
- same appearance and mean path, different fast motion (8 sampled RGB frames hardly can): {pairs(synth.TEMPORAL_PAIRS)}

Expected top-1 ceilings on this test split: pose only {s.ceilings["pose_only"]:.3f},
RGB only (8 frames) {s.ceilings["rgb_only_8_frames"]:.3f}, fused RGB + pose {s.ceilings["fused"]:.3f}.
"""
