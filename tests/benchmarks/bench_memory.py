"""Peak resident memory of every stage, on the sample and on a 10x larger synthetic release.

    python tests/benchmarks/bench_memory.py [--videos 16] [--scale 10] [--work DIR]

Each stage runs as its own ``mg`` process; its peak RSS (``ru_maxrss`` of that process and the
workers it waited for, from ``os.wait4``) is reported with the number of items it went through.
A stage that streams keeps the same peak at 10x the clips; one that loads everything grows with
them. The release sizes are ``--videos`` and ``--scale`` x ``--videos`` (each ``--gestures``
clips per video).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MG = [sys.executable, "-m", "mgcli", "--quiet"]


def peak(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``mg ARGS`` (fails loudly if the stage fails)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([*MG, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): mg {' '.join(args)}\n{err[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def stages(d: Path, videos: int, gestures: int) -> list[tuple[str, list[str]]]:
    rel, poses, hm = d / "release", d / "poses.h5", d / "hm.h5"
    return [
        ("sample-data", ["sample-data", str(rel), "--videos", str(videos), "--gestures", str(gestures)]),
        ("extract-pose (+frames.h5)", ["extract-pose", str(rel), "-o", str(poses), "--frames-out", str(d / "f.h5")]),
        ("build-heatmaps", ["build-heatmaps", str(poses), "--layout", "upper22", "-o", str(hm)]),
        ("inspect heatmaps", ["inspect", str(hm)]),
        (
            "train-branch (1 epoch, tiny)",
            [
                "train-branch",
                "-c",
                "pipelines/sample_pose_joint.yaml",
                f"data.path={hm}",
                "--out-dir",
                str(d / "runs"),
                "--name",
                "m",
                "train.epochs=1",
                "model.base_channels=4",
                "data.workers=0",
            ],
        ),  # fmt: skip
        ("evaluate (test)", ["evaluate", str(d / "runs/m/model.pt"), "-o", str(d / "e.csv")]),
        ("ensemble (3 inputs)", ["ensemble", *[str(d / "runs/m")] * 3, "-o", str(d / "ens.csv")]),
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=16)
    p.add_argument("--gestures", type=int, default=24)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--work", type=Path, default=None)
    a = p.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="mg-mem-"))
    sizes = [a.videos, a.videos * a.scale]
    results: dict[int, list[tuple[str, float, float]]] = {}
    for n in sizes:
        d = work / f"v{n}"
        d.mkdir(parents=True, exist_ok=True)
        results[n] = []
        for name, args in stages(d, n, a.gestures):
            mib, secs = peak(args)
            results[n].append((name, mib, secs))
            print(f"{n} videos  {name}: peak {mib:.0f} MiB, {secs:.1f} s", flush=True)
    head = " | ".join(f"{n} videos ({n * a.gestures} clips)" for n in sizes)
    print(f"\n| stage | {head} | ratio |\n|---|" + "---|" * len(sizes) + "---|")
    for i, (name, *_rest) in enumerate(results[sizes[0]]):
        cells = [f"{results[n][i][1]:.0f} MiB, {results[n][i][2]:.0f} s" for n in sizes]
        ratio = results[sizes[-1]][i][1] / results[sizes[0]][i][1]
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
