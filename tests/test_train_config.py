"""Run configs: YAML + dotted overrides, unknown keys and wrong types refused, schedules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mgcli.errors import MgError
from mgcli.train.config import RunConfig, config_from_dict, dump_config, load_config
from mgcli.train.optim import lr_at

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def test_every_pipeline_config_loads() -> None:
    files = sorted(PIPELINES.glob("*.yaml"))
    assert len(files) >= 4
    import inspect

    from mgcli.data import view_config
    from mgcli.models import MODELS, check_options

    for f in files:
        cfg = load_config(f)
        assert cfg.name == f.stem
        spec = MODELS[cfg.model["name"]]  # a registered model, its options the builder's, its view the data's
        accepted = set(inspect.signature(spec.builder).parameters)
        assert set(cfg.model) - {"name"} <= accepted, (f.name, set(cfg.model) - {"name"} - accepted)
        check_options(spec.builder, {k: v for k, v in cfg.model.items() if k != "name"}, f.name, spec.sections)
        view_config(spec.input_kind, cfg.data.view, f)


def test_overrides_reach_nested_fields_and_keep_types(tmp_path: Path) -> None:
    cfg = load_config(
        PIPELINES / "imigue_pose_joint.yaml",
        [
            "train.epochs=3",
            "optim.lr=0.01",
            "model.base_channels=8",
            "data.view.clip_len=16",
            "schedule.milestones=[2, 4]",
            "train.grad_clip=null",
            "name=x",
        ],
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.optim.lr == 0.01
    assert cfg.model["base_channels"] == 8 and cfg.model["name"] == "posec3d_slowonly"
    assert cfg.data.view["clip_len"] == 16 and cfg.data.view["num_clips"] == 10
    assert cfg.schedule.milestones == (2, 4)
    assert cfg.train.grad_clip is None
    assert cfg.name == "x" and cfg.run_dir == Path("runs/x")
    # the resolved config round-trips through YAML and a checkpoint's plain dict
    import yaml

    again = config_from_dict(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_int_is_accepted_for_float_but_not_the_reverse() -> None:
    assert load_config(None, ["optim.lr=1"]).optim.lr == 1.0
    with pytest.raises(MgError, match=r"train.epochs must be int, got 2.5"):
        load_config(None, ["train.epochs=2.5"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", r"unknown key train.epoch \(known: epochs, min_steps, batch_size"),
        ("trian.epochs=3", r"unknown key trian"),
        ("train.batch_size=eight", r"train.batch_size must be int, got 'eight'"),
        ("train.amp=maybe", r"train.amp must be bool"),
        ("schedule.milestones=5", r"schedule.milestones must be a list"),
        ("schedule.kind=linear", r"schedule.kind must be one of cosine, multistep, got 'linear'"),
        ("train.epochs=0", r"train.epochs must be at least 1"),
        ("optim=3", r"optim must be a mapping"),
        ("train.epochs", r"is not KEY=VALUE"),
    ],
)
def test_bad_overrides_get_one_clear_line(override: str, message: str) -> None:
    with pytest.raises(MgError, match=message):
        load_config(None, [override])


def test_bad_config_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n  warmup: 2\n")
    with pytest.raises(MgError, match=r"bad.yaml: unknown key train.warmup"):
        load_config(bad)
    bad.write_text("train: [1, 2\n")
    with pytest.raises(MgError, match=r"bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(MgError, match=r"missing.yaml: config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_schedules_warmup_cosine_multistep() -> None:
    cfg = RunConfig()
    cfg.train.epochs, cfg.optim.lr = 10, 1.0
    cfg.schedule.warmup_epochs, cfg.schedule.warmup_ratio = 2.0, 0.1
    assert lr_at(cfg, 0.0) == pytest.approx(0.1)
    assert lr_at(cfg, 1.0) == pytest.approx(0.55)
    assert lr_at(cfg, 2.0) == pytest.approx(1.0)
    assert lr_at(cfg, 6.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(cfg, 10.0) == pytest.approx(0.0)
    cfg.schedule.kind, cfg.schedule.warmup_epochs, cfg.schedule.milestones = "multistep", 0.0, (8, 22)
    assert [lr_at(cfg, e) for e in (0, 7.9, 8, 21.5, 22, 29)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_fixed_length_tuples_in_view_options() -> None:
    from mgcli.data import view_config

    cfg = view_config("frames", {"area_range": [0.3, 1], "clip_len": 4})
    assert cfg.area_range == (0.3, 1.0) and cfg.clip_len == 4
    with pytest.raises(MgError, match=r"data.view.area_range must be a list of 2 values"):
        view_config("heatmaps", {"area_range": [0.3]})
    with pytest.raises(MgError, match=r"data.view.area_range\[1\] must be float, got 'x'"):
        view_config("heatmaps", {"area_range": [0.3, "x"]})


def test_optimizers() -> None:
    import torch

    from mgcli.train.optim import make_optimizer

    model = torch.nn.Linear(3, 2)
    sgd = make_optimizer(load_config(None, ["optim.lr=0.2", "optim.nesterov=false"]), model)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9 and not sgd.defaults["nesterov"]
    adamw = make_optimizer(
        load_config(None, ["optim.name=adamw", "optim.lr=0.001", "optim.betas=[0.8, 0.99]", "optim.weight_decay=0.05"]),
        model,
    )
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["betas"] == (0.8, 0.99) and adamw.defaults["weight_decay"] == 0.05
    with pytest.raises(MgError, match="optim.name must be one of sgd, adamw, got 'adam'"):
        load_config(None, ["optim.name=adam"])


def test_float_overrides_in_exponent_notation():
    cfg = load_config(None, ["optim.lr=3e-3", "optim.weight_decay=1E-4", "schedule.min_lr=-0e+0"])
    assert cfg.optim.lr == 0.003 and cfg.optim.weight_decay == 1e-4 and cfg.schedule.min_lr == 0.0
    with pytest.raises(MgError, match="optim.lr"):
        load_config(None, ["optim.lr=3e-x"])
