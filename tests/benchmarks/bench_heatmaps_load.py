"""Benchmark: build-heatmaps on the default sample, bytes per clip, and the time to load one
training sample (random view rendered from stored keypoints) and one test clip (2 x 10 views cut
from the stored volume), on one CPU thread."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from mgcli.data.heatmaps import HeatmapClips, PoseViewConfig
from mgcli.dataset.sample import SampleConfig, generate_sample
from mgcli.heatmaps.build import BuildOptions, build_heatmaps
from mgcli.pose.extract import ExtractOptions, extract_pose


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        generate_sample(tmp / "s", SampleConfig(), workers=2)
        extract_pose(tmp / "s", tmp / "poses.h5", ExtractOptions(layout="coco17", workers=2))
        for kind in ("joint", "limb"):
            stats = build_heatmaps(tmp / "poses.h5", tmp / f"{kind}.h5", BuildOptions(kind=kind))
            print(
                f"build-heatmaps --kind {kind}: {stats['clips']:.0f} clips in {stats['seconds']:.2f} s "
                f"({stats['clips'] / stats['seconds']:.0f} clips/s), {stats['bytes_per_clip'] / 1024:.1f} KiB per clip"
            )
            for clip_len in (32, 48):
                cfg = PoseViewConfig(clip_len=clip_len)
                train = HeatmapClips(tmp / f"{kind}.h5", "train", train=True, view=cfg)
                test = HeatmapClips(tmp / f"{kind}.h5", "test", train=False, view=cfg)
                train[0], test[0]  # open the files
                n = 100
                t0 = time.perf_counter()
                for i in range(n):
                    train[i % len(train)]
                dt_train = (time.perf_counter() - t0) / n
                t0 = time.perf_counter()
                for i in range(20):
                    test[i % len(test)]
                dt_test = (time.perf_counter() - t0) / 20
                print(
                    f"  {kind} clip_len {clip_len}: train sample (56x56) {1000 * dt_train:.2f} ms, "
                    f"test clip (20 views, 64x64) {1000 * dt_test:.2f} ms"
                )


if __name__ == "__main__":
    main()
