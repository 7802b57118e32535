"""``mg submit``: a challenge submission from test scores, validated against the release's clip table.

Formats (by name):

- ``kaggle2025`` (MiGA 2025, Track 1 on Kaggle): ``prediction.csv`` with the header ``Id,Target``
  and rows ``0054_0,25`` (clip id, 0-based class), zipped as the output (``prediction.zip``);
- ``codalab2023`` (MiGA 2023 on Codalab): ``Submission.csv`` without a header, rows ``id,pred``
  (clip id, 0-based class), zipped as the output (``Submission.zip``).

The prediction of a clip is the arg-max of its scores. Before anything is written, the scores are
checked against the test clips of the release (or of any artifact's clip table): every test clip
exactly once, no other clip, well-formed ids, classes in range. All problems are listed at once.
The zip is byte-reproducible (fixed timestamps) and written atomically.

Emotion (``--task emotion``, MiGA 2025 Track 3, :func:`write_emotion_submission`): the scores CSV
is the ordinary one (``clip_id,label,0,1``) with one row per video, ``clip_id`` holding the 4-digit
video id and the columns ``0`` (lose) and ``1`` (win). The prediction is win (1) when
``p(win) >= p(lose)`` (for probabilities: ``p(win) >= 0.5``), else lose (0). The submission has
one row per test video of the release (or of ``--protocol``), ``0009,1``, under the header
``video_id,label`` (format ``kaggle2025``: ``prediction.csv`` zipped). The official Track 3
column names are not public: this header is our best reading of a public participant's code, and
``--columns A,B`` (or ``--columns none`` for no header) replaces it; ``--columns`` applies to the
micro-gesture formats too, whose default output is unchanged. The scores must cover every test
video exactly once, no other video, with exactly the two classes 0 and 1.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mgcli.errors import MgError
from mgcli.io.atomic import atomic_output
from mgcli.io.scores import read_scores

CLIP_ID = re.compile(r"^\d{4}_\d+$")
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Format:
    member: str  # the CSV inside the zip
    header: str | None  # first line, or None


FORMATS = {
    "kaggle2025": Format("prediction.csv", "Id,Target"),
    "codalab2023": Format("Submission.csv", None),
}
# Track 3 (emotion): the column names are our reading, not published by the organisers.
EMOTION_FORMATS = {
    "kaggle2025": Format("prediction.csv", "video_id,label"),
}
TASKS = ("gesture", "emotion", "online")
# Track 2 (online recognition), MiGA 2023 on Codalab: one {vid}_prediction.csv per test video.
ONLINE_FORMATS = ("online2023",)
VIDEO_ID = re.compile(r"^\d{4}$")
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]*$")


def parse_columns(text: str) -> str | None:
    """``--columns``: two comma-separated column names as the header line, or ``none`` (no header)."""
    if text.strip().lower() == "none":
        return None
    names = [n.strip() for n in text.split(",")]
    if len(names) != 2 or not all(COLUMN_NAME.match(n) for n in names):
        raise MgError(f"--columns must be two column names like video_id,label (or none), got {text!r}")
    return ",".join(names)


def split_clip_ids(source: str | Path, split: str = "test") -> list[str]:
    """The ``split`` clip ids of a release folder or of an artifact's clip table (``*.h5``)."""
    source = Path(source)
    if source.is_dir():
        from mgcli.dataset.release import Release

        table = Release(source).clips(check_frames=False)
    elif source.suffix == ".h5" and source.is_file():
        import h5py

        from mgcli.io.h5 import read_table

        try:
            with h5py.File(source, "r") as f:
                if "clips" not in f:
                    raise MgError("no clip table in this file", source)
                table = read_table(f["clips"])
        except (OSError, KeyError, ValueError) as e:
            raise MgError(
                f"not a readable artifact with a clip table ({' '.join(str(e).split())[:120]})", source
            ) from None
    else:
        raise MgError("--release must be a release folder or an artifact (.h5) with a clip table", source)
    ids = table.loc[table["split"].astype(str) == split, "clip_id"].astype(str).tolist()
    if not ids:
        raise MgError(f"no {split} clips in the clip table", source)
    return ids


