"""Benchmark against the real peer: mgcli next to mmaction2 1.2.0 itself, on the same inputs.

    make bench-peers          (builds .venv-peers, then: .venv/bin/python tests/benchmarks/peers/bench_peers.py)

mmaction2 runs in a side environment (``.venv-peers``: CPU torch 2.13.0, numpy < 2, mmengine
0.10.7, mmcv-lite 2.1.0, mmaction2 1.2.0 without its dependencies; see the Makefile), in a process
of its own (``mmaction_side.py``) that this script drives request by request. Every measurement
alternates the two sides (theirs, ours, theirs, ours, ...; one side idles while the other is
timed), so a slow spell of the machine hits both alike, and each ratio is the median of the
per-round ratios. Three tables:

(a) heatmaps: ``mgcli.heatmaps.generate`` vs ``GeneratePoseTarget`` (use_score, sigma 0.6), one
    thread each: 17 joints and the 17 COCO limbs x 48 frames on a 64 x 64 canvas, one and two
    persons, and a wide 64 x 112 canvas (a 16:9 frame, not compacted); the outputs are compared.
(b) one training step (forward, loss, backward, gradient clipping at 40, SGD), two threads each,
    random inputs of the paper's shapes: the PoseConv3D SlowOnly pose branch (base 32, stages
    4-6-3, batch 8 x 17 x 32 x 56^2, as ``pipelines/imigue_pose_joint.yaml``) and RGBPoseConv3D
    (batch 2: 8 x 224^2 RGB + 32 x 56^2 heatmaps, no CMF / PRM). Ours is the project's
    ``train_step`` with a run's defaults (channels_last on; the pose branch also without it, to
    show what it is worth); theirs ``model.train_step`` with an ``OptimWrapper``. The parameter
    counts must agree.
(c) the data pipeline per training sample, one thread each: ours ``HeatmapClips`` (a
    ``heatmaps.h5`` clip: the PoseCompact-ed keypoints are stored by ``build-heatmaps``; frames,
    resize, random resized crop, flip, rendering) vs mmaction2's PoseConv3D keypoint training
    pipeline from the annotation (UniformSampleFrames ... GeneratePoseTarget, FormatShape,
    PackActionInputs) of the same 100-frame clip at 1280 x 720.

The torch versions differ (ours 2.14.1, the side's 2.13.0: mmcv-lite and mmaction2 1.2.0 predate
it); both print in the header. ``--quick`` takes fewer rounds (a check that everything runs).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))

from bench_heatmaps_render import skeleton_clip  # noqa: E402 (tests/benchmarks)
from bench_train import step_run  # noqa: E402

from mgcli.heatmaps.render import generate  # noqa: E402


class Peer:
    """The mmaction2 side process: one JSON request per line, one answer per line."""

    def __init__(self, python: str, log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [python, str(HERE / "mmaction_side.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"error: the mmaction2 side stopped; its output is in {self.log.name}")
        return json.loads(line)

    def ask(self, op: str, **kw: object) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write('{"op": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.log.close()


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def alternate(rounds: int, theirs: Callable[[], list[float]], ours: Callable[[], list[float]]) -> dict:
    """``rounds`` rounds of (theirs, ours); each round's medians and their ratio theirs / ours."""
    rows = []
    for _ in range(rounds):
        t, o = statistics.median(theirs()), statistics.median(ours())
        rows.append((t, o, t / o))
    t, o, r = (statistics.median(col) for col in zip(*rows, strict=True))
    return {"theirs": t, "ours": o, "ratio": r, "rounds": [list(x) for x in rows]}


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


# ---- (a) heatmaps ---------------------------------------------------------------------------------

HEATMAP_CASES = [  # label, kind, persons, (H, W)
    ("joint, 1 person, 64x64", "joint", 1, (64, 64)),
    ("joint, 2 persons, 64x64", "joint", 2, (64, 64)),
    ("limb, 1 person, 64x64", "limb", 1, (64, 64)),
    ("limb, 2 persons, 64x64", "limb", 2, (64, 64)),
    ("joint, 1 person, 64x112", "joint", 1, (64, 112)),
    ("limb, 1 person, 64x112", "limb", 1, (64, 112)),
]


