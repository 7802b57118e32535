"""Hostile inputs: the malformed files and options users really produce, for every command.

Each case runs ``mg`` in-process and asserts the exit code, that stderr holds one line naming the
file (or option) and the problem, that no traceback is printed, and that nothing written before
(the inputs, an existing output) changed.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mgcli.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def arts(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A release copy, its poses.h5, joint heatmaps, scores CSVs and a tiny trained run."""
    d = tmp_path_factory.mktemp("hostile")
    release = d / "release"
    shutil.copytree(small_sample, release)
    poses, hm = d / "poses.h5", d / "hm.h5"
    for args in (
        ["extract-pose", str(release), "-o", str(poses)],
        ["build-heatmaps", str(poses), "--layout", "upper22", "-o", str(hm), "--size", "32"],
        [
            "train-branch", "-c", "pipelines/sample_pose_joint.yaml", f"data.path={hm}", "--out-dir", str(d / "runs"),
            "--name", "tiny", "train.epochs=1", "model.base_channels=4", "data.workers=0", "train.min_steps=0",
        ],
    ):  # fmt: skip
        r = runner.invoke(app, ["-q", *args])
        assert r.exit_code == 0, r.output
    return {"dir": d, "release": release, "poses": poses, "hm": hm, "run": d / "runs" / "tiny"}


def digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p] if p.exists() else []
        for q in files:
            out[str(q)] = hashlib.sha256(q.read_bytes()).hexdigest()
    return out


@dataclass
class Case:
    name: str
    # (artifacts, scratch folder) -> (argv, files that must not change, text the message must hold)
    make: Callable[[dict[str, Path], Path], tuple[list[str], list[Path], str]]
    code: int = 2


def _label_case(row: str) -> Callable[[dict[str, Path], Path], tuple[list[str], list[Path], str]]:
    """A release whose first training video's label file gets ``row``: that video is reported and
    left out, the others are extracted (exit 1)."""

    def make(a: dict[str, Path], tmp: Path) -> tuple[list[str], list[Path], str]:
        rel = tmp / "rel"
        shutil.copytree(a["release"], rel)
        label = sorted(rel.glob("imigue_skeleton_train/*/*_label.csv"))[0]
        label.write_text(label.read_text() + row + "\n")
        return ["extract-pose", str(rel), "-o", str(tmp / "p.h5")], [label], "failed"

    return make


def _garbage_h5(a: dict[str, Path], tmp: Path) -> Path:
    bad = tmp / "bad.h5"
    data = bytearray(a["poses"].read_bytes())
    rng = np.random.default_rng(0)
    data[4096:] = rng.integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()  # header intact
    bad.write_bytes(bytes(data))
    return bad


def _random_file(tmp: Path, name: str) -> Path:
    p = tmp / name
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return p


