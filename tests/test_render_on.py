"""data.render_on: cuda renders the training heatmaps in the training step, on the run's device.

No GPU here: a CPU run takes the same code path (the loader hands over packed keypoints, the step
renders the batch on its device), and must train on exactly the heatmaps the loader would render.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import tiny_pose
from test_train_fused import tiny_fused

from mgcli.data import open_split
from mgcli.errors import MgError
from mgcli.heatmaps.build import BuildOptions, build_heatmaps
from mgcli.heatmaps.render import BatchRender, generate
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.poses import PosesWriter, VideoPoses
from mgcli.train.config import load_config
from mgcli.train.launch import launch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mixed_persons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A heatmaps.h5 (joint) whose train clips hold one, two and three persons."""
    d = tmp_path_factory.mktemp("persons")
    rng = np.random.default_rng(0)
    rows = []
    with PosesWriter(d / "poses.h5", "coco17", "test", ["a", "b"]) as w:
        for k, persons in enumerate((1, 2, 3)):
            kp = rng.uniform([20, 10], [180, 110], (persons, 30, 17, 2)).astype(np.float32)
            sc = rng.uniform(0.3, 1.0, (persons, 30, 17)).astype(np.float32)
            w.add_video(VideoPoses(f"v{k}", kp, sc, (120, 200), 25.0, 30))
            rows.append({"clip_id": f"v{k}_0", "video_id": f"v{k}", "start": 0, "end": 29, "label": k % 2})
        w.set_clips(pd.DataFrame(rows).assign(split="train"))
    build_heatmaps(d / "poses.h5", d / "heatmaps.h5", BuildOptions(kind="joint", size=48))
    return d / "heatmaps.h5"


def _cfg(path: Path, *extra: str):  # type: ignore[no-untyped-def]
    view = ["data.view.clip_len=12", "data.view.resize_short=48", "data.view.train_size=40", "data.view.test_size=48"]
    return load_config(None, ["model.name=posec3d_slowonly", f"data.path={path}", *view, *extra])


def test_batch_render_is_each_clip_rendered_alone() -> None:
    rng = np.random.default_rng(1)
    clips = [rng.uniform(-2, 34, (m, 6, 17, 2)).astype(np.float32) for m in (1, 2)]
    scores = [rng.uniform(0, 1, (m, 6, 17)).astype(np.float32) for m in (1, 2)]
    for kind in ("joint", "limb"):
        render = BatchRender((32, 28), 0.9, kind)
        packed = torch.zeros(2, 2, 6, 17, 3)  # the first clip's second person is padding: score 0
        for b, (kp, sc) in enumerate(zip(clips, scores, strict=True)):
            packed[b, : len(kp), ..., :2], packed[b, : len(kp), ..., 2] = torch.from_numpy(kp), torch.from_numpy(sc)
        got = render(packed)
        assert got.shape == (2, 17, 6, 32, 28) and got.is_contiguous()  # COCO-17: 17 joints, 17 limbs
        for b, (kp, sc) in enumerate(zip(clips, scores, strict=True)):
            torch.testing.assert_close(got[b], generate(kp, sc, (32, 28), 0.9, kind), rtol=0, atol=1e-6)


def test_device_batches_equal_the_loader_batches(mixed_persons: Path) -> None:
    for extra in ([], ["data.view.sigma=1.1"]):
        plain = open_split(_cfg(mixed_persons, *extra), "train", train=True)
        deferred = open_split(_cfg(mixed_persons, "data.render_on=cuda", *extra), "train", train=True)
        for epoch in (0, 3):
            plain.set_epoch(epoch)
            deferred.set_epoch(epoch)
            samples = [deferred[i] for i in range(3)]
            assert [s["x"].shape[0] for s, _ in samples] == [1, 2, 3]  # packed keypoints, a person axis
            x, y = deferred.collate(samples)
            want, want_y = plain.collate([plain[i] for i in range(3)])
            torch.testing.assert_close(deferred.device_batch(x)["x"], want["x"], rtol=0, atol=1e-6)
            assert torch.equal(y, want_y)
    # evaluation views are untouched
    test_plain = open_split(_cfg(mixed_persons), "train", train=False)
    test_deferred = open_split(_cfg(mixed_persons, "data.render_on=cuda"), "train", train=False)
    assert not test_deferred.deferred
    assert torch.equal(test_deferred[1][0]["x"], test_plain[1][0]["x"])


def test_a_run_with_render_on_cuda_trains_exactly_as_with_the_loader(train_artifacts: Path, tmp_path: Path) -> None:
    """Same seed, same heatmaps: the weights after two epochs are the same (up to float rounding of
    the renders, which agree to 1e-6)."""
    for name, extra in (("loader", []), ("device", ["data.render_on=cuda"])):
        args = tiny_pose(train_artifacts, tmp_path, f"name={name}", "train.epochs=2", "data.workers=0", *extra)
        launch(load_config(None, args), quiet=True)
    a, b = (load_checkpoint(tmp_path / n / "last.pt") for n in ("loader", "device"))
    assert [r["train_loss"] for r in a["history"]] == pytest.approx([r["train_loss"] for r in b["history"]], abs=1e-5)
    for k, v in a["state_dict"].items():
        if v.is_floating_point():
            torch.testing.assert_close(v, b["state_dict"][k], rtol=1e-4, atol=1e-5, msg=k)


def test_fused_rgbpose_renders_its_pose_heatmaps_on_the_device(train_artifacts: Path, tmp_path: Path) -> None:
    cfg = load_config(None, tiny_fused(train_artifacts, tmp_path))
    plain = open_split(cfg, "train", train=True)
    cfg_cuda = load_config(None, tiny_fused(train_artifacts, tmp_path, "data.render_on=cuda"))
    deferred = open_split(cfg_cuda, "train", train=True)
    x, _ = deferred.collate([deferred[i] for i in range(2)])
    assert x["pose"].shape[-1] == 3  # packed keypoints until the device renders them
    want, _ = plain.collate([plain[i] for i in range(2)])
    got = deferred.device_batch(x)
    torch.testing.assert_close(got["pose"], want["pose"], rtol=0, atol=1e-6)
    assert torch.equal(got["rgb"], want["rgb"])
    launch(load_config(None, tiny_fused(train_artifacts, tmp_path, "name=f", "train.epochs=1", "data.render_on=cuda")))
    assert (tmp_path / "f" / "scores-test.csv").is_file()


def test_render_on_cuda_needs_heatmaps(train_artifacts: Path) -> None:
    cfg = load_config(
        None, ["model.name=agcn", f"data.path={train_artifacts / 'poses.h5'}", "data.render_on=cuda"], recipe=True
    )
    with pytest.raises(MgError, match="render_on: cuda renders heatmaps"):
        open_split(cfg, "train", train=True)
    with pytest.raises(MgError, match="data.render_on"):
        load_config(None, ["data.render_on=gpu"])