def bench_heatmaps(peer: Peer, tmp: Path, rounds: int) -> list[dict]:
    torch.set_num_threads(1)
    peer.ask("threads", n=1)
    rng = np.random.default_rng(0)
    clips = {p: skeleton_clip(rng, p) for p in (1, 2)}
    out = []
    for label, kind, persons, size in HEATMAP_CASES:
        kp, sc = clips[persons]
        kp = kp + np.array([(size[1] - 64) / 2, 0], np.float32)  # centred on a wide canvas
        paths = {k: tmp / f"{k}.npy" for k in ("kp", "sc", "ref")}
        np.save(paths["kp"], kp)
        np.save(paths["sc"], sc)
        req = {"keypoint": str(paths["kp"]), "score": str(paths["sc"]), "size": list(size), "sigma": 0.6}
        peer.ask("heatmaps", **req, kind=kind, reps=1, out=str(paths["ref"]))
        ref = np.load(paths["ref"]).transpose(1, 0, 2, 3)  # [T, C, H, W] -> ours [C, T, H, W]
        mine = generate(kp, sc, size, 0.6, kind).numpy()
        diff = float(np.abs(mine - ref).max()) if mine.shape == ref.shape else float("inf")
        res = alternate(
            rounds,
            lambda req=req, kind=kind: peer.ask("heatmaps", **req, kind=kind, reps=3)["seconds"],
            lambda kp=kp, sc=sc, size=size, kind=kind: timed(lambda: generate(kp, sc, size, 0.6, kind), 30),
        )
        out.append({"case": label, "max_diff": diff, **res})
        print(
            f"  {label}: mmaction2 {res['theirs'] * 1e3:.2f} ms, ours {res['ours'] * 1e3:.3f} ms, "
            f"x{res['ratio']:.1f}, max |diff| {diff:.1e}",
            flush=True,
        )
    return out


# ---- (b) training steps ---------------------------------------------------------------------------


def our_step(
    model_name: str, batch: int, num_classes: int, extra: tuple[str, ...] = ()
) -> tuple[Callable[[], None], int]:
    """One of our training steps with a run's defaults (and ``extra`` overrides), and the model's
    parameter count."""
    from mgcli.train.build import build_for_data
    from mgcli.train.config import load_config
    from mgcli.train.loop import train_step
    from mgcli.train.plan import RunPlan
    from mgcli.train.predict import channels_last_3d

    torch.manual_seed(0)
    if model_name == "pose":
        cfg = load_config(REPO / "pipelines/imigue_pose_joint.yaml", [f"train.batch_size={batch}", *extra])
        kind, options = "heatmaps", {"in_channels": 17}
        x = {"x": torch.rand(batch, 17, 32, 56, 56)}
    else:
        cfg = load_config(
            REPO / "pipelines/imigue_rgbpose.yaml",
            [f"train.batch_size={batch}", "model.cmf=false", "model.prm=false", *extra],
        )
        kind, options = "rgbpose", {"rgb": {"in_channels": 3}, "pose": {"in_channels": 17}}
        x = {
            "rgb": torch.randint(0, 256, (batch, 3, 8, 224, 224), dtype=torch.uint8),
            "pose": torch.rand(batch, 17, 32, 56, 56),
        }
    model = build_for_data(cfg, num_classes, kind, options, load_pretrained=False)
    if cfg.train.channels_last:
        model = channels_last_3d(model)
    model.train()
    plan = RunPlan(kind, options, [str(i) for i in range(num_classes)], frozenset({"train"}), 0)
    run = step_run(cfg, model, plan, channels_last=cfg.train.channels_last)
    y = torch.arange(batch) % num_classes
    return (lambda: train_step(run, x, y, 0.01)), sum(p.numel() for p in model.parameters())


