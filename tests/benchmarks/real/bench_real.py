"""Real skeletons of real people: every skeleton model of the project against simple baselines.

    make bench-real AR_DATA=path/to/AR.data.rda [JHMDB_DATA=folder]
    python tests/benchmarks/real/bench_real.py SOURCE [--work DIR]     (SOURCE: AR.data.rda or a folder)

Two data sets, each laid out as a MiGA release by its converter in ``tools/``:

- ``AR.data.rda``, AR.data of the CRAN package dbcsp (``tools/ar_data_release.py``): 272 OpenPose
  BODY_25 sequences of 92 frames of real people, 6 gestures, fixed stratified split (train 164,
  val 42, test 66);
- a folder holding ``GT_train_1.pkl`` / ``GT_test_1.pkl`` of fandulu/DD-Net: JHMDB's hand-annotated
  2D joints of real people in films and web videos (``tools/jhmdb_release.py``), 14 actions, 15-40
  frames, the official split 1 (train 370, val 63, test 176).

Each stage runs through the ``mg`` command line as a user would: ``extract-pose --layout coco17``,
``build-heatmaps`` (joint and limb), ``train-branch`` for PoseConv3D joint and limb and 2s-AGCN
joint and bone, ``ensemble`` of the four (equal weights); next to them, a random forest and a small
temporal CNN on neck-centred, shoulder-scaled coordinates (``baselines.py``). Three seeds each.

The models run with the project's defaults (no config file: the model's recipe of
``mgcli/train/recipes.py``) at CPU size (``--size cpu``, the default here: a quarter of the width
and 32 frames, the sizes the sample configs use; ``--size paper`` leaves them too).
Writes ``WORK/results.json`` and ``WORK/results.md`` (the README's table) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(HERE), str(REPO / "tools")]

import ar_data_release  # noqa: E402
import baselines  # noqa: E402
import jhmdb_release  # noqa: E402

MG = [sys.executable, "-m", "mgcli"]
# The CPU size of each model: a quarter of the width (the sample configs'), 32 frames, and for
# PoseConv3D 32 px views with sigma 1.2; everything else is the model's recipe.
CPU_SIZE = {
    "posec3d": [
        "model.base_channels=8",
        "model.stage_blocks=[1,1,1]",
        "model.temporal_strides=[1,1,1]",
        "data.view.clip_len=32",
        "data.view.resize_short=32",
        "data.view.train_size=32",
        "data.view.test_size=32",
        "data.view.sigma=1.2",
    ],
    "agcn": ["model.base_channels=16", "data.view.clip_len=32"],
}
MODELS = {  # name: (--model, artifact, family)
    "PoseConv3D joint": ("posec3d_slowonly", "heatmaps-joint.h5", "posec3d"),
    "PoseConv3D limb": ("posec3d_slowonly", "heatmaps-limb.h5", "posec3d"),
    "2s-AGCN joint": ("agcn-joint", "poses.h5", "agcn"),
    "2s-AGCN bone": ("agcn-bone", "poses.h5", "agcn"),
}


def mg(*args: str, quiet: bool = True, env: dict | None = None) -> None:
    cmd = [*MG, *(["--quiet"] if quiet else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def top1(scores_csv: Path) -> float:
    df = pd.read_csv(scores_csv, dtype={"clip_id": str})
    probs = df.drop(columns=["clip_id", "label"]).to_numpy()
    return float((probs.argmax(1) == df["label"].to_numpy()).mean())


def data_set(source: Path) -> str:
    """``ar`` for AR.data.rda, ``jhmdb`` for a folder of DD-Net's JHMDB pickles."""
    if source.is_dir():
        if not (source / "GT_train_1.pkl").is_file():
            sys.exit(f"error: {source}: no GT_train_1.pkl (data/JHMDB of fandulu/DD-Net)")
        return "jhmdb"
    if not source.is_file():
        sys.exit(f"error: {source}: not found (AR.data.rda: git show HEAD:data/AR.data.rda of cran/dbcsp)")
    return "ar"


def prepare(source: Path, work: Path) -> None:
    release = work / "release"
    if not (release / "label_map.csv").is_file():
        if data_set(source) == "jhmdb":
            jhmdb_release.write_release(jhmdb_release.read_jhmdb(source), release)
        else:
            ar_data_release.write_release(ar_data_release.read_ar_data(source), release)
    if not (work / "poses.h5").is_file():
        mg("extract-pose", str(release), "--layout", "coco17", "-o", str(work / "poses.h5"))
    for kind in ("joint", "limb"):
        if not (work / f"heatmaps-{kind}.h5").is_file():
            mg("build-heatmaps", str(work / "poses.h5"), "--kind", kind, "-o", str(work / f"heatmaps-{kind}.h5"))


def run_name(label: str, seed: int) -> str:
    return f"{label.lower().replace(' ', '_').replace('-', '')}_s{seed}"


