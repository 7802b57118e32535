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

Emotion preset (``generate_sample(..., emotion=EmotionConfig())``, ``mg sample-data DIR --preset
emotion``): short videos with a win / lose label each, balanced in every split, written as
``train_label.csv``, ``validation_label.csv`` and ``test_label.csv`` at the root (header
``video_id,label``, 1 = win, 0 = lose; see :mod:`mgcli.dataset.emotion`). Per video two latent
strengths ``z_face, z_beh ~ N(0, 1)`` are drawn and ``label = 1[z_face + z_beh > 0]``; ``z_face``
drives a facial expression (mouth corners and brows, drawn and in the face points) and ``z_beh``
the behaviour (rate of self-touching gestures, gesture gaps, movement energy), see
:func:`mgcli.dataset.synth.emotion_cues`. Alone, a perfect reading of either strength is right with
probability ``1/2 + arctan(1)/pi = 0.75`` (:func:`single_cue_ceiling`); both together decide the
label. All emotion draws come from random streams of their own (``spawn_key`` :data:`EMOTION_STREAM`
of the seed), and without the preset nothing of it runs: the default sample is unchanged.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from mgcli import __version__
from mgcli.dataset import synth
from mgcli.dataset.emotion import LABEL_FILES, LOSE, WIN
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


EMOTION_STREAM = 0xE307  # spawn_key of the emotion preset's random streams (default videos use 0..videos-1)


@dataclass(frozen=True)
class EmotionConfig:
    """The emotion preset: videos per split (each split half win, half lose, so even counts) and
    the length of every video. The frame size, fps and seed come from :class:`SampleConfig`, whose
    ``videos`` must equal :attr:`videos` and whose ``gestures`` is not used (the gesture rate
    follows ``z_beh``, see :func:`mgcli.dataset.synth.plan_emotion_segments`)."""

    train: int = 24
    val: int = 6
    test: int = 10
    seconds: float = 6.0

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            n = getattr(self, name)
            if n < 2 or n % 2:
                raise MgError(f"emotion preset: {name} videos must be even and at least 2 (half win), not {n}")
        if not 3.0 <= self.seconds <= 600.0:
            raise MgError(f"emotion preset: video length must be 3-600 s, not {self.seconds:g}")

    @property
    def videos(self) -> int:
        return self.train + self.val + self.test

    def splits(self) -> list[str]:
        return ["train"] * self.train + ["val"] * self.val + ["test"] * self.test

    @classmethod
    def for_videos(cls, videos: int, seconds: float = 6.0) -> EmotionConfig:
        """Even split sizes for an even number of ``videos``: about 25 % test, 15 % validation, the
        rest train (40 -> 24 / 6 / 10)."""
        if videos < 6 or videos % 2:
            raise MgError(f"--videos must be even and at least 6 with --preset emotion, not {videos}")
        test = 2 * max(1, round(0.125 * videos))
        val = 2 * max(1, round(0.075 * videos))
        return cls(train=videos - test - val, val=val, test=test, seconds=seconds)


# Defaults of the emotion preset besides EmotionConfig: a larger frame so the face is ~30 px wide.
EMOTION_SAMPLE = SampleConfig(videos=40, gestures=1, height=216, width=384, fps=25.0, seed=0)


PRESETS = ("default", "emotion")


def preset_config(
    preset: str = "default",
    videos: int | None = None,
    gestures: int | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    seed: int = 0,
    seconds: float | None = None,
) -> tuple[SampleConfig, EmotionConfig | None]:
    """The configs of a preset (``default``: :class:`SampleConfig` defaults, 16 long videos;
    ``emotion``: :data:`EMOTION_SAMPLE` and :class:`EmotionConfig`, 40 short labelled videos), with
    the given values replacing the preset's (None keeps it). ``gestures`` applies to the default
    preset only, ``seconds`` (video length) to the emotion preset only."""
    if preset not in PRESETS:
        raise MgError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
    base = SampleConfig() if preset == "default" else EMOTION_SAMPLE
    if preset == "default" and seconds is not None:
        raise MgError("--seconds applies to --preset emotion only (default videos last as long as their gestures)")
    if preset == "emotion" and gestures is not None:
        raise MgError("--gestures does not apply to --preset emotion (its gesture rate follows z_beh)")
    height, width = size or (base.height, base.width)
    cfg = SampleConfig(
        videos=base.videos if videos is None else videos,
        gestures=base.gestures if gestures is None else gestures,
        height=height,
        width=width,
        fps=base.fps if fps is None else fps,
        seed=seed,
    )
    if preset == "default":
        return cfg, None
    return cfg, EmotionConfig.for_videos(cfg.videos, EmotionConfig.seconds if seconds is None else seconds)