def bench_steps(peer: Peer, rounds: int, steps: int) -> list[dict]:
    torch.set_num_threads(2)
    peer.ask("threads", n=2)
    out = []
    for label, name, batch, extra in (
        ("PoseConv3D SlowOnly pose branch, batch 8", "pose", 8, ()),
        ("  the same, ours without channels_last", "pose", 8, ("train.channels_last=false",)),
        ("RGBPoseConv3D, batch 2", "rgbpose", 2, ()),
    ):
        theirs_params = peer.ask("build", model=name, batch=batch, num_classes=32, seed=0)["params"]
        step, ours_params = our_step(name, batch, 32, extra)
        peer.ask("steps", reps=1)  # warm-up: first-call allocations on both sides
        step()
        res = alternate(
            rounds,
            lambda: peer.ask("steps", reps=steps)["seconds"],
            lambda step=step: timed(step, steps),
        )
        res["ratio"] = 1 / res["ratio"]  # ours / theirs: below 1 is faster
        res["rounds"] = [[t, o, o / t] for t, o, _ in res["rounds"]]
        out.append({"case": label, "params_ours": ours_params, "params_theirs": theirs_params, **res})
        print(
            f"  {label}: mmaction2 {res['theirs']:.2f} s, ours {res['ours']:.2f} s, ours/theirs "
            f"{res['ratio']:.2f} ({ours_params / 1e6:.2f} M / {theirs_params / 1e6:.2f} M parameters)",
            flush=True,
        )
        del step
    return out


# ---- (c) data pipeline per sample -----------------------------------------------------------------


