"""Shared fixtures: a tiny hand-made release that mirrors the real file formats."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

SMALL_SAMPLE_ARGS = dict(videos=3, gestures=4, height=96, width=160, fps=25.0, seed=7)


def _small_sample_config():  # noqa: ANN202 - imported lazily to keep collection fast
    from mgcli.dataset.sample import SampleConfig

    return SampleConfig(**SMALL_SAMPLE_ARGS)


# A light_hand header as a spreadsheet export would have it.
LH_HEADER = "frame," + ",".join(f"{a}{j}" for j in range(35) for a in ("x", "y", "c"))


def write_video(path: Path, frames: int, size: tuple[int, int] = (48, 64), fps: float = 25.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    for t in range(frames):
        img = np.full((*size, 3), (t * 7) % 255, np.uint8)
        w.write(img)
    w.release()


def openpose_rows(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.round(rng.uniform(0, 600, size=(frames, 137, 3)), 3)
    kp[..., 2] = np.round(rng.uniform(0, 1, size=(frames, 137)), 3)
    return kp


def write_xlsx_openpyxl(path: Path, kp: np.ndarray, blank_row: int | None = None) -> None:
    """An xlsx as a spreadsheet program writes it (openpyxl, not our writer)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for t, row in enumerate(kp.reshape(len(kp), -1).tolist()):
        ws.append([None] * len(row) if t == blank_row else row)
    wb.save(path)


def write_light_hand(path: Path, kp35: np.ndarray, header: bool, frames: list[int] | None = None) -> None:
    frames = list(range(len(kp35))) if frames is None else frames
    lines = [LH_HEADER] if header else []
    for f, row in zip(frames, kp35.reshape(len(kp35), -1).tolist(), strict=True):
        lines.append(",".join([str(f)] + [f"{v:.3f}" for v in row]))
    path.write_text("\r\n".join(lines) + "\r\n")


def emotion_sample_via_cli(root: Path, videos: int, seconds: float) -> Path:
    """``mg sample-data ROOT --preset emotion`` with ``videos`` videos of ``seconds``, through the CLI."""
    from typer.testing import CliRunner

    from mgcli.cli import app

    args = [
        "--quiet",
        "sample-data",
        str(root),
        "--preset",
        "emotion",
        "--videos",
        str(videos),
        "--seconds",
        str(seconds),
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-video synthetic sample (one per split), generated once per test session."""
    from mgcli.dataset.sample import generate_sample

    out = tmp_path_factory.mktemp("sample") / "s"
    generate_sample(out, _small_sample_config(), workers=1)
    return out


@pytest.fixture
def mini_release(tmp_path: Path) -> Path:
    """Three videos, one per split, in three of the release's folder variants.

    0101 train: xlsx + light_hand (header) + mp4 (40 frames)
    0202 val:   light_hand without header, no video
    0303 test:  xlsx only, mp4 under imigue_rgb_phase2, dummy labels
    """
    root = tmp_path / "release"
    d = root / "imigue_skeleton_train" / "0101"
    d.mkdir(parents=True)
    (d / "0101_label.csv").write_text("4,0,9\n99,12,20\n26,25,39\n")
    kp = openpose_rows(40)
    write_xlsx_openpyxl(d / "0101_openpose.xlsx", kp)
    write_light_hand(
        d / "0101_light_hand.csv",
        kp[:, list(range(25)) + [99, 103, 107, 111, 115, 120, 124, 128, 132, 136]],
        header=True,
    )
    rgb = root / "train_data" / "0101"
    write_video(rgb / "0101.mp4", 40)
    (rgb / "0101_label.csv").write_text("4,0,9\n99,12,20\n26,25,39\n")

    d = root / "imigue_skeleton_validate" / "0202"
    d.mkdir(parents=True)
    (d / "0202_label.csv").write_text("11,2,8\n")
    write_light_hand(d / "0202_light_hand.csv", openpose_rows(10, 1)[:, :35], header=False)

    d = root / "imigue_skeleton_test" / "0303"
    d.mkdir(parents=True)
    (d / "0303_label.csv").write_text("1,0,5\n1,6,14\n")
    write_xlsx_openpyxl(d / "0303_openpose.xlsx", openpose_rows(15, 2))
    write_video(root / "imigue_rgb_phase2" / "0303" / "0303.mp4", 15)
    return root


@pytest.fixture(scope="session")
def train_artifacts(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """poses.h5, frames.h5 (64 px) and heatmaps-joint.h5 of the small sample, built once per session."""
    from mgcli.heatmaps.build import BuildOptions, build_heatmaps
    from mgcli.pose.extract import ExtractOptions, extract_pose

    d = tmp_path_factory.mktemp("artifacts")
    extract_pose(
        small_sample, d / "poses.h5", ExtractOptions(layout="coco17", frames_out=d / "frames.h5", frame_size=64)
    )
    build_heatmaps(d / "poses.h5", d / "heatmaps-joint.h5", BuildOptions(kind="joint", size=64))
    return d


@pytest.fixture(scope="module")
def one_thread():  # noqa: ANN201 - a generator fixture
    """Tiny tensors gain nothing from threads; one keeps these tests steady on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