@dataclass(frozen=True)
class EmotionLatent:
    """One video's latent strengths and label (1 = win): ``label = 1[z_face + z_beh > 0]``."""

    z_face: float
    z_beh: float
    label: int


def draw_emotion_latents(seed: int, splits: list[str]) -> list[EmotionLatent]:
    """Balanced labels per split (a random half of each split wins), then ``(z_face, z_beh)`` from
    ``N(0, I)`` conditioned on the label (rejection: redraw until ``z_face + z_beh`` has the
    label's sign), so the strengths have exactly the distribution of the unconditioned model."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(EMOTION_STREAM, 0)))
    labels = [LOSE] * len(splits)
    for split in dict.fromkeys(splits):
        idx = [i for i, s in enumerate(splits) if s == split]
        for i in rng.permutation(idx)[: len(idx) // 2]:
            labels[int(i)] = WIN
    out = []
    for label in labels:
        while True:
            z = rng.standard_normal(2)
            if (z.sum() > 0) == (label == WIN) and z.sum() != 0:
                break
        out.append(EmotionLatent(float(z[0]), float(z[1]), label))
    return out


def single_cue_ceiling(sigma_cue: float = 1.0, sigma_other: float = 1.0) -> float:
    """Best accuracy from one latent alone when ``label = 1[z_cue + z_other > 0]`` with independent
    zero-mean gaussians: predict ``1[z_cue > 0]``, right with probability
    ``1/2 + arcsin(rho)/pi``, ``rho = sigma_cue / sqrt(sigma_cue^2 + sigma_other^2)``, i.e.
    ``1/2 + arctan(sigma_cue / sigma_other)/pi`` (0.75 for equal spreads)."""
    return 0.5 + math.atan2(sigma_cue, sigma_other) / math.pi


@dataclass
class VideoResult:
    video_id: str
    split: str
    frames: int
    segments: list[tuple[int, int, int]]  # (label, start, end)
    emotion: EmotionLatent | None = None


@dataclass
class SampleSummary:
    root: Path
    config: SampleConfig
    videos: list[VideoResult]
    seconds: float
    clips_per_split: dict[str, int] = field(default_factory=dict)
    ceilings: dict[str, float] = field(default_factory=dict)
    emotion: EmotionConfig | None = None
    emotion_ceilings: dict[str, float] = field(default_factory=dict)


def _make_video(
    root: Path,
    vid: str,
    split: str,
    cfg: SampleConfig,
    seed: np.random.SeedSequence,
    emotion: tuple[EmotionConfig, EmotionLatent, np.random.SeedSequence] | None = None,
) -> VideoResult:
    rng = np.random.default_rng(seed)
    subject = synth.random_subject(rng, cfg.height, cfg.width)
    cues = latent = None
    if emotion is None:
        segments, n_frames = synth.plan_segments(rng, cfg.gestures, cfg.fps)
    else:
        ecfg, latent, cue_seed = emotion
        cue_rng = np.random.default_rng(cue_seed)
        segments, n_frames = synth.plan_emotion_segments(cue_rng, latent.z_beh, ecfg.seconds, cfg.fps)
        cues = synth.emotion_cues(cue_rng, latent.z_face, latent.z_beh, n_frames, cfg.fps)
        pace = cues.energy**0.5  # restless subjects also gesture faster and wider
        subject = replace(subject, speed=subject.speed * pace, amplitude=subject.amplitude * pace)
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
    frames = synth.render(subject, segments, n_frames, cfg.fps, cfg.height, cfg.width, rng, cues)
    for t, (frame, kp) in enumerate(frames):
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
    return VideoResult(vid, split, n_frames, segments, latent)


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
    emotion: EmotionConfig | None = None,
) -> SampleSummary:
    """Generate the sample dataset under ``out`` (written to a temporary folder, then renamed).
    With ``emotion`` (whose :attr:`EmotionConfig.videos` must equal ``config.videos``), the emotion
    preset: its splits, win / lose labels and cues, see the module docstring."""
    if workers < 1:
        raise MgError(f"--workers must be at least 1, not {workers}")
    t0 = time.perf_counter()
    splits = config.splits()
    vids = [f"{i + 1:04d}" for i in range(config.videos)]
    seeds = np.random.SeedSequence(config.seed).spawn(config.videos)
    extras: list[tuple[EmotionConfig, EmotionLatent, np.random.SeedSequence] | None] = [None] * config.videos
    if emotion is not None:
        if emotion.videos != config.videos:
            raise MgError(f"emotion preset: {emotion.videos} videos in its splits but --videos is {config.videos}")
        splits = emotion.splits()
        latents = draw_emotion_latents(config.seed, splits)
        cue_seeds = np.random.SeedSequence(config.seed, spawn_key=(EMOTION_STREAM, 1)).spawn(config.videos)
        extras = [(emotion, z, sd) for z, sd in zip(latents, cue_seeds, strict=True)]
    results: list[VideoResult] = []
    with AtomicOutput(out, overwrite) as tmp:
        tmp.mkdir()
        jobs = list(zip(vids, splits, seeds, extras, strict=True))
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_make_video, tmp, v, s, config, sd, ex) for v, s, sd, ex in jobs]
                for fut in futures:
                    results.append(fut.result())
                    if progress:
                        progress(results[-1])
        else:
            for v, s, sd, ex in jobs:
                results.append(_make_video(tmp, v, s, config, sd, ex))
                if progress:
                    progress(results[-1])
        summary = _summarise(Path(out), config, results, time.perf_counter() - t0, emotion)
        _write_root_files(tmp, summary)
    return summary


def _summarise(
    root: Path, cfg: SampleConfig, results: list[VideoResult], seconds: float, emotion: EmotionConfig | None = None
) -> SampleSummary:
    per_split = {s: sum(len(r.segments) for r in results if r.split == s) for s in ("train", "val", "test")}
    test_labels = [label for r in results if r.split == "test" for label, _, _ in r.segments]
    ceilings = {
        "pose_only": confusable_ceiling(test_labels, synth.APPEARANCE_PAIRS),
        "rgb_only_8_frames": confusable_ceiling(test_labels, synth.TEMPORAL_PAIRS),
        "fused": 1.0,
    }
    summary = SampleSummary(root, cfg, results, seconds, per_split, ceilings)
    if emotion is not None:
        summary.emotion = emotion
        summary.emotion_ceilings = _emotion_ceilings([r.emotion for r in results if r.split == "test" and r.emotion])
    return summary


def _emotion_ceilings(test: list[EmotionLatent]) -> dict[str, float]:
    """Expected accuracies of the win / lose prediction: over the generating distribution
    (:func:`single_cue_ceiling`) and on this test split (the sign of each strength as the guess)."""
    n = max(1, len(test))
    return {
        "face_only": single_cue_ceiling(),
        "behaviour_only": single_cue_ceiling(),
        "fused": 1.0,
        "face_only_this_test_split": sum((z.z_face > 0) == (z.label == WIN) for z in test) / n,
        "behaviour_only_this_test_split": sum((z.z_beh > 0) == (z.label == WIN) for z in test) / n,
        "fused_this_test_split": 1.0,
    }


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
    readme = _readme(summary)
    if summary.emotion is not None:
        _write_emotion_files(tmp, summary, meta)
        readme += _emotion_readme(summary)
    (tmp / "sample.json").write_text(json.dumps(meta, indent=2) + "\n")
    (tmp / "README.md").write_text(readme)


def _write_emotion_files(tmp: Path, summary: SampleSummary, meta: dict) -> None:
    """The three ``video_id,label`` files and the emotion part of ``sample.json`` (in ``meta``)."""
    for split, name in LABEL_FILES.items():
        rows = [f"{r.video_id},{r.emotion.label}" for r in summary.videos if r.split == split and r.emotion]
        (tmp / name).write_text("\n".join(["video_id,label", *rows]) + "\n")
    for r in summary.videos:
        if r.emotion is not None:
            meta["videos"][r.video_id].update(
                z_face=round(r.emotion.z_face, 6), z_beh=round(r.emotion.z_beh, 6), label=r.emotion.label
            )
    meta["emotion"] = {
        "config": asdict(summary.emotion),
        "labels": {"1": "win (positive)", "0": "lose (negative)"},
        "label_files": dict(LABEL_FILES),
        "model": "z_face, z_beh ~ N(0, 1) independent; label = 1[z_face + z_beh > 0]",
        "ceiling_formula": "single stream: P(sign z_cue = sign(z_face + z_beh)) = 1/2 + arcsin(1/sqrt 2)/pi "
        "= 1/2 + arctan(1)/pi = 0.75; both streams: 1",
        "face_cue": {
            "mouth_corner_lift_head_units_per_unit": synth.MOUTH_GAIN,
            "brow_lift_head_units_per_unit": synth.BROW_GAIN,
            "intensity": "z_face * a(t) + noise, a(t) in [0, 1] (0 = neutral in about 1/4 of the frames)",
        },
        "behaviour_cue": {
            "self_touch_classes": list(synth.SELF_TOUCH_LABELS),
            "calm_classes": list(synth.CALM_LABELS),
            "p_self_touch": f"1 / (1 + exp({synth.TOUCH_SLOPE:g} * z_beh))",
            "gap_scale": f"exp({synth.GAP_SLOPE:g} * z_beh)",
            "movement_energy": f"clip(exp(-{synth.ENERGY_SLOPE:g} * z_beh), 0.3, 3): idle motion, gesture pace, "
            "torso rocking and resting-hand jiggle scale with it",
        },
        "expected_test_ceilings": summary.emotion_ceilings,
    }


def _emotion_readme(s: SampleSummary) -> str:
    e, c = s.emotion, s.emotion_ceilings
    assert e is not None
    splits = ("train", "val", "test")
    wins = {sp: sum(r.emotion.label for r in s.videos if r.split == sp and r.emotion) for sp in splits}
    return f"""
