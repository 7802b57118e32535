"""Benchmark: accuracy of each branch and of the fused model on the bundled sample, and the CPU time.

Generates the default sample, extracts its OpenPose skeletons with a 128-px frames cache,
builds upper22 joint heatmaps, then trains ``pipelines/sample_pose_joint.yaml`` and
``pipelines/sample_rgb.yaml`` as ``make demo`` does but for 30 epochs (``--epochs``; validation
every 5, as in the README's tables), and from both branches
``pipelines/sample_rgbpose.yaml`` four times: plain RGBPoseConv3D (``--no-cmf --no-prm``), with
the CMF only, with the PRM only, with both. Prints val/test top-1, wall and CPU time (this process
and its DataLoader workers) per run, and for the fused runs each modality's head and the 1:1,
2:1, 1:2 late fusions.

    .venv/bin/python tests/benchmarks/bench_train_sample.py [--only pose|rgb|branches] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.heatmaps.build import BuildOptions, build_heatmaps
from mgcli.pose.extract import ExtractOptions, extract_pose
from mgcli.train.config import load_config
from mgcli.train.launch import launch

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("pose", "rgb", "branches"))
    ap.add_argument("--epochs", type=int, default=30, help="epochs of every run (make demo uses fewer)")
    args = ap.parse_args()
    longer = [f"train.epochs={args.epochs}", "train.val_every=5"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate_sample(tmp / "s", SampleConfig(), workers=2)
        ceilings = json.loads((tmp / "s" / "sample.json").read_text()).get("expected_test_ceilings")
        extract_pose(
            tmp / "s", tmp / "poses.h5", ExtractOptions(frames_out=tmp / "frames.h5", frame_size=128, workers=2)
        )
        build_heatmaps(tmp / "poses.h5", tmp / "heatmaps-upper22.h5", BuildOptions(kind="joint", layout="upper22"))
        runs = {"pose": ("sample_pose_joint", "heatmaps-upper22.h5"), "rgb": ("sample_rgb", "frames.h5")}
        for key, (name, artifact) in runs.items():
            if args.only not in (None, key, "branches"):
                continue
            cfg = load_config(
                PIPELINES / f"{name}.yaml",
                [f"data.path={tmp / artifact}", f"data.poses={tmp / 'poses.h5'}", f"out_dir={tmp / 'runs'}", *longer],
            )
            m = launch(cfg, quiet=True)
            s = m["splits"]
            print(
                f"{name}: {m['params'] / 1e6:.3f} M parameters, {cfg.train.epochs} epochs: "
                f"val top-1 {s['val']['top1']:.3f}, test top-1 {s['test']['top1']:.3f} "
                f"(top-5 {s['test']['top5']:.3f}); {m['seconds'] / 60:.1f} min wall, "
                f"{m['cpu_seconds'] / 60:.1f} min CPU, data wait {100 * m['data_wait']:.1f} % of epoch time"
            )
        if args.only is None:
            fused(tmp, longer)
        print("the sample's test top-1 ceilings by construction:", ceilings)


def fused(tmp: Path, longer: list[str]) -> None:
    """The four fused variants, each started from the two branch runs."""
    init = f"init_from=[{tmp / 'runs/sample_rgb/model.pt'}, {tmp / 'runs/sample_pose_joint/model.pt'}]"
    variants = {
        "plain RGBPoseConv3D (--no-cmf --no-prm)": ["model.cmf=false", "model.prm=false"],
        "+ CMF (--no-prm)": ["model.prm=false"],
        "+ PRM (--no-cmf)": ["model.cmf=false"],
        "+ CMF + PRM": [],
    }
    for i, (label, extra) in enumerate(variants.items()):
        cfg = load_config(
            PIPELINES / "sample_rgbpose.yaml",
            [
                f"data.path={tmp / 'frames.h5'}",
                f"data.poses={tmp / 'poses.h5'}",
                f"out_dir={tmp / 'runs'}",
                f"name=fused{i}",
                init,
                *extra,
                *longer,
            ],
        )
        m = launch(cfg, quiet=True)
        table = {split: m["splits"][split]["late_fusion"] for split in ("val", "test")}
        cells = "  ".join(f"{k} {table['val'][k]['top1']:.3f}/{table['test'][k]['top1']:.3f}" for k in table["test"])
        print(
            f"sample_rgbpose {label}: {cfg.train.epochs} epochs, val/test top-1: {cells}; "
            f"{m['seconds'] / 60:.1f} min wall, {m['cpu_seconds'] / 60:.1f} min CPU",
            flush=True,
        )


if __name__ == "__main__":
    main()