def pipeline_clip(frames: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """One person gesturing in a 1280 x 720 frame: the benchmark skeleton, scaled up."""
    kp, sc = skeleton_clip(np.random.default_rng(1), 1, frames)
    return kp * 8 + np.array([380, 40], np.float32), sc


def our_dataset(tmp: Path, kp: np.ndarray, sc: np.ndarray):  # type: ignore[no-untyped-def]
    """A heatmaps.h5 of the clip (build-heatmaps' defaults but the clip box, as PoseCompact) and
    our training dataset on it, with the PoseConv3D keypoint config's view (our defaults)."""
    from mgcli.data import open_split
    from mgcli.heatmaps.build import BuildOptions, build_heatmaps
    from mgcli.io.poses import PosesWriter, VideoPoses
    from mgcli.train.config import load_config

    poses = tmp / "poses.h5"
    with PosesWriter(poses, "coco17", "benchmark", ["c0"]) as w:
        w.add_video(VideoPoses("0001", kp, sc, (720, 1280), 30.0, kp.shape[1]))
        w.set_clips(
            pd.DataFrame(
                {"clip_id": ["0001_0"], "video_id": ["0001"], "start": [0], "end": [kp.shape[1] - 1]}
                | {"label": [0], "split": ["train"]}
            )
        )
    build_heatmaps(poses, tmp / "heatmaps.h5", BuildOptions(kind="joint", compact="clip"))
    cfg = load_config(None, ["model.name=posec3d_slowonly", f"data.path={tmp / 'heatmaps.h5'}"])
    return open_split(cfg, "train", train=True)


def bench_pipeline(peer: Peer, tmp: Path, rounds: int) -> dict:
    torch.set_num_threads(1)
    peer.ask("threads", n=1)
    kp, sc = pipeline_clip()
    np.save(tmp / "pkp.npy", kp)
    np.save(tmp / "psc.npy", sc)
    ds = our_dataset(tmp, kp, sc)
    shape = tuple(ds[0][0]["x"].shape)
    req = {"keypoint": str(tmp / "pkp.npy"), "score": str(tmp / "psc.npy"), "img_shape": [720, 1280]}
    res = alternate(
        rounds,
        lambda: peer.ask("pipeline", **req, clip_len=48, reps=20)["seconds"],
        lambda: timed(lambda: ds[0], 50),
    )
    print(
        f"  per sample ({shape}): mmaction2 {res['theirs'] * 1e3:.2f} ms, ours {res['ours'] * 1e3:.2f} ms, "
        f"x{res['ratio']:.1f}",
        flush=True,
    )
    return {"case": "PoseConv3D keypoint training sample, 48 x 56^2", "shape": shape, **res}


# ---- report ---------------------------------------------------------------------------------------


def tables(results: dict) -> str:
    h = results["heatmaps"]
    lines = [
        f"mgcli (torch {results['ours']['torch']}) vs mmaction2 1.2.0 (torch {results['theirs']['torch']}, "
        f"numpy {results['theirs']['numpy']}); median of per-round ratios, A/B alternating",
        "",
        "(a) heatmaps, 48 frames, sigma 0.6, 1 thread each",
        "",
        "| case | mmaction2 GeneratePoseTarget | mgcli generate | speed-up | max abs diff |",
        "|---|---|---|---|---|",
        *(
            f"| {r['case']} | {r['theirs'] * 1e3:.2f} ms | {r['ours'] * 1e3:.3f} ms | x{r['ratio']:.1f} | "
            f"{r['max_diff']:.1e} |"
            for r in h
        ),
        f"| geometric mean | | | **x{geomean([r['ratio'] for r in h]):.1f}** | |",
        "",
        "(b) one training step (forward, backward, clip, SGD), 2 threads each",
        "",
        "| model | parameters (ours / theirs) | mmaction2 | mgcli | ours / theirs |",
        "|---|---|---|---|---|",
        *(
            f"| {r['case']} | {r['params_ours'] / 1e6:.2f} M / {r['params_theirs'] / 1e6:.2f} M | "
            f"{r['theirs']:.2f} s | {r['ours']:.2f} s | {r['ratio']:.2f} |"
            for r in results["steps"]
        ),
        "",
        "(c) the data pipeline, per training sample, 1 thread each",
        "",
        "| sample | mmaction2 pipeline | mgcli HeatmapClips | speed-up |",
        "|---|---|---|---|",
        (lambda r: f"| {r['case']} | {r['theirs'] * 1e3:.2f} ms | {r['ours'] * 1e3:.2f} ms | x{r['ratio']:.1f} |")(
            results["pipeline"]
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="mgcli vs mmaction2 1.2.0 on the same inputs (make bench-peers).")
    p.add_argument("--peer-python", default=str(REPO / ".venv-peers/bin/python"), help="the side environment's python")
    p.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) and JSON here")
    p.add_argument("--quick", action="store_true", help="fewer rounds: a check that everything runs")
    p.add_argument("--only", nargs="+", choices=("heatmaps", "steps", "pipeline"), default=None)
    a = p.parse_args(argv)
    if not Path(a.peer_python).is_file():
        sys.exit(f"error: {a.peer_python}: no side environment (make bench-peers builds it)")
    only = set(a.only or ("heatmaps", "steps", "pipeline"))
    rounds = 2 if a.quick else 7
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        peer = Peer(a.peer_python, tmp / "side.log")
        try:
            results = {"ours": {"torch": torch.__version__}, "theirs": peer.info}
            print(f"mgcli torch {torch.__version__}; mmaction2 side torch {peer.info['torch']}", flush=True)
            if "heatmaps" in only:
                print("(a) heatmaps", flush=True)
                results["heatmaps"] = bench_heatmaps(peer, tmp, rounds)
            if "steps" in only:
                print("(b) training steps", flush=True)
                results["steps"] = bench_steps(peer, 2 if a.quick else 3, 1 if a.quick else 2)
            if "pipeline" in only:
                print("(c) data pipeline", flush=True)
                results["pipeline"] = bench_pipeline(peer, tmp, rounds)
        finally:
            peer.close()
    if only == {"heatmaps", "steps", "pipeline"}:
        text = tables(results)
        print()
        print(text)
        if a.out:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / "peers.md").write_text(text + "\n")
            (a.out / "peers.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
