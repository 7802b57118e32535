"""Run configs: YAML files in ``pipelines/`` plus ``key.sub=value`` overrides, checked into dataclasses.

A config has the sections below; every field can be overridden on the command line with a dotted
path (``train.epochs=3``, ``model.base_channels=8``, ``data.view.clip_len=16``). Unknown keys and
values of the wrong type are refused with one line naming the file and the key. ``model`` holds
the model name plus the builder's options (checked against the builder's signature), and
``data.view`` the sampling/augmentation options of the artifact's dataset (pose heatmaps or RGB
frames), checked against that dataset's view config.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mgcli import typecheck
from mgcli.errors import MgError


@dataclass
class DataConfig:
    path: str = ""  # heatmaps-*.h5 (pose) or frames.h5 (RGB)
    poses: str = ""  # poses.h5: person boxes (RGB with view.compact), keypoints (two-pathway models)
    streams: tuple[str, ...] = ()  # emotion models: more embeddings.h5 files (one per stream) besides data.path
    view: dict[str, Any] = field(default_factory=dict)  # the dataset's view options (clip_len, sizes, ...)
    workers: int = 2  # DataLoader workers per process
    # Where training heatmaps are rendered (PoseConv3D and RGBPoseConv3D): "cpu" in the DataLoader
    # workers; "cuda" in the training step, one batch at a time on the run's device (the GPU, so a
    # multi-GPU node is not bound by CPU rendering; a CPU-only run takes the same path on its CPU).
    render_on: Literal["cpu", "cuda"] = "cpu"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1  # the peak lr, for a global batch of lr_batch clips when that is set
    # The global batch ``lr`` is meant for: the lr used is lr x (batch_size x processes) / lr_batch
    # (the linear scaling rule), so a config keeps its recipe on 1 GPU or 8. 0: lr as given.
    lr_batch: int = 0
    momentum: float = 0.9  # sgd
    weight_decay: float = 3e-4
    nesterov: bool = True  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adamw


@dataclass
class ScheduleConfig:
    kind: Literal["cosine", "multistep"] = "cosine"
    milestones: tuple[int, ...] = ()  # multistep: epochs where the lr is multiplied by gamma
    gamma: float = 0.1
    min_lr: float = 0.0  # cosine: final lr
    warmup_epochs: float = 0.0  # linear warm-up (may be fractional), per iteration
    warmup_ratio: float = 0.1  # warm-up starts at lr x warmup_ratio


@dataclass
class TrainConfig:
    epochs: int = 24
    # Fewest optimiser steps a run takes: when epochs x steps per epoch falls short (a small data
    # set), the run gets more epochs and the whole schedule (warm-up, milestones, cosine,
    # val_every) stretches with them. 0: exactly ``epochs``.
    min_steps: int = 0
    batch_size: int = 16  # per process: the global batch is batch_size x processes (GPUs)
    grad_clip: float | None = 40.0  # max gradient norm; null disables
    label_smoothing: float = 0.0
    amp: bool = True  # CUDA only: float16 autocast + gradient scaling
    channels_last: bool = True  # channels_last_3d memory format (CUDA, and 1.3-2x faster on CPU too)
    val_every: int = 1  # evaluate on the validation split every N epochs (0: only at the end)
    # Test clips per validation clip during training (pyskl validates on 1, tests on 10); 0: the
    # test views (data.view.num_clips). The best weights' val and test scores use the test views.
    val_clips: int = 0
    eval_batch_size: int = 2  # clips per evaluation batch (each clip has several views)
    late_fusion: tuple[float, float] = (1.0, 1.0)  # two-pathway models: rgb:pose weights of the test-time fusion
    semantic_vectors: str = ""  # class-vector file (GloVe text or .npy): the MiGA 2023 semantic embedding loss
    semantic_weight: float = 1.0  # its weight next to the cross-entropy
    semantic_tau: float = 0.1  # temperature of its cosine-similarity logits


@dataclass
class RunConfig:
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    deterministic: bool = True  # torch.use_deterministic_algorithms where torch allows
    model: dict[str, Any] = field(default_factory=lambda: {"name": "posec3d_slowonly"})
    init_from: tuple[str, ...] = ()  # two-pathway models: the RGB and pose branch checkpoints to start from
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the dict dumps to YAML/JSON and loads with weights_only."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def coerce(value: Any, tp: Any, key: str, where: str | Path | None) -> Any:
    """``value`` checked against the annotation ``tp`` (YAML lists become tuples, ints floats);
    a mismatch is one line naming the key (and the element inside it)."""
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, prefix=f"{key}.")
    args = typing.get_args(tp)
    if len(args) == 2 and type(None) in args and any(dataclasses.is_dataclass(a) for a in args):
        # an optional section: null or false (off), true (its defaults) or a mapping of its fields
        sub = next(a for a in args if a is not type(None))
        if value is None or value is False:
            return None
        return from_dict(sub, {} if value is True else value, where, prefix=f"{key}.")
    try:
        return typecheck.coerce(value, tp)
    except typecheck.Mismatch as m:
        expected = typecheck.describe(m.hint)
        if expected.startswith(("list", "mapping")):
            expected = f"a {expected}"
        raise MgError(f"{key}{m.suffix} must be {expected}, got {m.value!r}", where) from None


def from_dict(cls: type, values: Any, where: str | Path | None = None, prefix: str = "") -> Any:
    """Build the dataclass ``cls`` from a mapping, refusing unknown keys and wrong types."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise MgError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {values!r}", where)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise MgError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(names)})", where)
    kwargs = {k: coerce(v, hints[k], f"{prefix}{k}", where) for k, v in values.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
        raise MgError(f"override {text!r} is not KEY=VALUE (e.g. train.epochs=3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for p in path[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise MgError(f"override {text!r}: {p} is not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def load_config(path: str | Path | None, overrides: list[str] = (), recipe: bool = False) -> RunConfig:
    """The run config from a YAML file (or the defaults; with ``recipe``, the model's recipe) with
    ``overrides`` applied. The training commands pass ``recipe`` when no config file is given."""
    raw: dict[str, Any] = {}
    if path is None and recipe:  # the model's recipe (mgcli/train/recipes.py) under the overrides
        from mgcli.train.recipes import model_recipe

        name = apply_overrides({}, [o for o in overrides if o.split("=", 1)[0].strip() == "model.name"])
        raw = model_recipe(name.get("model", {}).get("name", RunConfig().model["name"]))
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MgError("config file not found", path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise MgError(f"not valid YAML ({str(e).splitlines()[0]})", path) from None
        if not isinstance(raw, dict):
            raise MgError("a config must be a mapping of sections", path)
        if "name" not in raw:
            raw["name"] = path.stem
    raw = apply_overrides(raw, list(overrides))
    cfg = from_dict(RunConfig, raw, path)
    if not isinstance(cfg.model.get("name"), str):
        raise MgError("model.name must name a model (see `mg models`)", path)
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(cfg.train, key) < 1:
            raise MgError(f"train.{key} must be at least 1", path)
    if cfg.train.min_steps < 0 or cfg.optim.lr_batch < 0:
        raise MgError("train.min_steps and optim.lr_batch must be 0 or more", path)
    o, sch, t = cfg.optim, cfg.schedule, cfg.train
    checks = [
        (o.lr >= 0, f"optim.lr must be 0 or more, not {o.lr}"),
        (o.weight_decay >= 0, f"optim.weight_decay must be 0 or more, not {o.weight_decay}"),
        (0 <= o.momentum < 1, f"optim.momentum must be in [0, 1), not {o.momentum}"),
        (all(0 <= b < 1 for b in o.betas), f"optim.betas must be in [0, 1), not {list(o.betas)}"),
        (sch.gamma > 0, f"schedule.gamma must be positive, not {sch.gamma}"),
        (sch.min_lr >= 0, f"schedule.min_lr must be 0 or more, not {sch.min_lr}"),
        (sch.warmup_epochs >= 0, f"schedule.warmup_epochs must be 0 or more, not {sch.warmup_epochs}"),
        (0 <= sch.warmup_ratio <= 1, f"schedule.warmup_ratio must be in [0, 1], not {sch.warmup_ratio}"),
        (all(m >= 0 for m in sch.milestones), "schedule.milestones must be epochs (0 or more)"),
        (t.grad_clip is None or t.grad_clip > 0, f"train.grad_clip must be positive or null, not {t.grad_clip}"),
        (0 <= t.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), not {t.label_smoothing}"),
        (t.val_every >= 0, f"train.val_every must be 0 or more, not {t.val_every}"),
        (t.val_clips >= 0, f"train.val_clips must be 0 or more, not {t.val_clips}"),
        (t.semantic_weight >= 0, f"train.semantic_weight must be 0 or more, not {t.semantic_weight}"),
        (t.semantic_tau > 0, f"train.semantic_tau must be positive, not {t.semantic_tau}"),
        (cfg.seed >= 0, f"seed must be 0 or more, not {cfg.seed}"),
    ]
    for ok, message in checks:
        if not ok:
            raise MgError(message, path)
    if cfg.data.workers < 0:
        raise MgError("data.workers must be 0 or more", path)
    if min(cfg.train.late_fusion) < 0 or sum(cfg.train.late_fusion) <= 0:
        raise MgError("train.late_fusion must be two weights >= 0, not both 0", path)
    if cfg.init_from and len(cfg.init_from) != 2:
        raise MgError(f"init_from needs two checkpoints (RGB, pose), got {len(cfg.init_from)}", path)
    return cfg


def config_from_dict(raw: dict[str, Any], where: str | Path | None = None) -> RunConfig:
    """A config saved in a checkpoint or a run folder, checked the same way."""
    return from_dict(RunConfig, raw, where)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
