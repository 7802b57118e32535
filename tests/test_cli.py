import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from mgcli import __version__
from mgcli.cli import app
from mgcli.io import write_scores

runner = CliRunner()


def test_version_and_help() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    assert "sample-data" in r.output and "inspect" in r.output
    # only commands that work end to end are registered
    commands = {"sample-data", "inspect", "extract-pose", "build-heatmaps", "train-branch", "train-fused", "evaluate",
                "ensemble", "report", "submit", "models"}
    assert set(typer.main.get_command(app).commands) == commands
    for cmd in sorted(commands):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output


def test_inspect_release(mini_release: Path) -> None:
    r = runner.invoke(app, ["inspect", str(mini_release)])
    assert r.exit_code == 0, r.output
    assert "touch face" in r.output and "illustrative" in r.output
    assert "0202: no 0202.mp4" in r.output  # missing files are listed


def test_inspect_label_file_and_scores(mini_release: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", str(mini_release / "imigue_skeleton_train/0101/0101_label.csv")])
    assert r.exit_code == 0 and "3 clips" in r.output and "play things" in r.output
    p = tmp_path / "scores.csv"
    write_scores(p, ["a", "b"], [0, 1], np.array([[0.9, 0.1], [0.6, 0.4]]))
    r = runner.invoke(app, ["inspect", str(p)])
    assert r.exit_code == 0 and "50.00" in r.output  # top-1 of one right out of two


def test_bad_input_is_one_line_exit_2(mini_release: Path) -> None:
    bad = mini_release / "imigue_skeleton_train/0101/0101_label.csv"
    bad.write_text("4,9,3\n")
    r = runner.invoke(app, ["inspect", str(mini_release)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "0101_label.csv: row 1: end frame 3 is before start frame 9" in lines[0]
    assert "Traceback" not in r.output + r.stderr
    r = runner.invoke(app, ["--debug", "inspect", str(mini_release)])
    assert r.exit_code == 2 and "Traceback" in r.stderr


def test_subprocess_entry_point(mini_release: Path, tmp_path: Path) -> None:
    mg = Path(sys.executable).parent / "mg"
    env = {**os.environ, "COLUMNS": "200"}
    ok = subprocess.run([str(mg), "inspect", str(mini_release)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "MiGA release" in ok.stdout
    (tmp_path / "x.h5").write_text("junk")
    bad = subprocess.run([str(mg), "inspect", str(tmp_path / "x.h5")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"error: {tmp_path / 'x.h5'}: not an mgcli artifact (expected a folder, .h5, .csv or .pt)"
    mod = subprocess.run([sys.executable, "-m", "mgcli", "--version"], capture_output=True, text=True)
    assert mod.returncode == 0 and __version__ in mod.stdout