def train_one(work: Path, label: str, seed: int, size: str, extra: list[str], jobs: int) -> dict:
    """One training run through the CLI (skipped when its run folder has finished already)."""
    model, artifact, family = MODELS[label]
    runs, name = work / "runs", run_name(label, seed)
    done = runs / name / "metrics.json"
    if not (done.is_file() and json.loads(done.read_text()).get("finished")):
        env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if jobs > 1 else {})}
        workers = ["data.workers=1"] if jobs > 1 else []
        sizing = CPU_SIZE[family] if size == "cpu" else []
        mg(
            "train-branch", "--model", model, "--data", str(work / artifact), "--name", name,
            "--out-dir", str(runs), "--overwrite", f"seed={seed}", *sizing, *workers, *extra, env=env,
        )  # fmt: skip
    metrics = json.loads(done.read_text())
    return {
        "top1": metrics["splits"]["test"]["top1"],
        "seconds": metrics["seconds"],
        "epochs": len(metrics["history"]),
    }


def run_models(work: Path, seeds: list[int], labels: list[str], size: str, extra: list[str], jobs: int) -> dict:
    """Every (model, seed) run, ``jobs`` at a time (one thread each when more than one)."""
    out: dict[str, dict[str, dict]] = {str(s): {} for s in seeds}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(train_one, work, label, seed, size, extra, jobs): (label, seed)
            for label in sorted(labels, key=lambda k: MODELS[k][2])  # the quicker 2s-AGCN runs first
            for seed in seeds
        }
        for f in as_completed(futures):
            label, seed = futures[f]
            out[str(seed)][label] = f.result()
            print(f"seed {seed} {label}: test top-1 {out[str(seed)][label]['top1']:.3f}", flush=True)
    if len(labels) == len(MODELS):
        for seed in seeds:
            t0 = time.perf_counter()
            ens = work / "runs" / f"ensemble_s{seed}"
            mg(
                "ensemble",
                *(str(work / "runs" / run_name(label, seed)) for label in MODELS),
                "-o",
                str(ens),
                "--overwrite",
            )
            out[str(seed)]["Ensemble (4 models)"] = {
                "top1": top1(ens / "scores-test.csv"),
                "seconds": time.perf_counter() - t0,
            }
    return out


def run_baselines(work: Path, seed: int) -> dict[str, dict]:
    data = baselines.clip_arrays(str(work / "poses.h5"))
    out = {}
    for label, fn in (("Random forest", baselines.random_forest), ("Temporal CNN", baselines.temporal_cnn)):
        t0 = time.perf_counter()
        out[label] = {"top1": fn(data, seed), "seconds": time.perf_counter() - t0}
    return out


def table(results: dict[str, dict[str, dict]], seeds: list[int]) -> str:
    rows = [
        "| model | test top-1 (mean of seeds) | " + " | ".join(f"seed {s}" for s in seeds) + " | wall time per run |",
        "|---|---|" + "---|" * len(seeds) + "---|",
    ]
    labels = list(next(iter(results.values())))
    for label in labels:
        accs = [results[str(s)][label]["top1"] for s in seeds]
        secs = statistics.mean(results[str(s)][label]["seconds"] for s in seeds)
        std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
        rows.append(
            f"| {label} | **{np.mean(accs):.3f}** ± {std:.3f} | "
            + " | ".join(f"{a:.3f}" for a in accs)
            + f" | {secs:.0f} s |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Skeleton models vs baselines on real skeletons (AR.data, JHMDB).")
    p.add_argument("source", type=Path, help="AR.data.rda of dbcsp, or the folder of DD-Net's JHMDB pickles")
    p.add_argument("--work", type=Path, default=Path("bench-real"), help="working folder (artifacts, runs)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", choices=("cpu", "paper"), default="cpu")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="a subset of the models")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each when more than one)")
    p.add_argument("extra", nargs="*", help="config overrides KEY=VALUE for every model run")
    a = p.parse_args(argv)
    data_set(a.source)
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prepare(a.source, a.work)
    results = run_models(a.work, a.seeds, a.models, a.size, a.extra, max(1, a.jobs))
    if a.models != list(MODELS):
        print("a subset of the models: no ensemble, no baselines, no table")
        return
    for seed in a.seeds:
        results[str(seed)].update(run_baselines(a.work, seed))
        print(f"seed {seed}: " + ", ".join(f"{k} {v['top1']:.3f}" for k, v in results[str(seed)].items()), flush=True)
    md = table(results, a.seeds)
    total = time.perf_counter() - t0
    (a.work / "results.json").write_text(json.dumps({"seeds": a.seeds, "size": a.size, "results": results}, indent=2))
    (a.work / "results.md").write_text(md + f"\n\nWall time of this invocation {total / 60:.1f} min.\n")
    print(md)
    print(f"total {total / 60:.1f} min; wrote {a.work}/results.md")


if __name__ == "__main__":
    main()
