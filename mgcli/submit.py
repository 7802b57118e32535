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
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
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


def write_submission(
    scores_path: str | Path,
    release: str | Path,
    fmt: str,
    out: str | Path,
    overwrite: bool = False,
    num_classes: int = 32,
) -> tuple[Path, int]:
    """Validate the scores against the test clips of ``release`` (a release folder or an artifact
    carrying its clip table) and write the zip; returns its path and the number of clips."""
    if fmt not in FORMATS:
        raise MgError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    spec = FORMATS[fmt]
    table = predictions(scores_path, split_clip_ids(release), num_classes)
    data = render_csv(table, spec)
    with atomic_output(out, overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo(spec.member, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return Path(out), len(table)