def _scores(tmp: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _read_only(tmp: Path) -> Path:
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def _train(a: dict[str, Path], tmp: Path, *extra: str) -> list[str]:
    return [
        "train-branch", "-c", "pipelines/sample_pose_joint.yaml", f"data.path={a['hm']}", "--out-dir", str(tmp),
        "--name", "x", "train.epochs=1", "model.base_channels=4", "data.workers=0", *extra,
    ]  # fmt: skip


CASES = [
    # label files: one bad video is reported and left out, the rest complete
    Case("label text row", _label_case("touch,5,9"), 1),
    Case("label reversed frames", _label_case("3,50,10"), 1),
    Case("label negative frame", _label_case("3,-5,10"), 1),
    Case("label inf", _label_case("23,20,inf"), 1),
    Case("label 23 digits", _label_case("23,20,12345678901234567890123"), 1),
    Case("label fractional", _label_case("23.7,20.5,61.2"), 1),
    Case("label past the video", _label_case("7,500,70000"), 1),
    # artifacts of the wrong kind, truncated, random, garbage body
    Case("heatmaps from heatmaps", lambda a, t: (["build-heatmaps", str(a["hm"]), "-o", str(t / "o.h5")], [], "poses")),
    Case(
        "random h5", lambda a, t: (["build-heatmaps", str(_random_file(t, "r.h5")), "-o", str(t / "o.h5")], [], "HDF5")
    ),
    Case(
        "truncated h5",
        lambda a, t: (
            ["build-heatmaps", str(_truncate(a["poses"], t)), "-o", str(t / "o.h5")],
            [],
            "cut.h5",
        ),
    ),
    Case(
        "garbage body h5",
        lambda a, t: (["build-heatmaps", str(_garbage_h5(a, t)), "-o", str(t / "o.h5")], [], "bad.h5"),
    ),
    Case("inspect garbage body h5", lambda a, t: (["inspect", str(_garbage_h5(a, t))], [], "bad.h5")),
    Case(
        "submit random clips file",
        lambda a, t: (
            [
                "submit",
                str(a["run"] / "scores-test.csv"),
                "--release",
                str(_random_file(t, "r.h5")),
                "-o",
                str(t / "s.zip"),
            ],
            [],
            "r.h5",
        ),
    ),  # noqa: E501
    # scores CSVs
    Case("scores NaN", lambda a, t: (["report", str(_scores(t, "clip_id,label,0,1\na,0,nan,0.5\n"))], [], "s.csv")),
    Case("scores no class columns", lambda a, t: (["report", str(_scores(t, "clip_id,label\na,0\n"))], [], "s.csv")),
    Case(
        "scores duplicate ids",
        lambda a, t: (["report", str(_scores(t, "clip_id,label,0,1\na,0,0.5,0.5\na,1,0.2,0.8\n"))], [], "s.csv"),
    ),  # noqa: E501
    Case("scores text", lambda a, t: (["report", str(_scores(t, "hello world\n"))], [], "s.csv")),
    # checkpoints
    Case("malicious pickle", lambda a, t: (["evaluate", str(_pickle(t)), "-o", str(t / "o.csv")], [], "model.pt")),
    Case(
        "random checkpoint",
        lambda a, t: (["evaluate", str(_random_file(t, "model.pt")), "-o", str(t / "o.csv")], [], "model.pt"),
    ),  # noqa: E501
    # configs
    Case("unknown key", lambda a, t: (_train(a, t, "train.bogus=1"), [], "train.bogus")),
    Case("wrong type", lambda a, t: (_train(a, t, "train.epochs=many"), [], "train.epochs")),
    Case("negative lr", lambda a, t: (_train(a, t, "optim.lr=-0.1"), [], "optim.lr")),
    Case("zero clip_len", lambda a, t: (_train(a, t, "data.view.clip_len=0"), [], "clip_len")),
    Case("zero num_clips", lambda a, t: (_train(a, t, "data.view.num_clips=0"), [], "num_clips")),
    Case("yaml syntax", lambda a, t: (["train-branch", "-c", str(_scores(t, "train: [1,\n", "c.yaml"))], [], "c.yaml")),
    # options
    Case(
        "sigma -1",
        lambda a, t: (["build-heatmaps", str(a["poses"]), "--sigma", "-1", "-o", str(t / "o.h5")], [], "sigma"),
    ),
    Case(
        "size 0", lambda a, t: (["build-heatmaps", str(a["poses"]), "--size", "0", "-o", str(t / "o.h5")], [], "size")
    ),
    Case("seed -1", lambda a, t: (["sample-data", str(t / "s"), "--seed", "-1"], [], "seed")),
    Case(
        "skeleton-file bogus",
        lambda a, t: (
            ["extract-pose", str(a["release"]), "--skeleton-file", "bogus", "-o", str(t / "p.h5")],
            [],
            "skeleton-file",
        ),
    ),  # noqa: E501
    Case(
        "frame-size 0",
        lambda a, t: (
            [
                "extract-pose",
                str(a["release"]),
                "--frames-out",
                str(t / "f.h5"),
                "--frame-size",
                "0",
                "-o",
                str(t / "p.h5"),
            ],
            [],
            "frame-size",
        ),
    ),  # noqa: E501
    Case(
        "jpeg-quality 500",
        lambda a, t: (
            ["extract-pose", str(a["release"]), "--jpeg-quality", "500", "-o", str(t / "p.h5")],
            [],
            "jpeg-quality",
        ),
    ),  # noqa: E501
    Case(
        "scope bogus",
        lambda a, t: (["extract-pose", str(a["release"]), "--scope", "bogus", "-o", str(t / "p.h5")], [], "scope"),
    ),  # noqa: E501
    Case(
        "workers -2",
        lambda a, t: (["extract-pose", str(a["release"]), "--workers", "-2", "-o", str(t / "p.h5")], [], "workers"),
    ),  # noqa: E501
    Case(
        "max-persons 0",
        lambda a, t: (
            ["extract-pose", str(a["release"]), "--max-persons", "0", "-o", str(t / "p.h5")],
            [],
            "max-persons",
        ),
    ),  # noqa: E501
    # outputs
    Case(
        "output is the checkpoint",
        lambda a, t: (
            ["evaluate", str(a["run"] / "model.pt"), "-o", str(a["run"] / "model.pt"), "--overwrite"],
            [a["run"] / "model.pt"],
            "both an input and an output",
        ),
    ),  # noqa: E501
    Case(
        "frames-out is -o",
        lambda a, t: (
            ["extract-pose", str(a["release"]), "-o", str(t / "x.h5"), "--frames-out", str(t / "x.h5")],
            [],
            "both an input and an output",
        ),
    ),  # noqa: E501
    Case(
        "output exists",
        lambda a, t: (["build-heatmaps", str(a["poses"]), "-o", str(a["hm"])], [a["hm"]], "--overwrite"),
    ),
    Case(
        "output into a read-only folder",
        lambda a, t: (
            ["build-heatmaps", str(a["poses"]), "--layout", "upper22", "-o", str(_read_only(t) / "o.h5")],
            [],
            "permission denied",
        ),
    ),  # noqa: E501
    Case(
        "output under a file",
        lambda a, t: (
            ["build-heatmaps", str(a["poses"]), "--layout", "upper22", "-o", str(_scores(t, "x", "f.txt") / "o.h5")],
            [],
            "f.txt",
        ),
    ),  # noqa: E501
    Case("report output exists", lambda a, t: (_reported(a, t), [t / "r-report.json"], "--overwrite")),
]


def _reported(a: dict[str, Path], tmp: Path) -> list[str]:
    """``mg report`` once (it writes PREFIX-report.json); the case runs it again on the same prefix."""
    args = ["report", str(a["run"] / "scores-test.csv"), "-o", str(tmp / "r")]
    assert runner.invoke(app, ["-q", *args]).exit_code == 0
    return args


def _truncate(src: Path, tmp: Path) -> Path:
    p = tmp / "cut.h5"
    p.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    return p


def _pickle(tmp: Path) -> Path:
    import pickle

    class Boom:
        def __reduce__(self) -> tuple:
            return (Path.touch, (tmp / "PWNED",))

    d = tmp / "m"
    d.mkdir()
    p = d / "model.pt"
    p.write_bytes(pickle.dumps({"schema": Boom()}))
    return p


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, arts: dict[str, Path], tmp_path: Path) -> None:
    argv, keep, must = case.make(arts, tmp_path)
    if case.name == "output into a read-only folder" and _root():
        pytest.skip("root ignores folder permissions")
    protected = keep + [arts["poses"], arts["hm"], arts["run"]]
    before = digest(protected)
    r = runner.invoke(app, ["-q", *argv])
    out = r.stderr if r.stderr_bytes is not None else r.output
    assert r.exit_code == case.code, f"{case.name}: exit {r.exit_code}\n{r.output}"
    assert "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if case.code == 2:
        assert len(lines) == 1 and lines[0].startswith("error:"), f"{case.name}: {out!r}"
    assert must.lower() in r.output.lower(), f"{case.name}: {r.output!r}"
    assert digest(protected) == before, f"{case.name}: an earlier file changed"
    assert not (tmp_path / "PWNED").exists()
    assert not list(tmp_path.rglob(".*.tmp-*")), "a temporary file was left"


