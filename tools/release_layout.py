"""Writing a labelled skeleton set as a MiGA-style release (shared by the converters in ``tools/``).

One sequence is one video holding one clip (all its frames)::

    ROOT/imigue_skeleton_{train,validate,test}/{vid}/{vid}_openpose.xlsx, {vid}_label.csv
    ROOT/label_map.csv     raw,label,name (mg extract-pose picks it up by itself)
    ROOT/test_labels.csv   clip_id,label (the true test labels)
    ROOT/dataset.json      where the set came from, its classes and clips per split

The release is written under ``ROOT.tmp`` and renamed into place, replacing ``ROOT`` whole.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgcli.dataset.formats import write_label_csv, write_openpose_xlsx

FOLDERS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}


def write_release(
    root: Path,
    sequences: Iterable[tuple[str, int, np.ndarray]],
    classes: Sequence[str],
    meta: dict[str, Any],
) -> dict[str, int]:
    """Write ``(split, label, keypoints [T, 137, 3])`` sequences (OpenPose-137 pixels and
    confidences; label indexes ``classes``) as a release under ``root``; returns clips per split."""
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = dict.fromkeys(FOLDERS, 0)
    test_rows = []
    for vid, (split, label, kp) in enumerate(sequences, start=1):
        v = f"{vid:04d}"
        folder = tmp / FOLDERS[split] / v
        folder.mkdir(parents=True)
        write_openpose_xlsx(folder / f"{v}_openpose.xlsx", kp)
        write_label_csv(folder / f"{v}_label.csv", [(label + 1, 0, len(kp) - 1)])
        counts[split] += 1
        if split == "test":
            test_rows.append(f"{v}_0,{label}")
    names = "".join(f"{i + 1},{i},{n}\n" for i, n in enumerate(classes))
    (tmp / "label_map.csv").write_text("raw,label,name\n" + names)
    (tmp / "test_labels.csv").write_text("clip_id,label\n" + "\n".join(test_rows) + "\n")
    (tmp / "dataset.json").write_text(json.dumps({**meta, "classes": list(classes), "clips": counts}, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return counts
