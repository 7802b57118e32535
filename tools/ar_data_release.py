"""Convert the AR.data skeleton set of the CRAN package dbcsp into a MiGA-style release.

AR.data (Rodríguez-Moreno, Irigoien, Arenas et al., package ``dbcsp``, GPL >= 2) holds real
people performing six gestures in front of a humanoid robot: come, five (high five), handshake,
hello, ignore, look_at; 272 sequences of 92 frames, each a 50 x 92 matrix of OpenPose BODY_25
coordinates (rows 0-24 are x, rows 25-49 are y, in pixels; no confidences; gaps were already
interpolated by the authors). The file is ``data/AR.data.rda`` of the package, e.g. from
https://github.com/cran/dbcsp (``git show HEAD:data/AR.data.rda > AR.data.rda``) or CRAN.

The release written here is what ``mg extract-pose`` reads::

    ROOT/imigue_skeleton_{train,validate,test}/{vid}/{vid}_openpose.xlsx, {vid}_label.csv
    ROOT/label_map.csv     raw,label,name (6 classes; mg picks it up by itself)
    ROOT/test_labels.csv   clip_id,label (the true test labels)

One sequence is one video holding one clip (frames 0..91). Points get confidence 1 (the set has
none and no point is missing). The split is fixed and stratified by class: shuffle each class
with ``--seed`` (default 0) and cut it 60 / 15 / 25 % into train / val / test.

    python tools/ar_data_release.py AR.data.rda real/ar_release
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import release_layout  # tools/: the release writer the converters share

from mgcli.dataset.formats import OPENPOSE_POINTS

CLASSES = ("come", "five", "handshake", "hello", "ignore", "look_at")
FRACTIONS = (0.60, 0.15)  # train, val; the rest is test


def read_ar_data(path: Path) -> dict[str, list[np.ndarray]]:
    """``{class: [92 x 25 x 2 arrays]}`` from ``AR.data.rda``."""
    try:
        import rdata
    except ImportError:
        sys.exit("error: reading .rda files needs the rdata package (pip install rdata)")
    try:
        data = rdata.read_rda(str(path))["AR.data"]
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"error: {path}: not the AR.data file of dbcsp ({e})")
    out: dict[str, list[np.ndarray]] = {}
    for name in CLASSES:
        seqs = []
        for m in data[name]:
            m = np.asarray(m, dtype=np.float64)
            if m.ndim != 2 or m.shape[0] != 50:
                sys.exit(f"error: {path}: class {name}: expected 50 x T matrices, got {m.shape}")
            seqs.append(np.stack([m[:25].T, m[25:].T], axis=-1))  # [T, 25, 2]
        out[name] = seqs
    return out


def split_of(n: int, rng: np.random.Generator) -> list[str]:
    order = rng.permutation(n)
    n_train, n_val = round(n * FRACTIONS[0]), round(n * FRACTIONS[1])
    split = ["test"] * n
    for rank, i in enumerate(order):
        split[i] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return split


def write_release(data: dict[str, list[np.ndarray]], root: Path, seed: int = 0) -> dict[str, int]:
    """Write the release under ``root`` (replaced whole); returns clips per split."""
    rng = np.random.default_rng(seed)

    def sequences():  # noqa: ANN202 - a generator
        for label, name in enumerate(CLASSES):
            for seq, split in zip(data[name], split_of(len(data[name]), rng), strict=True):
                kp = np.zeros((len(seq), OPENPOSE_POINTS, 3))
                kp[:, :25, :2] = seq
                kp[:, :25, 2] = 1.0
                yield split, label, kp

    meta = {"source": "dbcsp AR.data (CRAN, GPL >= 2)", "seed": seed}
    return release_layout.write_release(root, sequences(), CLASSES, meta)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rda", type=Path, help="AR.data.rda of the dbcsp package")
    p.add_argument("root", type=Path, help="release folder to write (replaced)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    a = p.parse_args(argv)
    if not a.rda.is_file():
        sys.exit(f"error: {a.rda}: file not found")
    counts = write_release(read_ar_data(a.rda), a.root, a.seed)
    print(f"{a.root}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " clips")


if __name__ == "__main__":
    main()
