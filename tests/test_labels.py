from pathlib import Path

import pytest

from mgcli.dataset.labels import CLASS_NAMES, DEFAULT_LABEL_MAP, LabelMap
from mgcli.errors import DataError


def test_default_map_is_the_challenge_table() -> None:
    lm = DEFAULT_LABEL_MAP
    assert lm.num_classes == 32 == len(CLASS_NAMES)
    assert lm.to_label(1) == 0 and lm.to_label(31) == 30 and lm.to_label(99) == 31
    assert lm.names[31] == "illustrative" and lm.names[0] == "turtle neck" and lm.names[25] == "play things"
    assert lm.to_raw(31) == 32 and lm.to_raw(3) == 4


def test_unknown_raw_class_names_file_and_row() -> None:
    with pytest.raises(DataError, match=r"x\.csv: row 4: unknown raw class 50"):
        DEFAULT_LABEL_MAP.to_label(50, "x.csv", 4)


def test_custom_map_with_a_separate_non_mg_class(tmp_path: Path) -> None:
    p = tmp_path / "map.csv"
    p.write_text("raw,label,name\n" + "".join(f"{r},{r - 1},\n" for r in range(1, 33)) + "99,32,non-micro-gesture\n")
    lm = LabelMap.from_csv(p)
    assert lm.num_classes == 33
    assert lm.to_label(99) == 32 and lm.names[32] == "non-micro-gesture" and lm.names[3] == "touch face"


def test_map_with_a_gap_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "map.csv"
    p.write_text("1,0\n2,2\n")
    with pytest.raises(DataError, match=r"missing \[1\]"):
        LabelMap.from_csv(p)