def _root() -> bool:
    import os

    return os.geteuid() == 0


# --------------------------------------------------------------------------- one bad item


def test_a_truncated_video_in_a_plain_folder_is_left_out(tmp_path: Path) -> None:
    from conftest import write_video
    from mgcli.io.poses import PosesFile

    videos = tmp_path / "videos"
    write_video(videos / "good.mp4", 12, size=(96, 128))
    (videos / "broken.mp4").write_bytes((videos / "good.mp4").read_bytes()[:600])
    out = tmp_path / "poses.h5"
    r = runner.invoke(
        app, ["-q", "extract-pose", str(videos), "--source", "video", "--backend", "mediapipe", "-o", str(out)]
    )
    assert r.exit_code == 1, r.output
    assert "broken" in r.output and "1 video(s) failed" in r.output and "Traceback" not in r.output
    with PosesFile(out) as p:
        assert p.video_ids == ["good"] and p["good"].keypoint.shape[1] == 12


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every folder reports 1 MiB free (a real full disk needs a tmpfs, which needs root)."""
    import shutil as sh

    import mgcli.io.h5 as h5

    real = sh.disk_usage
    monkeypatch.setattr(h5.shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))


@pytest.mark.usefixtures("full_disk")
def test_a_full_disk_is_one_line_and_leaves_no_temporary(arts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "hm.h5"
    r = runner.invoke(app, ["-q", "build-heatmaps", str(arts["poses"]), "--layout", "upper22", "-o", str(out)])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "no space left on device" in lines[0], r.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_build_heatmaps_leaves_out_a_clip_it_cannot_build(
    arts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mgcli.heatmaps.build as build
    from mgcli.io.heatmaps import HeatmapsFile

    real, calls = build.render_clip, []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("a broken clip")
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "render_clip", flaky)
    out = tmp_path / "hm.h5"
    r = runner.invoke(app, ["-q", "build-heatmaps", str(arts["poses"]), "--layout", "upper22", "-o", str(out)])
    assert r.exit_code == 1 and "a broken clip" in r.output and "1 clip(s) failed" in r.output, r.output
    with HeatmapsFile(out) as hm:
        assert len(hm.clips) == len(calls) - 1


def test_a_damaged_part_file_is_redone_on_resume(arts: dict[str, Path], tmp_path: Path) -> None:
    from mgcli.io.poses import PosesFile
    from mgcli.pose.extract import ExtractOptions, extract_pose, parts_dir_for

    out = tmp_path / "poses.h5"

    def stop_after_two(outcome: object, seen: list[int] = []) -> None:  # noqa: B006
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_pose(arts["release"], out, ExtractOptions(), on_video=stop_after_two)
    parts = sorted(parts_dir_for(out).glob("*.h5"))
    assert len(parts) == 2
    parts[0].write_bytes(parts[0].read_bytes()[:500])  # cut short, as a failing disk would
    r = runner.invoke(app, ["-q", "extract-pose", str(arts["release"]), "-o", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    with PosesFile(out) as mine, PosesFile(arts["poses"]) as whole:
        assert mine.video_ids == whole.video_ids
        for vid in whole.video_ids:
            np.testing.assert_array_equal(mine[vid].keypoint, whole[vid].keypoint)


def test_a_failing_rank_stops_a_distributed_run(arts: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    bad = tmp_path / "bad.h5"
    data = bytearray(arts["hm"].read_bytes())
    half = len(data) // 2
    data[half : half + min(300_000, len(data) // 3)] = bytes(min(300_000, len(data) // 3))
    bad.write_bytes(bytes(data))
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "mgcli", "-q", *_train(arts, tmp_path, f"data.path={bad}", "train.batch_size=2"),
         "train.epochs=3", "--procs", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "a training process failed" in r.stderr and "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 240


def test_build_heatmaps_killed_at_a_random_point_then_rerun_gives_the_same_artifact(
    arts: dict[str, Path], tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import h5py

    def contents(path: Path) -> dict[str, bytes]:
        out: dict[str, bytes] = {}

        def take(key: str, v: object) -> None:
            if isinstance(v, h5py.Dataset):
                a = np.asarray(v[()])
                out[key] = repr(a.tolist()).encode() if a.dtype.kind == "O" else a.tobytes()

        with h5py.File(path, "r") as f:
            f.visititems(take)
        return out

    out = tmp_path / "hm.h5"
    args = [sys.executable, "-m", "mgcli", "-q", "build-heatmaps", str(arts["poses"]), "--layout", "upper22"]
    proc = subprocess.Popen([*args, "-o", str(out)])
    deadline = time.time() + 120
    while not list(tmp_path.glob(".hm.h5.tmp-*")) and time.time() < deadline:  # the build has begun
        time.sleep(0.002)
    time.sleep(np.random.default_rng().uniform(0.0, 0.05))  # a random point inside it
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-written under the final name
    subprocess.run([*args, "-o", str(out)], check=True)
    assert [p.name for p in tmp_path.iterdir()] == ["hm.h5"]  # the killed run's temporary is gone
    ref = tmp_path.parent / f"{tmp_path.name}-ref.h5"
    subprocess.run([*args, "-o", str(ref)], check=True)
    assert contents(out) == contents(ref)


@pytest.mark.usefixtures("full_disk")
def test_extract_pose_on_a_full_disk_is_one_line(arts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "poses.h5"
    r = runner.invoke(
        app, ["-q", "extract-pose", str(arts["release"]), "-o", str(out), "--frames-out", str(tmp_path / "f.h5")]
    )
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "no space left on device" in lines[0], r.output
    assert not out.exists() and not list(tmp_path.rglob(".*.tmp-*"))
