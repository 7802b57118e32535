"""Class ids, class names and the raw-label map of the MiGA release.

The release's ``{vid}_label.csv`` files carry *raw* classes: 1..32 for micro-gestures and 99 for
non-micro-gesture segments. The challenge code maps ``99 -> 31`` and every other raw class
``r -> r - 1``, which gives 32 classes, ids 0..31, named below (id 31, "illustrative", is where
the non-micro-gesture segments land). :data:`DEFAULT_LABEL_MAP` is that table.

Nothing downstream hard-codes 32: models take the number of classes from the label map recorded
in each artifact. To train with another mapping (say 33 classes with a separate non-MG class, or a
data set of your own with 6 classes), write a CSV ``raw,label[,name]`` and pass it as
``--label-map``, or put it in the release root as ``label_map.csv``: a release that carries its own
label map gets it without the option (:func:`release_label_map`), and its models get that many
classes.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mgcli.errors import DataError

CLASS_NAMES: tuple[str, ...] = (
    "turtle neck",
    "deep breath",
    "touch hat",
    "touch face",
    "touch forehead",
    "cover face",
    "rub eyes",
    "touch other face part",
    "touch ears",
    "bite nails",
    "touch chin",
    "touch neck",
    "play hair",
    "adjust tie",
    "touch chest",
    "scratch back",
    "fold arm",
    "tidy sleeve",
    "put arm back",
    "move torso",
    "sit straight",
    "scratch arm",
    "rub hand",
    "cross finger",
    "minaret hand",
    "play things",
    "withdraw arms",
    "head up",
    "bit lip",
    "arm akimbo",
    "shake shoulder",
    "illustrative",
)

NON_MG_RAW = 99


@dataclass(frozen=True)
class LabelMap:
    """A table from raw release classes to contiguous class ids, with a name per class id."""

    raw_to_label: Mapping[int, int]
    names: tuple[str, ...]
    source: str = field(default="default", compare=False)

    def __post_init__(self) -> None:
        ids = set(self.raw_to_label.values())
        if ids != set(range(len(self.names))):
            missing = sorted(set(range(len(self.names))) - ids)
            extra = sorted(ids - set(range(len(self.names))))
            raise DataError(
                f"label map must cover class ids 0..{len(self.names) - 1} exactly"
                f" (missing {missing}, out of range {extra})",
                self.source if self.source != "default" else None,
            )

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_label(self, raw: int, path: str | Path | None = None, row: int | None = None) -> int:
        try:
            return self.raw_to_label[raw]
        except KeyError:
            where = f"row {row}: " if row is not None else ""
            known = ", ".join(str(r) for r in sorted(self.raw_to_label))
            raise DataError(f"{where}unknown raw class {raw} (known: {known})", path) from None

    def to_raw(self, label: int) -> int:
        """The canonical raw class of a label: the smallest raw class that maps to it."""
        return min(r for r, lab in self.raw_to_label.items() if lab == label)

    @classmethod
    def from_csv(cls, path: str | Path) -> LabelMap:
        """Read ``raw,label[,name]`` rows (a header row is allowed)."""
        path = Path(path)
        if not path.is_file():
            raise DataError("label map file not found", path)
        table: dict[int, int] = {}
        names: dict[int, str] = {}
        with path.open(newline="") as f:
            for i, row in enumerate(csv.reader(f), start=1):
                if not row or not "".join(row).strip():
                    continue
                if i == 1 and not row[0].strip().lstrip("-").isdigit():
                    continue  # header
                if len(row) not in (2, 3):
                    raise DataError(f"row {i}: expected raw,label[,name], got {len(row)} fields", path)
                try:
                    raw, lab = int(row[0]), int(row[1])
                except ValueError:
                    raise DataError(f"row {i}: raw and label must be integers", path) from None
                if raw in table:
                    raise DataError(f"row {i}: raw class {raw} listed twice", path)
                table[raw] = lab
                if len(row) == 3 and row[2].strip():
                    names[lab] = row[2].strip()
        if not table:
            raise DataError("label map is empty", path)
        n = max(table.values()) + 1
        default = {i: CLASS_NAMES[i] if i < len(CLASS_NAMES) else f"class {i}" for i in range(n)}
        return cls(table, tuple(names.get(i, default[i]) for i in range(n)), source=str(path))


DEFAULT_LABEL_MAP = LabelMap({**{raw: raw - 1 for raw in range(1, 33)}, NON_MG_RAW: 31}, CLASS_NAMES)


LABEL_MAP_FILE = "label_map.csv"


def release_label_map(root: str | Path | None, given: str | Path | None = None) -> LabelMap:
    """The label map of a release: ``given`` (``--label-map``) when set, else the release's own
    ``ROOT/label_map.csv`` when it has one, else the iMiGUE table :data:`DEFAULT_LABEL_MAP`."""
    if given is not None:
        return LabelMap.from_csv(given)
    if root is not None and (Path(root) / LABEL_MAP_FILE).is_file():
        return LabelMap.from_csv(Path(root) / LABEL_MAP_FILE)
    return DEFAULT_LABEL_MAP