def predictions(scores_path: str | Path, expected: list[str], num_classes: int = 32) -> pd.DataFrame:
    """``clip_id, pred`` in the clip table's order, or an :class:`MgError` listing every problem."""
    s = read_scores(scores_path)
    problems = []
    bad_ids = [c for c in s.clip_ids if not CLIP_ID.match(c)]
    if bad_ids:
        problems.append(f"{len(bad_ids)} malformed clip ids (expected VVVV_K), e.g. {bad_ids[0]!r}")
    have, want = set(s.clip_ids), set(expected)
    missing = [c for c in expected if c not in have]
    extra = [c for c in s.clip_ids if c not in want]
    if missing:
        problems.append(f"{len(missing)} test clips missing, e.g. {', '.join(missing[:3])}")
    if extra:
        problems.append(f"{len(extra)} clips that are not test clips, e.g. {', '.join(extra[:3])}")
    pred = np.asarray(s.classes)[s.probs.argmax(1)]
    out_of_range = [(c, int(p)) for c, p in zip(s.clip_ids, pred, strict=True) if not 0 <= p < num_classes]
    if out_of_range:
        c, p = out_of_range[0]
        problems.append(f"{len(out_of_range)} predictions outside classes 0-{num_classes - 1}, e.g. {c} -> {p}")
    if problems:
        raise MgError("refusing to write a submission: " + "; ".join(problems), scores_path)
    by_id = dict(zip(s.clip_ids, pred.tolist(), strict=True))
    return pd.DataFrame({"clip_id": expected, "pred": [int(by_id[c]) for c in expected]})


def render_csv(table: pd.DataFrame, fmt: Format) -> bytes:
    lines = [fmt.header] if fmt.header else []
    lines += [f"{c},{p}" for c, p in zip(table["clip_id"], table["pred"], strict=True)]
    return ("\n".join(lines) + "\n").encode()


def write_zip(out: str | Path, member: str | dict[str, bytes], data: bytes = b"", overwrite: bool = False) -> Path:
    """A zip holding ``data`` as ``member`` (or every ``{member: data}`` of a dict, in its order),
    byte-reproducible (fixed timestamp), written atomically."""
    members = member if isinstance(member, dict) else {member: data}
    with atomic_output(out, overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, body in members.items():
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, body)
    return Path(out)


def write_submission(
    scores_path: str | Path,
    release: str | Path,
    fmt: str,
    out: str | Path,
    overwrite: bool = False,
    num_classes: int = 32,
    columns: str | None = None,
) -> tuple[Path, int]:
    """Validate the scores against the test clips of ``release`` (a release folder or an artifact
    carrying its clip table) and write the zip; returns its path and the number of clips.
    ``columns`` (see :func:`parse_columns`) replaces the format's header."""
    if fmt not in FORMATS:
        raise MgError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    spec = FORMATS[fmt] if columns is None else replace(FORMATS[fmt], header=parse_columns(columns))
    table = predictions(scores_path, split_clip_ids(release), num_classes)
    data = render_csv(table, spec)
    return write_zip(out, spec.member, data, overwrite=overwrite), len(table)


# --------------------------------------------------------------------------- emotion (Track 3)


def emotion_test_ids(release: str | Path | None = None, protocol: str | None = None) -> list[str]:
    """The test video ids: those of the release folder (its test split, or the protocol's test
    videos it has), or of ``protocol`` alone when no release is given."""
    from mgcli.dataset.emotion import EMOTION_PROTOCOLS, emotion_splits

    if release is None:
        if protocol is None:
            raise MgError("--task emotion needs --release (a release folder) or --protocol")
        if protocol not in EMOTION_PROTOCOLS:
            raise MgError(f"unknown emotion protocol {protocol!r} (known: {', '.join(EMOTION_PROTOCOLS)})")
        return list(EMOTION_PROTOCOLS[protocol]["test"])
    release = Path(release)
    if not release.is_dir():
        raise MgError("--release must be a release folder for --task emotion", release)
    from mgcli.dataset.release import Release

    splits, _ = emotion_splits(Release(release), protocol)
    ids = sorted(v for v, s in splits.items() if s == "test")
    if not ids:
        raise MgError("no test videos in the release" + (f" for protocol {protocol}" if protocol else ""), release)
    return ids


