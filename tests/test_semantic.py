"""The MiGA 2023 semantic embedding loss: class-vector files, the loss, and a training run with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from mgcli.cli import app
from mgcli.errors import DataError, MgError
from mgcli.io.checkpoint import load_checkpoint
from mgcli.io.heatmaps import HeatmapsFile
from mgcli.io.scores import read_scores
from mgcli.models import build_model
from mgcli.models.semantic import SemanticEmbedding, read_class_vectors
from mgcli.train.config import load_config
from mgcli.train.launch import launch

runner = CliRunner()


def tiny_pose(artifacts: Path, out: Path, *extra: str) -> list[str]:
    return [
        "model.name=posec3d_slowonly",
        "model.base_channels=4",
        "model.stage_blocks=[1,1,1]",
        "data.view.clip_len=8",
        "data.view.num_clips=2",
        "train.batch_size=4",
        f"data.path={artifacts / 'heatmaps-joint.h5'}",
        f"out_dir={out}",
        *extra,
    ]


def _glove(path: Path, rows: dict[str, list[float]]) -> Path:
    path.write_text("".join(f"{w} {' '.join(str(v) for v in vec)}\n" for w, vec in rows.items()))
    return path


def test_class_vectors_from_a_glove_file_and_npy(tmp_path: Path) -> None:
    glove = _glove(
        tmp_path / "glove.txt",
        {
            "the": [9.0, 9.0, 9.0],
            "touch": [1.0, 0.0, 2.0],
            "face": [3.0, 4.0, 0.0],
            "rub": [0.0, 1.0, 0.0],
            "eyes": [2.0, 1.0, 1.0],
            "rub_eyes": [5.0, 5.0, 5.0],
            "Illustrative": [0.5, 0.5, 0.5],
        },
    )
    v = read_class_vectors(glove, ["touch face", "rub eyes", "illustrative"])
    np.testing.assert_allclose(v[0], [2.0, 2.0, 1.0])  # the mean of its words
    np.testing.assert_allclose(v[1], [5.0, 5.0, 5.0])  # its own line (name with _) wins over its words
    np.testing.assert_allclose(v[2], [0.5, 0.5, 0.5])  # tokens are matched lower-cased
    with pytest.raises(DataError, match=r"no vector for 1 class\(es\): 'bite nails' \(bite, nails\)"):
        read_class_vectors(glove, ["touch face", "bite nails"])
    np.save(tmp_path / "v.npy", np.arange(6, dtype=np.float64).reshape(2, 3) + 1)
    assert read_class_vectors(tmp_path / "v.npy", ["a", "b"]).dtype == np.float32
    with pytest.raises(DataError, match=r"must be a \[3, D\] array"):
        read_class_vectors(tmp_path / "v.npy", ["a", "b", "c"])
    bad = _glove(tmp_path / "bad.txt", {"touch": [1.0, 2.0], "face": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="line 2 has 3 values, earlier lines 2"):
        read_class_vectors(bad, ["touch face"])
    with pytest.raises(DataError, match="no such class-vector file"):
        read_class_vectors(tmp_path / "absent.txt", ["a"])


def test_loss_is_cross_entropy_of_cosine_similarities() -> None:
    torch.manual_seed(0)
    vectors = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    sem = SemanticEmbedding(4, vectors, tau=0.5, weight=0.3)
    f = torch.randn(5, 4)
    z = sem.proj(f)
    cos = torch.stack([F.cosine_similarity(z, v.expand_as(z), dim=1) for v in vectors], dim=1)
    np.testing.assert_allclose(sem(f).detach(), (cos / 0.5).detach(), atol=1e-6)
    y = torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(sem.loss(sem(f), y), 0.3 * F.cross_entropy(cos / 0.5, y))


def test_the_semantic_term_trains_the_backbone() -> None:
    model = build_model("posec3d_slowonly", 3, in_channels=5, base_channels=4, stage_blocks=(1, 1, 1))
    model.attach_semantic(SemanticEmbedding(model.head.in_channels, torch.eye(3), tau=0.1))
    x, y = torch.rand(2, 5, 4, 16, 16), torch.tensor([0, 2])
    model.train()
    out = model(x, labels=y)
    assert set(out) == {"logits", "semantic"}
    terms = model.loss(out, y)
    assert set(terms) == {"ce", "semantic"}
    terms["semantic"].backward()
    assert model.semantic.proj.weight.grad.abs().sum() > 0
    assert model.backbone.stem.conv.weight.grad.abs().sum() > 0
    assert model.head.fc.weight.grad is None or model.head.fc.weight.grad.abs().sum() == 0
    model.eval()
    assert model(x, labels=y).shape == (2, 3)  # evaluation: logits only


def test_training_with_class_vectors(train_artifacts: Path, tmp_path: Path, one_thread: None) -> None:
    with HeatmapsFile(train_artifacts / "heatmaps-joint.h5") as hm:
        names = list(hm.class_names)
    rng = np.random.default_rng(0)
    words = {w for n in names for w in n.split()}
    glove = _glove(tmp_path / "glove.txt", {w: rng.normal(size=8).round(4).tolist() for w in sorted(words)})
    cfg = load_config(
        None,
        tiny_pose(
            train_artifacts,
            tmp_path,
            "name=sem",
            "train.epochs=2",
            "data.workers=0",
            f"train.semantic_vectors={glove}",
            "train.semantic_weight=0.5",
        ),
    )
    metrics = launch(cfg, quiet=True)
    run = tmp_path / "sem"
    losses = [r["loss_semantic"] for r in load_checkpoint(run / "last.pt")["history"]]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any(k.startswith("semantic.") for k in load_checkpoint(run / "last.pt")["state_dict"])
    assert not any(k.startswith("semantic.") for k in load_checkpoint(run / "model.pt")["state_dict"])
    # model.pt evaluates without the vector file, to the run's scores
    glove.unlink()
    res = runner.invoke(app, ["evaluate", str(run / "model.pt"), "--split", "test", "-o", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(
        read_scores(tmp_path / "t.csv").probs, read_scores(run / "scores-test.csv").probs, atol=2e-6
    )
    assert metrics["splits"]["test"]["n"] > 0
    # a missing file fails before training, in one line
    cfg = load_config(None, tiny_pose(train_artifacts, tmp_path, "name=sem2", f"train.semantic_vectors={glove}"))
    with pytest.raises(DataError, match="no such class-vector file"):
        launch(cfg, quiet=True)
    assert not (tmp_path / "sem2" / "last.pt").exists()


def test_semantic_loss_refused_for_two_pathway_models(tmp_path: Path) -> None:
    from mgcli.train.build import build_for_data

    cfg = load_config(
        None,
        [
            "model.name=rgbpose_conv3d",
            "model.rgb={base_channels: 8, stage_blocks: [1,1,1,1]}",
            "model.pose={base_channels: 8, stage_blocks: [1,1,1]}",
            f"train.semantic_vectors={tmp_path / 'v.npy'}",
        ],
    )
    with pytest.raises(MgError, match="needs a single-stream PoseConv3D / SlowOnly model, not rgbpose_conv3d"):
        build_for_data(
            cfg,
            3,
            "rgbpose",
            {"rgb": {"in_channels": 3}, "pose": {"in_channels": 17}},
            training_classes=["a", "b", "c"],
        )
