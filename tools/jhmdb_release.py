"""Convert the JHMDB ground-truth 2D joints shipped with DD-Net into a MiGA-style release.

J-HMDB (Jhuang, Gall, Zuffi, Schmid, Black: "Towards understanding action recognition", ICCV 2013,
http://jhmdb.is.tue.mpg.de) annotates 928 clips of HMDB51 (real people in movies and web videos)
frame by frame with a 2D puppet: 15 joints per frame, 21 action classes, three official
train/test splits. DD-Net (Yang, Sakti, Wu, Nakamura: "Make Skeleton-based Action Recognition Model
Smaller, Faster and Better", ACM MM Asia 2019; https://github.com/fandulu/DD-Net, code under the MIT
license) ships those joints as pickles ``data/JHMDB/GT_{train,test}_{1,2,3}.pkl``: a dict
``{"pose": [T x 15 x 2 arrays], "label": [class names]}`` per split and part. The joints are the
annotation's ``pos_world`` (normalised puppet coordinates, about 0.9 units from neck to ankles, y
pointing down), not pixels. Get them with ``fetch github:fandulu/DD-Net`` (or ``git clone``), then
``git show HEAD:data/JHMDB/GT_train_1.pkl > GT_train_1.pkl`` (and ``GT_test_1.pkl``). HMDB51's
videos are CC BY 4.0 (Kuehne et al., ICCV 2011); J-HMDB's annotations are published for research
by its authors: cite both papers (and DD-Net for the pickles).

The pickles hold only 14 of the 21 classes (catch, clap, golf, jump, pick, pour, pullup, push,
run, sit, stand, throw, walk, wave: 609 clips in split 1; the seven classes whose names contain an
underscore, brush_hair ... swing_baseball, are missing from DD-Net's preprocessing) and no video
names. Per class, the clips of each part match the official split-1 lists exactly (433 train,
176 test). Clips have 15 to 40 frames (35 on average).

The release written here is what ``mg extract-pose`` reads::

    ROOT/imigue_skeleton_{train,validate,test}/{vid}/{vid}_openpose.xlsx, {vid}_label.csv
    ROOT/label_map.csv     raw,label,name (14 classes; mg picks it up by itself)
    ROOT/test_labels.csv   clip_id,label (the true test labels)

One clip is one video holding one clip (all its frames). The 15 JHMDB joints go onto their
BODY_25 places (neck, shoulders, elbows, wrists, hips, knees, ankles; JHMDB's "face" point onto
the nose) with confidence 1; JHMDB's "belly" has no BODY_25 place and is dropped; every other
point (eyes, ears, mid-hip, feet, face, hands) stays empty with confidence 0. Coordinates become
pixels of a 1280 x 720 frame by one fixed map for all clips: ``x_px = 640 + 200 x``,
``y_px = 360 + 200 y`` (a standing person is about 180 px tall). The split is the official one
(``--split``, default 1): its test part is the test set, and a stratified ~15 % of its train part
(shuffled per class with ``--seed``, default 0) is the validation set.

    python tools/jhmdb_release.py DIR real/jhmdb_release      (DIR holds GT_train_1.pkl, GT_test_1.pkl)
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import release_layout  # tools/: the release writer the converters share

from mgcli.dataset.formats import OPENPOSE_POINTS

JHMDB_CLASSES = (
    "brush_hair", "catch", "clap", "climb_stairs", "golf", "jump", "kick_ball", "pick", "pour", "pullup", "push",
    "run", "shoot_ball", "shoot_bow", "shoot_gun", "sit", "stand", "swing_baseball", "throw", "walk", "wave",
)  # fmt: skip
# JHMDB joint order -> BODY_25 index (None: no BODY_25 place).
JOINTS = (
    ("neck", 1),
    ("belly", None),
    ("face", 0),  # nose
    ("right_shoulder", 2),
    ("left_shoulder", 5),
    ("right_hip", 9),
    ("left_hip", 12),
    ("right_elbow", 3),
    ("left_elbow", 6),
    ("right_knee", 10),
    ("left_knee", 13),
    ("right_wrist", 4),
    ("left_wrist", 7),
    ("right_ankle", 11),
    ("left_ankle", 14),
)
VAL_FRACTION = 0.15
FRAME = (1280, 720)  # width, height of the pixel frame the coordinates are mapped into
SCALE = 200.0  # pixels per unit of JHMDB's pos_world


class _NumpyOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else (no code from the file runs)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def read_part(path: Path) -> list[tuple[str, np.ndarray]]:
    """``[(class, T x 15 x 2 array)]`` from one ``GT_{train,test}_{k}.pkl``."""
    try:
        with path.open("rb") as f:
            data = _NumpyOnly(f).load()
        poses, labels = data["pose"], data["label"]
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, EOFError) as e:
        sys.exit(f"error: {path}: not a JHMDB pickle of DD-Net ({e})")
    if len(poses) != len(labels):
        sys.exit(f"error: {path}: {len(poses)} poses but {len(labels)} labels")
    out = []
    for pose, label in zip(poses, labels, strict=True):
        pose = np.asarray(pose, dtype=np.float64)
        if label not in JHMDB_CLASSES:
            sys.exit(f"error: {path}: unknown class {label!r}")
        if pose.ndim != 3 or pose.shape[1:] != (len(JOINTS), 2) or len(pose) == 0:
            sys.exit(f"error: {path}: class {label}: expected T x 15 x 2 joints, got {pose.shape}")
        out.append((str(label), pose))
    return out


def read_jhmdb(folder: Path, split: int = 1) -> dict[str, list[tuple[str, np.ndarray]]]:
    """``{"train": [...], "test": [...]}`` of the official split ``split`` (1, 2 or 3)."""
    parts = {}
    for part in ("train", "test"):
        path = folder / f"GT_{part}_{split}.pkl"
        if not path.is_file():
            sys.exit(f"error: {path}: file not found (data/JHMDB/GT_{part}_{split}.pkl of fandulu/DD-Net)")
        parts[part] = read_part(path)
    return parts


def to_openpose(pose: np.ndarray) -> np.ndarray:
    """``[T, 137, 3]`` release keypoints (pixels, confidence) from ``[T, 15, 2]`` JHMDB joints."""
    kp = np.zeros((len(pose), OPENPOSE_POINTS, 3))
    origin = np.array([FRAME[0] / 2, FRAME[1] / 2])
    for j, (_, target) in enumerate(JOINTS):
        if target is not None:
            kp[:, target, :2] = origin + SCALE * pose[:, j]
            kp[:, target, 2] = 1.0
    return kp


def val_slice(labels: list[str], rng: np.random.Generator) -> set[int]:
    """Indices of a stratified ~15 % of the train part (at least one clip per class)."""
    chosen: set[int] = set()
    for name in sorted(set(labels)):
        idx = [i for i, lab in enumerate(labels) if lab == name]
        n_val = max(1, round(len(idx) * VAL_FRACTION))
        chosen.update(int(i) for i in rng.permutation(idx)[:n_val])
    return chosen


def write_release(parts: dict[str, list[tuple[str, np.ndarray]]], root: Path, seed: int = 0, split: int = 1) -> dict:
    """Write the release under ``root`` (replaced whole); returns clips per split."""
    classes = sorted({name for clips in parts.values() for name, _ in clips})
    label_of = {name: i for i, name in enumerate(classes)}
    val = val_slice([name for name, _ in parts["train"]], np.random.default_rng(seed))
    sequences = (
        ("test" if part == "test" else "val" if i in val else "train", label_of[name], to_openpose(pose))
        for part in ("train", "test")
        for i, (name, pose) in enumerate(parts[part])
    )
    meta = {
        "source": "JHMDB ground-truth 2D joints (pos_world), pickles of fandulu/DD-Net",
        "official_split": split,
        "seed": seed,
        "pixel_map": {"frame": FRAME, "scale": SCALE},
    }
    return release_layout.write_release(root, sequences, classes, meta)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="folder holding GT_train_K.pkl and GT_test_K.pkl of DD-Net")
    p.add_argument("root", type=Path, help="release folder to write (replaced)")
    p.add_argument("--split", type=int, choices=(1, 2, 3), default=1, help="official JHMDB split")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation slice of the train part")
    a = p.parse_args(argv)
    if not a.folder.is_dir():
        sys.exit(f"error: {a.folder}: folder not found")
    counts = write_release(read_jhmdb(a.folder, a.split), a.root, a.seed, a.split)
    print(f"{a.root}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " clips")


if __name__ == "__main__":
    main()
