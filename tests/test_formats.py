from pathlib import Path

import numpy as np
import openpyxl
import pytest

from conftest import openpose_rows, write_light_hand, write_xlsx_openpyxl
from mgcli.dataset.formats import (
    LIGHT_HAND_FROM_OPENPOSE,
    dense_light_hand,
    read_label_csv,
    read_light_hand_csv,
    read_openpose_xlsx,
    write_label_csv,
    write_light_hand_csv,
    write_openpose_xlsx,
)
from mgcli.errors import DataError


def test_label_csv_rows_and_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "0001_label.csv"
    p.write_text("4,0,9\r\n99,12,20\r\n\r\n")
    assert read_label_csv(p) == [(4, 0, 9), (99, 12, 20)]
    write_label_csv(tmp_path / "b.csv", [(4, 0, 9), (99, 12, 20)])
    assert (tmp_path / "b.csv").read_text() == "4,0,9\n99,12,20\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4,10,3\n", "row 1: end frame 3 is before start frame 10"),
        ("4,0,9\n4,5\n", "row 2: expected 3 fields"),
        ("4,zero,9\n", "row 1: class, start and end must be integers"),
        ("4,-2,9\n", "row 1: start frame -2 is negative"),
        ("", "label file has no rows"),
    ],
)
def test_label_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "0001_label.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message) as e:
        read_label_csv(p)
    assert str(p) in str(e.value)


def test_openpose_xlsx_from_a_spreadsheet_program(tmp_path: Path) -> None:
    kp = openpose_rows(6)
    p = tmp_path / "0001_openpose.xlsx"
    write_xlsx_openpyxl(p, kp, blank_row=2)
    out = read_openpose_xlsx(p)
    assert out.shape == (6, 137, 3) and out.dtype == np.float32
    expected = kp.astype(np.float32).copy()
    expected[2] = 0.0  # a frame with no detection reads as zeros
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_our_xlsx_reads_back_in_openpyxl(tmp_path: Path) -> None:
    kp = openpose_rows(5, seed=3)
    p = tmp_path / "x.xlsx"
    write_openpose_xlsx(p, kp)
    ws = openpyxl.load_workbook(p, read_only=True).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 5 and len(rows[0]) == 411
    np.testing.assert_allclose(np.asarray(rows, float).reshape(5, 137, 3), kp, atol=5e-4)
    np.testing.assert_allclose(read_openpose_xlsx(p), kp, atol=5e-4)


def test_xlsx_wrong_column_count(tmp_path: Path) -> None:
    p = tmp_path / "0001_openpose.xlsx"
    wb = openpyxl.Workbook()
    for _ in range(3):
        wb.active.append(list(range(410)))
    wb.save(p)
    with pytest.raises(DataError, match="expected 411 columns .* got 410"):
        read_openpose_xlsx(p)


def test_xlsx_not_a_spreadsheet(tmp_path: Path) -> None:
    p = tmp_path / "0001_openpose.xlsx"
    p.write_text("hello")
    with pytest.raises(DataError, match="not a readable xlsx"):
        read_openpose_xlsx(p)


@pytest.mark.parametrize("header", [True, False])
def test_light_hand_with_and_without_header(tmp_path: Path, header: bool) -> None:
    kp = openpose_rows(7)[:, list(LIGHT_HAND_FROM_OPENPOSE)]
    p = tmp_path / "0001_light_hand.csv"
    write_light_hand(p, kp, header=header, frames=[0, 1, 2, 4, 5, 8, 9])
    frames, out = read_light_hand_csv(p)
    assert frames.tolist() == [0, 1, 2, 4, 5, 8, 9]
    np.testing.assert_allclose(out, kp, atol=1e-3)
    dense = dense_light_hand(frames, out, 10)
    assert dense.shape == (10, 35, 3) and not dense[3].any() and np.allclose(dense[4], out[3])


def test_light_hand_writer_round_trip(tmp_path: Path) -> None:
    kp = openpose_rows(4)
    write_light_hand_csv(tmp_path / "a.csv", kp, header=True)
    write_light_hand_csv(tmp_path / "b.csv", kp, header=False)
    for name in ("a.csv", "b.csv"):
        _, out = read_light_hand_csv(tmp_path / name)
        np.testing.assert_allclose(out, kp[:, list(LIGHT_HAND_FROM_OPENPOSE)], atol=1e-3)


def test_light_hand_wrong_columns(tmp_path: Path) -> None:
    p = tmp_path / "0001_light_hand.csv"
    p.write_text("0," + ",".join(["1.0"] * 104) + "\n")
    with pytest.raises(DataError, match="expected 106 columns .* got 105"):
        read_light_hand_csv(p)


def test_light_hand_frames_must_increase(tmp_path: Path) -> None:
    kp = openpose_rows(3)[:, :35]
    p = tmp_path / "0001_light_hand.csv"
    write_light_hand(p, kp, header=False, frames=[0, 2, 1])
    with pytest.raises(DataError, match="strictly increasing"):
        read_light_hand_csv(p)
