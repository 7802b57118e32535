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
    commands = {
        "sample-data",
        "inspect",
        "extract-pose",
        "extract-faces",
        "embed",
        "build-heatmaps",
        "train-branch",
        "train-fused",
        "evaluate",
        "evaluate-online",
        "detect",
        "predict",
        "ensemble",
        "report",
        "submit",
        "models",
    }
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
    assert (
        bad.stderr.strip() == f"error: {tmp_path / 'x.h5'}: not an mgcli artifact (expected a folder, .h5, .csv or .pt)"
    )
    mod = subprocess.run([sys.executable, "-m", "mgcli", "--version"], capture_output=True, text=True)
    assert mod.returncode == 0 and __version__ in mod.stdout


def test_model_aliases_as_overrides() -> None:
    from mgcli.models.aliases import MODEL_ALIASES, model_overrides

    assert model_overrides(None) == []
    assert model_overrides("agcn-joint") == ["model.name=agcn", "data.view.stream=joint"]
    assert model_overrides("agcn-bone") == ["model.name=agcn", "data.view.stream=bone"]
    assert model_overrides("mvit-v2-s") == ["model.name=mvit_v2_s"]
    assert model_overrides("token-fusion") == ["model.name=token_fusion"]
    assert model_overrides("posec3d_slowonly") == ["model.name=posec3d_slowonly"]
    model_overrides("agcn-bone").append("x=1")  # the caller's list, not the table's
    assert MODEL_ALIASES["agcn-bone"] == ["model.name=agcn", "data.view.stream=bone"]
    # train-branch --help names every alias
    r = runner.invoke(app, ["train-branch", "--help"], env={"COLUMNS": "300"})
    assert all(alias in r.output for alias in MODEL_ALIASES)


def test_model_aliases_module_needs_no_torch() -> None:
    """The aliases module itself imports nothing heavy (loaded alone, with torch unimportable)."""
    import mgcli.models.aliases as aliases

    code = (
        "import importlib.abc, importlib.util, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"spec = importlib.util.spec_from_file_location('aliases', {aliases.__file__!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "print(mod.model_overrides('agcn-bone'))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['model.name=agcn', 'data.view.stream=bone']"


def _text(renderable: object) -> str:
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(renderable)
    return buf.getvalue()


def test_output_metrics_line_and_wrote() -> None:
    from mgcli import output

    m = {"n": 48, "top1": 0.8125, "top5": 1.0, "mean_class_accuracy": 0.79166}
    assert output.metrics_line(m, "val") == (
        "val: top-1 [bold]0.8125[/]  top-5 1.0000  mean class acc 0.7917  (48 clips)"
    )
    assert _text(output.metrics_line(m)) == "top-1 0.8125  top-5 1.0000  mean class acc 0.7917  (48 clips)\n"
    assert output.metrics_line({"n": 0, "top1": None}, "test") == "test: no labels, scores only"
    assert _text(output.wrote([Path("a.csv"), "b.png"], "3 clips")) == "wrote a.csv, b.png (3 clips)\n"
    assert _text(output.wrote([Path("a.csv")])) == "wrote a.csv\n"


def test_output_tables() -> None:
    from mgcli import output
    from mgcli.ensemble import EnsembleRow

    fusion = {"rgb": {"top1": 0.5, "top5": 0.9}, "pose": {"top1": 0.75, "top5": 1.0}}
    splits = {"val": {"n": 4, "late_fusion": fusion}, "test": {"n": 4, "late_fusion": fusion}, "x": {"n": 1}}
    text = _text(output.fusion_table(splits))
    assert "late fusion (rgb:pose)" in text and "0.5000 / 0.9000" in text and "0.7500 / 1.0000" in text
    header = next(line for line in text.splitlines() if "scores" in line)
    assert "val" in header and "test" in header and "x" not in header.replace("scores", "")
    assert output.fusion_table({"val": {"n": 4}}) is None
    rows = [EnsembleRow("runs/a", 0.25, None, 0.5, None), EnsembleRow("ensemble", 1.0, None, 0.75, 1.0, fused=True)]
    text = _text(output.ensemble_table(rows, show_val=False))
    assert "val top-1" not in text
    assert any(
        line.split("│")[1:-1] == [" runs/a   ", "  0.250 ", "     0.5000 ", "          - "]
        for line in text.splitlines()
    )
    assert "val top-1" in _text(output.ensemble_table(rows, show_val=True))
    report = {
        "per_class": {
            "turtle neck": {"class": 0, "precision": 0.5, "recall": 1.0, "support": 1},
            "deep breath": {"class": 1, "precision": None, "recall": 0.0, "support": 2},
            "touch hat": {"class": 2, "precision": None, "recall": None, "support": 0},  # neither: left out
        },
        "confused_pairs": [
            {"true": "deep breath", "predicted": "turtle neck", "count": 2},
            {"true": "touch hat", "predicted": "deep breath", "count": 1},
        ],
    }
    per_class, pairs = output.report_tables(report, top=1)
    text = _text(per_class)
    assert "turtle neck" in text and "0.500" in text and "deep breath" in text and "touch hat" not in text
    text = _text(pairs)
    assert "most confused" in text and "deep breath" in text and "touch hat" not in text  # top 1 pair only
    assert len(output.report_tables({**report, "confused_pairs": []})) == 1
    text = _text(
        output.models_table(
            [
                {
                    "name": "agcn",
                    "input_kind": "poses",
                    "params": 3_450_000,
                    "input": "3 x 64 x 17 x 2",
                    "description": "2s-AGCN",
                }
            ]
        )
    )
    assert "agcn" in text and "3.45 M" in text


def test_help_texts_cite_existing_files() -> None:
    """Every pipelines/*.yaml named in a command's help, epilog or option help is in the repository,
    and every demo/ file is one that make demo writes."""
    import re

    root = Path(__file__).resolve().parents[1]
    texts = []
    for cmd in typer.main.get_command(app).commands.values():
        texts += [cmd.help or "", cmd.epilog or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    pipelines = {m for t in texts for m in re.findall(r"pipelines/[\w.-]+\.yaml", t)}
    assert pipelines >= {"pipelines/sample_pose_joint.yaml", "pipelines/sample_agcn_joint.yaml"}
    assert not [p for p in pipelines if not (root / p).is_file()]
    demo = {m for t in texts for m in re.findall(r"\bdemo/([\w./-]+\.(?:h5|pt|csv))", t)}
    assert "heatmaps-upper22-joint.h5" in demo
    makefile = (root / "Makefile").read_text()
    for var, where in re.findall(r"^(\w+) := \$\(DEMO\)/(\w+)$", makefile, re.M):  # e.g. ONL := $(DEMO)/online
        makefile = makefile.replace(f"$({var})/", f"$(DEMO)/{where}/")
    assert not [d for d in demo if f"$(DEMO)/{d}" not in makefile]
