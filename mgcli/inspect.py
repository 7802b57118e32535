"""``mg inspect``: a rich summary of any artifact or of a release root."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mgcli.dataset.formats import read_label_csv
from mgcli.dataset.labels import DEFAULT_LABEL_MAP, LabelMap
from mgcli.dataset.release import SPLITS, Release
from mgcli.errors import DataError
from mgcli.io.frames import FramesFile
from mgcli.io.h5 import schema_of
from mgcli.io.heatmaps import HeatmapsFile
from mgcli.io.poses import PosesFile
from mgcli.io.scores import read_scores


def describe(path: str | Path, label_map: LabelMap = DEFAULT_LABEL_MAP) -> RenderableType:
    """Summary of a release root, ``poses.h5``, ``frames.h5``, ``heatmaps*.h5``, ``faces.h5``,
    ``embeddings.h5``, a scores CSV, a ``{vid}_label.csv`` or a ``model.pt``."""
    path = Path(path)
    if not path.exists():
        raise DataError("not found", path)
    if path.is_dir():
        return describe_release(Release(path, label_map))
    if path.suffix == ".csv":
        if path.name.endswith("_label.csv"):
            return describe_label_file(path, label_map)
        if path.name.endswith("_light_hand.csv"):
            return describe_skeleton_file(path)
        return describe_scores(path)
    if path.suffix in (".pt", ".pth"):
        return describe_checkpoint(path)
    schema = schema_of(path)
    if schema is None:
        raise DataError("not an mgcli artifact (expected a folder, .h5, .csv or .pt)", path)
    kind = schema.split("/")[0].removeprefix("mgcli.")
    readers = {
        "poses": describe_poses,
        "frames": describe_frames,
        "heatmaps": describe_heatmaps,
        "embeddings": describe_embeddings,
        "faces": describe_faces,
    }
    if kind not in readers:
        raise DataError(f"unknown artifact schema {schema}", path)
    return readers[kind](path)


def _kv(title: str, items: Iterable[tuple[str, object]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left", title_style="bold")
    t.add_column(style="cyan")
    t.add_column()
    for k, v in items:
        t.add_row(k, str(v))
    return t


def _split_class_table(clips: pd.DataFrame, names: list[str] | tuple[str, ...]) -> Table:
    splits = [s for s in SPLITS if (clips["split"] == s).any()]
    t = Table(title="clips per class", title_justify="left", title_style="bold")
    t.add_column("id", justify="right")
    t.add_column("class")
    for s in splits:
        t.add_column(s, justify="right")
    known = clips[clips["label"] >= 0]
    counts = known.groupby(["label", "split"]).size()
    for label in sorted(known["label"].unique()):
        name = names[label] if label < len(names) else "?"
        t.add_row(str(label), name, *(str(counts.get((label, s), 0)) for s in splits))
    unknown = clips[clips["label"] < 0]
    if len(unknown):
        t.add_row("-", "[dim]unknown (dummy test labels)[/]", *(str((unknown["split"] == s).sum()) for s in splits))
    return t


def _lengths(clips: pd.DataFrame) -> str:
    n = clips["end"] - clips["start"] + 1
    return f"min {n.min()}, median {int(n.median())}, max {n.max()} frames"


def describe_release(release: Release) -> RenderableType:
    clips = release.clips(check_frames=False)
    t = Table(title=f"MiGA release at {release.root}", title_justify="left", title_style="bold")
    for col in ("split", "videos", "clips", "labelled", "mp4", "openpose.xlsx", "light_hand.csv", "frames"):
        t.add_column(col, justify="right" if col != "split" else "left")
    problems: list[str] = []
    for split in SPLITS:
        entries = [e for e in release.videos.values() if e.split == split]
        if not entries:
            continue
        sc = clips[clips["split"] == split]
        frames = 0
        for e in entries:
            if e.video is None:
                problems.append(f"{e.video_id}: no {e.video_id}.mp4")
            else:
                info = release.video_info(e.video_id)
                frames += info.frames
                last = sc.loc[sc["video_id"] == e.video_id, "end"].max()
                if last >= info.frames:
                    problems.append(f"{e.video_id}: a clip ends at frame {last}, the video has {info.frames}")
            if not e.has_skeleton:
                problems.append(f"{e.video_id}: no skeleton file")
        t.add_row(
            split,
            str(len(entries)),
            str(len(sc)),
            str(int((sc["label"] >= 0).sum())),
            str(sum(e.video is not None for e in entries)),
            str(sum(e.openpose_xlsx is not None for e in entries)),
            str(sum(e.light_hand_csv is not None for e in entries)),
            f"{frames:,}",
        )
    parts: list[RenderableType] = [t, Text(f"clip length: {_lengths(clips)}")]
    if release.test_labels_path is not None:
        parts.append(Text(f"test labels from {release.test_labels_path}"))
    parts.append(_split_class_table(clips, release.label_map.names))
    parts += _emotion_parts(release, problems)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        parts.append(Text("missing or inconsistent:\n  " + "\n  ".join(shown), style="yellow"))
    else:
        parts.append(Text("no missing files", style="green"))
    return Group(*parts)


def _emotion_parts(release: Release, problems: list[str]) -> list[RenderableType]:
    """The win / lose / unlabelled videos per split when the release has emotion label files
    (nothing when it has none); a malformed label file goes to ``problems`` instead."""
    from mgcli.dataset.emotion import emotion_counts, emotion_videos, find_emotion_label_files

    files = find_emotion_label_files(release)
    if not files:
        return []
    try:
        table = emotion_videos(release)
    except DataError as e:
        problems.append(f"emotion labels: {e}")
        return []
    t = Table(title="emotion labels (videos)", title_justify="left", title_style="bold")
    for col in ("split", "win", "lose", "unlabelled"):
        t.add_column(col, justify="right" if col != "split" else "left")
    for split, win, lose, unlabelled in emotion_counts(table):
        t.add_row(split, str(win), str(lose), str(unlabelled))
    names = ", ".join(str(p) for paths in files.values() for p in paths)
    return [t, Text(f"emotion labels from {names}")]


def describe_label_file(path: Path, label_map: LabelMap) -> RenderableType:
    rows = read_label_csv(path)
    labels = [label_map.to_label(raw, path, i + 1) for i, (raw, _, _) in enumerate(rows)]
    t = Table(title=f"{path.name}: {len(rows)} clips", title_justify="left", title_style="bold")
    t.add_column("id", justify="right")
    t.add_column("class")
    t.add_column("clips", justify="right")
    for label in sorted(set(labels)):
        t.add_row(str(label), label_map.names[label], str(labels.count(label)))
    return t


def describe_skeleton_file(path: Path) -> RenderableType:
    """A released ``{vid}_light_hand.csv``: frames, their range, and how many points were seen."""
    from mgcli.dataset.formats import read_light_hand_csv

    frames, kp = read_light_hand_csv(path)
    seen = kp[..., 2] > 0
    t = Table(title=f"{path.name}: OpenPose light_hand skeleton (35 points)", title_justify="left", title_style="bold")
    t.add_column("field")
    t.add_column("value")
    t.add_row("rows (frames with a person)", f"{len(frames):,}")
    t.add_row("frame range", f"{int(frames.min())}-{int(frames.max())}" if len(frames) else "-")
    t.add_row("points seen per row", f"{seen.sum(1).mean():.1f} of 35" if len(frames) else "-")
    return t


def _common(clips: pd.DataFrame) -> list[tuple[str, object]]:
    per_split = ", ".join(f"{s} {int((clips['split'] == s).sum())}" for s in SPLITS if (clips["split"] == s).any())
    return [("clips", f"{len(clips)} ({per_split})"), ("clip length", _lengths(clips))]


def describe_poses(path: Path) -> RenderableType:
    with PosesFile(path) as p:
        shapes = {vid: p.video_shape(vid) for vid in p.video_ids}
        persons = sorted({s[0] for s in shapes.values()})
        joints = sorted({s[2] for s in shapes.values()})
        items = [
            ("schema", p.f.attrs["schema"]),
            ("written by", f"mgcli {p.f.attrs.get('mgcli_version', '?')}"),
            ("layout", f"{p.layout} ({', '.join(map(str, joints))} joints)"),
            ("source", p.source),
            ("videos", len(shapes)),
            ("frames", f"{sum(s[1] for s in shapes.values()):,}"),
            ("persons per video", ", ".join(map(str, persons))),
            ("classes", len(p.class_names)),
            *_common(p.clips),
        ]
        return Group(_kv(f"poses: {path}", items), _split_class_table(p.clips, p.class_names))


def describe_frames(path: Path) -> RenderableType:
    with FramesFile(path) as fr:
        ids = fr.clips["clip_id"].tolist()
        total = sum(fr.num_frames(c) for c in ids)
        h, w = fr.read(ids[0], [0]).shape[1:3] if ids else (0, 0)
        items = [
            ("schema", fr.f.attrs["schema"]),
            ("short side", fr.short_side),
            ("JPEG quality", fr.quality),
            ("frame size", f"{h}x{w} (first clip)"),
            ("frames", f"{total:,}"),
            ("size on disk", f"{path.stat().st_size / 2**20:.1f} MiB"),
            *_common(fr.clips),
        ]
        return Group(_kv(f"frames: {path}", items), _split_class_table(fr.clips, fr.class_names))


def describe_heatmaps(path: Path) -> RenderableType:
    with HeatmapsFile(path) as hm:
        ids = hm.clips["clip_id"].tolist()
        items = [
            ("schema", hm.f.attrs["schema"]),
            ("kind", hm.heatmap_kind),
            ("layout", hm.layout),
            ("sigma", hm.sigma),
            ("size", "x".join(map(str, hm.size))),
            ("dtype", hm.dtype),
            ("sampling", hm.sampling),
            ("volume", "x".join(map(str, hm.shape(ids[0]))) + " (C x T x H x W, first clip)" if ids else "-"),
            ("size on disk", f"{path.stat().st_size / 2**20:.1f} MiB"),
            *_common(hm.clips),
        ]
        return Group(_kv(f"heatmaps: {path}", items), _split_class_table(hm.clips, hm.class_names))


def describe_scores(path: Path) -> RenderableType:
    s = read_scores(path)
    items: list[tuple[str, object]] = [("clips", len(s.clip_ids)), ("classes", s.num_classes)]
    known = s.labels >= 0
    items.append(("labelled", int(known.sum())))
    if known.any():
        cls = np.asarray(s.classes)
        order = np.argsort(-s.probs[known], axis=1)
        truth = s.labels[known][:, None]
        top1 = float((cls[order[:, :1]] == truth).any(axis=1).mean())
        top5 = float((cls[order[:, :5]] == truth).any(axis=1).mean())
        items += [("top-1", f"{100 * top1:.2f}"), ("top-5", f"{100 * top5:.2f}")]
    sums = s.probs.sum(axis=1)
    items.append(("row sums", f"{sums.min():.4f} .. {sums.max():.4f}"))
    return _kv(f"scores: {path}", items)


def describe_checkpoint(path: Path) -> RenderableType:
    from mgcli.io.checkpoint import load_checkpoint  # imports torch: only when needed

    ckpt = load_checkpoint(path)
    sd = ckpt["state_dict"]
    params = sum(int(v.numel()) for v in sd.values() if v.is_floating_point())
    cfg = ckpt["config"]
    items = [
        ("schema", ckpt["schema"]),
        ("written by", f"mgcli {ckpt.get('mgcli_version', '?')}"),
        ("model", cfg.get("model", "?") if isinstance(cfg, dict) else "?"),
        ("tensors", f"{len(sd)} ({params:,} floating-point values)"),
        ("classes", len(ckpt["class_names"])),
        (
            "extra keys",
            ", ".join(k for k in ckpt if k not in ("schema", "mgcli_version", "state_dict", "config", "class_names"))
            or "-",
        ),
    ]
    return _kv(f"checkpoint: {path}", items)


def _video_table(videos: pd.DataFrame, title: str) -> Table:
    """Videos per split and their win / lose / unlabelled counts."""
    t = Table(title=title, title_justify="left", title_style="bold")
    for col in ("split", "videos", "win", "lose", "unlabelled"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for split in SPLITS:
        rows = videos[videos["split"] == split]
        if len(rows):
            lab = rows["label"].to_numpy()
            t.add_row(
                split, str(len(rows)), str(int((lab == 1).sum())), str(int((lab == 0).sum())), str(int((lab < 0).sum()))
            )
    return t


def describe_embeddings(path: Path) -> RenderableType:
    from mgcli.io.embeddings import EmbeddingsFile

    with EmbeddingsFile(path) as e:
        steps = [len(e.frames(v)) for v in e.video_ids]
        valid = sum(int(e.valid(v).sum()) for v in e.video_ids)
        items = [
            ("schema", e.f.attrs["schema"]),
            ("written by", f"mgcli {e.f.attrs.get('mgcli_version', '?')}"),
            ("stream", f"{e.stream} ({e.model}, {e.dim}-d)"),
            ("weights", e.weights or "?"),
            ("videos", len(steps)),
            ("steps", f"{sum(steps):,} ({valid:,} valid), {min(steps, default=0)}-{max(steps, default=0)} per video"),
        ]
        return Group(_kv(f"embeddings: {path}", items), _video_table(e.clips, "videos"))


def describe_faces(path: Path) -> RenderableType:
    from mgcli.io.faces import FacesFile

    with FacesFile(path) as ff:
        v = ff.videos
        scores = [ff.scores(vid) for vid in v["video_id"].astype(str)]
        found = sum(int((s > 0).sum()) for s in scores)
        items = [
            ("schema", ff.f.attrs["schema"]),
            ("written by", f"mgcli {ff.f.attrs.get('mgcli_version', '?')}"),
            (
                "crops",
                f"{sum(len(s) for s in scores):,} at {ff.fps:g} fps, {ff.size} x {ff.size} ({found:,} with a face)",
            ),
            ("sources", ", ".join(sorted(set(v["source"].astype(str))))),
            ("videos", len(v)),
        ]
        return Group(_kv(f"faces: {path}", items), _video_table(v, "videos"))