## Emotion preset (win / lose)

{e.train} train / {e.val} validation / {e.test} test videos of {e.seconds:g} s, half of each split won
({wins["train"]} / {wins["val"]} / {wins["test"]}). Labels: `train_label.csv`, `validation_label.csv`,
`test_label.csv` (`video_id,label`, 1 = win, 0 = lose); `sample.json` holds each video's `z_face`,
`z_beh` and label.

Per video two independent strengths `z_face, z_beh ~ N(0, 1)`; `label = 1[z_face + z_beh > 0]`.
- Face (visible in 112x112 aligned face crops and in the xlsx face points 48-67, 17-26): expression
  intensity `z_face * a(t) + noise`, `a(t)` in [0, 1] drifting over about a second (a neutral face
  in about a quarter of the frames), noise smooth (std 0.3) plus per frame (std 0.15). Intensity +1
  lifts the mouth corners by {synth.MOUTH_GAIN:g} head half-widths (about 5 px in a 112x112 crop) and
  the brows by {synth.BROW_GAIN:g} (a smile, brows raised); negative values pull them down (inner brows
  lowered more, a frown).
- Behaviour (whole frames and skeleton): each gesture is self-touching (touch face, rub eyes, touch
  chin, play hair, fold arm, scratch arm, rub hand, play things) with probability
  `1 / (1 + exp({synth.TOUCH_SLOPE:g} z_beh))`, else head up or illustrative; idle gaps scale by
  `exp({synth.GAP_SLOPE:g} z_beh)`; every idle motion (lean, sway, head turns and nods, hand drift), the
  gesture pace, a restless torso rocking and a jiggle of the resting hands scale by the movement energy
  `clip(exp(-{synth.ENERGY_SLOPE:g} z_beh), 0.3, 3)`. Losers fidget, self-touch and move more.