def emotion_predictions(scores_path: str | Path, expected: list[str]) -> pd.DataFrame:
    """``video_id, label`` (1 win, 0 lose) in ``expected``'s order, or an :class:`MgError` listing
    every problem (malformed ids, missing or extra videos, classes other than 0 and 1)."""
    s = read_scores(scores_path)
    problems = []
    bad_ids = [c for c in s.clip_ids if not VIDEO_ID.match(c)]
    if bad_ids:
        problems.append(f"{len(bad_ids)} malformed video ids (expected 4-digit VVVV), e.g. {bad_ids[0]!r}")
    have, want = set(s.clip_ids), set(expected)
    missing = [v for v in expected if v not in have]
    extra = [v for v in s.clip_ids if v not in want and VIDEO_ID.match(v)]
    if missing:
        problems.append(f"{len(missing)} test videos missing, e.g. {', '.join(missing[:3])}")
    if extra:
        problems.append(f"{len(extra)} videos that are not test videos of the release, e.g. {', '.join(extra[:3])}")
    if sorted(s.classes) != [0, 1]:
        problems.append(f"expected 2 classes (columns 0 = lose, 1 = win), got {s.num_classes}")
    if problems:
        raise MgError("refusing to write a submission: " + "; ".join(problems), scores_path)
    win = s.probs[:, s.classes.index(1)] >= s.probs[:, s.classes.index(0)]
    by_id = dict(zip(s.clip_ids, win.astype(int).tolist(), strict=True))
    return pd.DataFrame({"video_id": expected, "label": [by_id[v] for v in expected]})


def write_emotion_submission(
    scores_path: str | Path,
    out: str | Path,
    release: str | Path | None = None,
    fmt: str = "kaggle2025",
    columns: str | None = None,
    protocol: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, pd.DataFrame]:
    """Validate per-video scores against the test videos (:func:`emotion_test_ids`) and write the
    Track 3 zip; returns its path and the ``video_id, label`` table written."""
    if fmt not in EMOTION_FORMATS:
        raise MgError(f"--format must be one of {', '.join(EMOTION_FORMATS)} for --task emotion, got {fmt!r}")
    spec = EMOTION_FORMATS[fmt] if columns is None else replace(EMOTION_FORMATS[fmt], header=parse_columns(columns))
    table = emotion_predictions(scores_path, emotion_test_ids(release, protocol))
    lines = [spec.header] if spec.header else []
    lines += [f"{v},{label}" for v, label in zip(table["video_id"], table["label"], strict=True)]
    data = ("\n".join(lines) + "\n").encode()
    return write_zip(out, spec.member, data, overwrite=overwrite), table


# --------------------------------------------------------------------------- online (Track 2)


def write_online_submission(
    detections_path: str | Path, release: str | Path, out: str | Path, fmt: str = "online2023", overwrite: bool = False
) -> tuple[Path, int, int]:
    """The Track 2 zip of a detections CSV (:mod:`mgcli.io.detections`): one
    ``{vid}_prediction.csv`` per test video of the release folder, rows
    ``GestureID,StartFrame,EndFrame`` (raw challenge class ids, by start frame), no header, an
    empty file for a video without detections. Refuses detections on videos that are not test
    videos. Returns the zip, the number of videos and of segments."""
    from mgcli.dataset.release import Release
    from mgcli.io.detections import read_detections

    if fmt not in ONLINE_FORMATS:
        raise MgError(f"--format must be one of {', '.join(ONLINE_FORMATS)} for --task online, got {fmt!r}")
    release = Path(release)
    if not release.is_dir():
        raise MgError("--release must be a release folder for --task online", release)
    rel = Release(release)
    test = sorted(set(rel.clips(check_frames=False).query("split == 'test'")["video_id"]))
    if not test:
        raise MgError("no test videos in the release", release)
    det = read_detections(detections_path, rel.label_map.num_classes).table
    extra = sorted(set(det["video_id"]) - set(test))
    if extra:
        raise MgError(
            f"refusing to write a submission: {len(extra)} videos that are not test videos of the release, "
            f"e.g. {', '.join(extra[:3])}",
            detections_path,
        )
    members = {}
    for vid in test:
        mine = det[det["video_id"] == vid].sort_values(["start", "end"], kind="stable")
        rows = [
            f"{rel.label_map.to_raw(int(c))},{s},{e}"
            for c, s, e in zip(mine["label"], mine["start"], mine["end"], strict=True)
        ]
        members[f"{vid}_prediction.csv"] = ("".join(r + "\n" for r in rows)).encode()
    return write_zip(out, members, overwrite=overwrite), len(test), len(det)