Ceilings (win / lose accuracy): one stream that read its strength perfectly would predict
`1[z > 0]`, right with probability `1/2 + arcsin(corr(z, z_face + z_beh))/pi = 1/2 + arcsin(1/sqrt 2)/pi
= 0.75`; both streams together decide the label exactly (1.0). Measured cues are noisy, so real models
land a little below. On this test split the sign of each strength alone scores face
{c["face_only_this_test_split"]:.3f}, behaviour {c["behaviour_only_this_test_split"]:.3f}; fused
{c["fused_this_test_split"]:.3f}.
"""


def _readme(s: SampleSummary) -> str:
    names = DEFAULT_LABEL_MAP.names
    rows = "\n".join(f"| {c} | {names[c]} | {synth.CLASS_MOTIONS[c]} |" for c in synth.SAMPLE_LABELS)
    pairs = lambda ps: ", ".join(f"{names[a]} / {names[b]}" for a, b in ps)  # noqa: E731
    c = s.config
    per_video = f"{c.gestures} gestures each" if s.emotion is None else "gestures at a rate set by z_beh"
    return f"""# mgcli synthetic sample (seed {c.seed})

Generated by `mg sample-data` (mgcli {__version__}): {c.videos} interview videos of
{c.height}x{c.width} pixels at {c.fps:g} fps, {per_video}, in the layout of the MiGA
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
