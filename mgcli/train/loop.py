"""The one training loop: every model (pose branch, RGB branch, later fused / GCN / token fusion) trains here.

A run writes ``runs/NAME/``:

- ``config.yaml``      the resolved config (file + overrides);
- ``last.pt``          everything needed to continue (weights, optimizer, scaler, epoch, RNG states,
                       history, best score), rewritten atomically after every epoch; ``--resume``
                       continues from it and gives the same weights as an uninterrupted run;
- ``model.pt``         the best weights by validation top-1 (the last ones without a validation
                       split), in the checkpoint format of ``mgcli.io.checkpoint``;
- ``scores-val.csv``, ``scores-test.csv``   softmax probabilities averaged over the test views
                       (two-pathway models: the late fusion of the modalities, ``train.late_fusion``,
                       1:1 by default; ``scores-{split}-rgb.csv`` / ``-pose.csv`` hold each modality);
- ``metrics.json``     history per epoch, top-1/top-5/per-class accuracy, timings;
- ``curves.png``, ``confusion-{split}.png``.

Each process draws its own shard of every epoch's permutation; evaluation shards the clips without
padding and gathers them, so the scores hold every clip exactly once.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mgcli.errors import MgError, OutputExistsError
from mgcli.io.atomic import atomic_output
from mgcli.io.checkpoint import load_checkpoint, save_checkpoint
from mgcli.train import distributed as dist_
from mgcli.train.config import RunConfig, config_from_dict, dump_config
from mgcli.train.data import data_kind, open_split, split_names, view_config
from mgcli.train.distributed import Context
from mgcli.train.progress import Reporter, RichReporter

RUN_FILES = (
    "last.pt",
    "model.pt",
    "config.yaml",
    "metrics.json",
    "scores-val.csv",
    "scores-test.csv",
    "scores-val-rgb.csv",
    "scores-val-pose.csv",
    "scores-test-rgb.csv",
    "scores-test-pose.csv",
    "curves.png",
    "confusion-val.png",
    "confusion-test.png",
)
# Keys that may differ when a run is resumed (they change how, not what, is computed) -- and epochs,
# to extend a finished run.
RESUMABLE_CHANGES = {"train.epochs", "data.workers", "train.eval_batch_size", "out_dir"}


# ----------------------------------------------------------------------------------------- schedule


def lr_at(cfg: RunConfig, epoch: float) -> float:
    """The learning rate at fractional ``epoch`` (warm-up, then cosine or multistep), per iteration."""
    base, s = cfg.optim.lr, cfg.schedule
    if s.warmup_epochs > 0 and epoch < s.warmup_epochs:
        return base * (s.warmup_ratio + (1.0 - s.warmup_ratio) * epoch / s.warmup_epochs)
    if s.kind == "multistep":
        return base * s.gamma ** sum(epoch >= m for m in s.milestones)
    span = max(cfg.train.epochs - s.warmup_epochs, 1e-9)
    t = min(max((epoch - s.warmup_epochs) / span, 0.0), 1.0)
    return s.min_lr + (base - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


# ------------------------------------------------------------------------------------------- model


def build_for_data(
    cfg: RunConfig, num_classes: int, in_channels: int | dict[str, int], kind: str, where: Path | None = None,
    load_pretrained: bool = True, training_classes: list[str] | None = None, graph: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """The config's model, checked against the data it reads (``load_pretrained=False`` when
    its weights will come from a checkpoint anyway: no download of ``pretrained`` weights).
    ``in_channels``: the dataset's channels (per modality for ``rgbpose``). ``training_classes``
    (the class names) builds the model for training: with its training-only parts, such as the
    semantic embedding loss of ``train.semantic_vectors``. ``graph`` (skeleton data: its ``layout``
    and ``num_person``) fills the graph network's options of the same names, which must agree."""
    model = _build_for_data(cfg, num_classes, in_channels, kind, where, load_pretrained, graph)
    if training_classes is not None and cfg.train.semantic_vectors:
        from mgcli.models.classifier import Classifier
        from mgcli.models.semantic import SemanticEmbedding, read_class_vectors

        if not isinstance(model, Classifier):
            raise MgError(f"train.semantic_vectors needs a single-stream PoseConv3D / SlowOnly model, not "
                          f"{cfg.model['name']}", where)  # fmt: skip
        if cfg.train.semantic_tau <= 0:
            raise MgError(f"train.semantic_tau must be positive, got {cfg.train.semantic_tau}", where)
        vectors = read_class_vectors(cfg.train.semantic_vectors, training_classes)
        model.attach_semantic(SemanticEmbedding(model.head.in_channels, vectors, cfg.train.semantic_tau,
                                                cfg.train.semantic_weight))  # fmt: skip
    return model


def inference_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without training-only parts (what ``model.pt`` holds)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("semantic.")}


def load_inference_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an :func:`inference_state` into a model that may carry training-only parts."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("semantic.")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing[:4]}, unexpected {unexpected[:4]}")


def _graph_options(options: dict[str, Any], graph: dict[str, Any], prefix: str, where: Path | None) -> dict[str, Any]:
    """``options`` with the data's skeleton ``layout`` and ``num_person`` filled in (or checked)."""
    out = dict(options)
    for key, value in graph.items():
        given = out.setdefault(key, value)
        if given != value:
            raise MgError(f"model.{prefix}{key} is {given!r} but the skeleton data has {value!r} (data.view.{key}); "
                          "leave the model's unset or set both", where)  # fmt: skip
    return out


def _build_for_data(
    cfg: RunConfig, num_classes: int, in_channels: int | dict[str, int], kind: str, where: Path | None,
    load_pretrained: bool, graph: dict[str, Any] | None = None,
) -> torch.nn.Module:
    from mgcli.models import MODELS, build_model

    options = {k: v for k, v in cfg.model.items() if k != "name"}
    if graph is not None:
        if kind == "poses":
            options = _graph_options(options, graph, "", where)
        elif kind == "rgbskeleton":
            sub = options.get("skeleton") or {}
            if not isinstance(sub, dict):
                raise MgError(f"model.skeleton must be a mapping of AGCN options, got {sub!r}", where)
            options["skeleton"] = _graph_options(sub, graph, "skeleton.", where)
    if not load_pretrained and "pretrained" in options:
        options["pretrained"] = None
    if not load_pretrained and isinstance(options.get("video"), dict) and "pretrained" in options["video"]:
        options["video"] = {**options["video"], "pretrained": None}
    name = cfg.model["name"]
    spec = MODELS.get(name)
    if spec is not None and spec.input_kind != kind:
        raise MgError(f"model {name} reads {spec.input_kind}, but data.path is a {kind} artifact", where)
    if isinstance(in_channels, dict):
        for mod, c in in_channels.items():
            given = options.pop(f"{mod}_in_channels", None)
            if given is not None and given != c:
                raise MgError(f"model.{mod}_in_channels is {given} but the data has {c} {mod} channels", where)
        return build_model(name, num_classes, **{f"{m}_in_channels": c for m, c in in_channels.items()}, **options)
    given = options.pop("in_channels", None)
    if given is not None and given != in_channels:
        raise MgError(f"model.in_channels is {given} but the data has {in_channels} channels", where)
    return build_model(name, num_classes, in_channels=in_channels, **options)


# -------------------------------------------------------------------------------------- evaluation


@dataclass
class Predictions:
    clip_ids: list[str]
    labels: np.ndarray  # int64 [N], -1 unknown
    probs: np.ndarray  # float64 [N, K] (multi-modal models: the late fusion of ``parts``)
    parts: dict[str, np.ndarray] | None = None  # multi-modal models: each modality's probabilities

    @property
    def loss(self) -> float | None:
        known = self.labels >= 0
        if not known.any():
            return None
        p = self.probs[known, self.labels[known]]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())


def _autocast(ctx: Context, enabled: bool) -> Any:
    return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=enabled and ctx.cuda)


def channels_last_3d(model: torch.nn.Module) -> torch.nn.Module:
    """The model's 5-D weights (3D convolutions) in the channels_last_3d memory format; models
    that mix in 2-D convolutions (graph networks) keep those as they are, which
    ``Module.to(memory_format=...)`` refuses to do."""
    for t in (*model.parameters(), *model.buffers()):
        if t.dim() == 5:
            t.data = t.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def _to_device(x: Any, ctx: Context, channels_last: bool) -> Any:
    """A batch (a tensor, or a dict of tensors for multi-modal models) on the run's device."""
    if isinstance(x, dict):
        return {k: _to_device(v, ctx, channels_last) for k, v in x.items()}
    x = x.to(ctx.device, non_blocking=True)
    if channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def late_fusion(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of per-modality probabilities (rows still sum to 1)."""
    total = sum(weights[k] for k in parts)
    return sum(weights[k] * p for k, p in parts.items()) / total


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Any,
    ctx: Context,
    batch_size: int = 2,
    workers: int = 0,
    amp: bool = True,
    channels_last: bool = True,
    reporter: Reporter | None = None,
    split: str = "",
    fusion: dict[str, float] | None = None,
) -> Predictions:
    """Softmax probabilities averaged over each clip's test views, for every clip of ``dataset``.

    A multi-modal model (dict inputs, dict of logits out) gets each modality's averaged
    probabilities in ``parts`` and their late fusion with ``fusion`` weights (default equal) in
    ``probs``. Each process takes clips ``rank, rank + world, ...`` (no padding), and the results are
    gathered in clip order on every process."""
    reporter = reporter or Reporter()
    was_training = model.training
    model.eval()
    mine = list(range(ctx.rank, len(dataset), ctx.world))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, mine),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=ctx.cuda,
    )
    reporter.eval_start(split, len(mine))
    chunks: dict[str, list[np.ndarray]] = {}
    multi = False
    for x, _ in loader:
        multi = isinstance(x, dict)
        first = next(iter(x.values())) if multi else x
        b, v = first.shape[:2]
        x = _to_device({k: t.flatten(0, 1) for k, t in x.items()} if multi else x.flatten(0, 1), ctx, channels_last)
        with _autocast(ctx, amp):
            out = model(**x) if multi else model(x)
            if not isinstance(out, dict):  # one prediction (a single-input model, or a fusion into one head)
                out = {"": out}
        for key, logits in out.items():
            probs = logits.float().softmax(-1).view(b, v, -1).mean(1)
            chunks.setdefault(key, []).append(probs.cpu().double().numpy())
        reporter.eval_step(b)
    reporter.eval_end()
    model.train(was_training)
    mine_probs = {k: np.concatenate(c) for k, c in chunks.items()}
    gathered = dist_.all_gather_objects(ctx, (mine, mine_probs))
    order = np.argsort(np.concatenate([np.asarray(idx, np.int64) for idx, _ in gathered]))
    keys = next((list(p) for _, p in gathered if p), [""])
    parts = {k: np.concatenate([p[k] for _, p in gathered if p])[order] for k in keys}
    if any(len(p) != len(dataset) for p in parts.values()):
        raise RuntimeError(f"gathered {len(next(iter(parts.values())))} predictions for {len(dataset)} clips")
    labels = np.asarray(dataset.labels, np.int64)
    if "" in parts:
        return Predictions(list(dataset.clip_ids), labels, parts[""])
    weights = {k: 1.0 for k in parts} if fusion is None else fusion
    return Predictions(list(dataset.clip_ids), labels, late_fusion(parts, weights), parts)


FUSION_RATIOS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0))  # rgb:pose late-fusion ratios reported


def fusion_table(parts: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Top-1/top-5 of each modality alone and of the 1:1, 2:1 and 1:2 late fusions (labelled clips)."""
    from mgcli.report import topk_accuracy

    rows = dict(parts)
    if set(parts) == {"rgb", "pose"}:
        for a, b in FUSION_RATIOS:
            rows[f"{a:g}:{b:g}"] = late_fusion(parts, {"rgb": a, "pose": b})
    return {k: {"top1": topk_accuracy(p, labels, 1), "top5": topk_accuracy(p, labels, 5)} for k, p in rows.items()}


def write_scores_and_summary(preds: Predictions, out: Path, class_names: list[str]) -> dict[str, Any]:
    """``out`` (+ ``{stem}-{modality}.csv`` beside it for multi-modal models); the metrics summary,
    with the late-fusion table when labelled."""
    from mgcli.io.scores import write_scores
    from mgcli.report import summarize

    write_scores(out, preds.clip_ids, preds.labels, preds.probs)
    for key, probs in (preds.parts or {}).items():
        write_scores(out.with_name(f"{out.stem}-{key}{out.suffix}"), preds.clip_ids, preds.labels, probs)
    summary = summarize(preds.probs, preds.labels, class_names)
    if preds.parts and summary["n"]:
        summary["late_fusion"] = fusion_table(preds.parts, preds.labels)
    return summary


def write_predictions(preds: Predictions, run_dir: Path, split: str, class_names: list[str]) -> dict[str, Any]:
    """``scores-{split}.csv`` (+ ``scores-{split}-{modality}.csv`` for multi-modal models,
    ``confusion-{split}.png`` when labelled); the metrics summary (with the late-fusion table)."""
    from mgcli.report import plot_confusion

    summary = write_scores_and_summary(preds, run_dir / f"scores-{split}.csv", class_names)
    if summary["n"]:
        cm = np.asarray(summary["confusion"])
        plot_confusion(cm, class_names, run_dir / f"confusion-{split}.png", title=f"{run_dir.name}: {split}")
    return summary


# ---------------------------------------------------------------------------------------- training


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _set_determinism(cfg: RunConfig, ctx: Context) -> None:
    if cfg.deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = ctx.cuda


def _epoch_indices(n: int, seed: int, epoch: int, ctx: Context) -> list[int]:
    """This process's shard of the epoch's permutation (padded so every process gets as many)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    per = math.ceil(n / ctx.world)
    perm += perm[: per * ctx.world - n]
    return perm[ctx.rank :: ctx.world]


def check_config_change(saved: dict[str, Any], now: dict[str, Any], where: Path, prefix: str = "") -> None:
    """Refuse to resume a run with a config that changes what is computed."""
    for key in sorted(set(saved) | set(now)):
        path = f"{prefix}{key}"
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            check_config_change(a, b, where, f"{path}.")
        elif a != b and path not in RESUMABLE_CHANGES:
            raise MgError(
                f"the config differs from the run's at {path} (run: {a!r}, now: {b!r}); "
                "resume with the same config, or --overwrite to start again",
                where,
            )


def prepare(cfg: RunConfig, resume: bool = False, overwrite: bool = False, check_outputs: bool = True) -> dict[str, Any]:
    """Check everything a run needs before any process starts: data, model options, run folder
    (``check_outputs``: refuse to replace a run unless ``overwrite``, find ``last.pt`` to resume).

    Returns facts about the data (kind, channels, classes, splits)."""
    if resume and overwrite:
        raise MgError("--resume and --overwrite exclude each other")
    path = Path(cfg.data.path)
    kind = data_kind(cfg, path)
    view_config(kind, cfg.data.view)
    train = open_split(cfg, cfg.data.train_split, train=True)
    if (np.asarray(train.labels) < 0).any():
        raise MgError(f"the {cfg.data.train_split} split has clips without labels", path)
    classes = list(train.class_names)
    graph = getattr(train, "graph", None)
    # pretrained weights are fetched here, once, before a run folder exists or processes start
    model = build_for_data(cfg, len(classes), train.num_channels, kind, path,
                           load_pretrained=not resume and not cfg.init_from, training_classes=classes,
                           graph=graph)  # fmt: skip
    if kind == "rgbpose":
        check_pathway_geometry(model, train.cfg, path)
    check_video_geometry(model, train.cfg, kind, path)
    if cfg.init_from and not resume:
        branch_checkpoints(cfg, model, classes)  # fail here, not in N processes
    facts = {
        "kind": kind,
        "in_channels": train.num_channels,
        "class_names": classes,
        "graph": graph,
        "params": sum(p.numel() for p in model.parameters()),
        "splits": split_names(path),
    }
    run_dir = cfg.run_dir
    last = run_dir / "last.pt"
    if not check_outputs:
        return facts
    if resume:
        if not last.is_file():
            raise MgError("nothing to resume: no last.pt (start the run without --resume)", run_dir)
        saved = load_checkpoint(last)
        check_config_change(saved["config"], cfg.to_dict(), last)
    elif not overwrite and any((run_dir / f).exists() for f in RUN_FILES):
        raise OutputExistsError("the run folder already holds a run (pass --resume to continue it or --overwrite)", run_dir)
    return facts


def check_video_geometry(model: torch.nn.Module, view: Any, kind: str, where: Path) -> None:
    """A video transformer with a fixed input size (MViT) must get exactly that clip."""
    video = getattr(model, "video", model)
    t, hw = getattr(video, "temporal_size", None), getattr(video, "spatial_size", None)
    if t is None or hw is None:
        return
    frames_key = "rgb_len" if kind == "rgbskeleton" else "clip_len"
    frames = getattr(view, frames_key)
    sizes = {k: getattr(view, k) for k in ("train_size", "test_size")}
    size = hw[0] if isinstance(hw, tuple | list) else hw
    if frames != t or any(v != size for v in sizes.values()):
        raise MgError(f"the video model takes {t} x {size} x {size} clips but data.view gives {frames_key} {frames}, "
                      f"train_size {sizes['train_size']}, test_size {sizes['test_size']}; set them to match", where)


def check_pathway_geometry(model: torch.nn.Module, view: Any, where: Path) -> None:
    """The paired views must meet the two-pathway model: pose frames per RGB frame equal to its
    ``speed_ratio``, and heatmaps scaled like the RGB stem's downsampling (1/4 in the paper)."""
    net = model.backbone
    if view.speed_ratio != net.speed_ratio:
        raise MgError(f"data.view.speed_ratio is {view.speed_ratio} but model.speed_ratio is {net.speed_ratio}; "
                      "set both", where)

    def stride(stem: torch.nn.Module) -> int:
        out = 1
        for m in stem.modules():
            if isinstance(m, torch.nn.Conv3d | torch.nn.MaxPool3d):
                s = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 3
                out *= int(s[-1])
        return out

    ratio = stride(net.pose.stem) / stride(net.rgb.stem)
    if abs(view.scaling - ratio) > 1e-9:
        raise MgError(f"data.view.scaling is {view.scaling} but the model's stems need heatmaps at {ratio:g} of the "
                      "RGB size (RGB stem stride / pose stem stride)", where)


def branch_checkpoints(cfg: RunConfig, model: torch.nn.Module, class_names: list[str]) -> dict[str, Any]:
    """``init_from``'s branch checkpoints, one per modality of the model's ``branch_inputs`` (RGB
    and pose for RGBPoseConv3D, RGB and skeleton for token fusion), each checked against the input
    its branch must have read and the classes; ``{modality: checkpoint}``."""
    inputs = getattr(model, "branch_inputs", None)
    if inputs is None:
        raise MgError(f"init_from is for two-modality models (rgbpose_conv3d, token_fusion), not {cfg.model['name']}")
    from mgcli.models import MODELS

    if len(cfg.init_from) != len(inputs):
        raise MgError(f"init_from takes {len(inputs)} checkpoints ({', '.join(inputs)}), got {len(cfg.init_from)}")
    states = {}
    for (mod, kind), path in zip(inputs.items(), cfg.init_from, strict=True):
        state = load_checkpoint(path)
        name = str((state.get("config") or {}).get("model", {}).get("name", ""))
        spec = MODELS.get(name)
        if spec is None or spec.input_kind != kind:
            article = "an RGB" if mod == "rgb" else f"a {mod}"
            raise MgError(f"init_from: the {mod} checkpoint must come from {article} branch run (reading {kind}), "
                          f"not {name or 'an unknown model'}", path)
        if list(state["class_names"]) != list(class_names):
            raise MgError(f"the {mod} branch was trained on other classes ({len(state['class_names'])} vs "
                          f"{len(class_names)})", path)
        states[mod] = state
    return states


def init_from_branches(cfg: RunConfig, model: torch.nn.Module, class_names: list[str]) -> dict[str, list[str]]:
    """Merge the two branch checkpoints of ``init_from`` into ``model`` (PoseConv3D's two-step
    initialisation); returns what was loaded, padded, left new and unused."""
    from mgcli.models.rgbpose import merge_branch_weights

    states = branch_checkpoints(cfg, model, class_names)
    try:
        if hasattr(model, "load_branches"):
            return model.load_branches({m: st["state_dict"] for m, st in states.items()})
        return merge_branch_weights(model, states["rgb"]["state_dict"], states["pose"]["state_dict"])
    except MgError as e:
        raise MgError(f"init_from: {e.message}", cfg.init_from[0]) from None


def describe_merge(report: dict[str, list[str]]) -> str:
    """One paragraph for the log: counts and the new / unused tensors (abbreviated)."""
    def names(keys: list[str], depth: int = 3) -> str:
        groups = sorted({".".join(k.split(".")[:depth]) for k in keys})
        return ", ".join(groups[:8]) + (", ..." if len(groups) > 8 else "")

    lines = [f"init_from: {len(report['loaded'])} tensors loaded, {len(report['padded'])} zero-padded for the "
             f"lateral channels, {len(report['new'])} new, {len(report['unused'])} unused"]
    if report["padded"]:
        lines.append(f"  padded: {names([k.rpartition('.')[0] for k in report['padded']], 7)}")
    if report["new"]:
        lines.append(f"  new: {names(report['new'])}")
    if report["unused"]:
        lines.append(f"  unused: {names(report['unused'])}")
    return "\n".join(lines)


def _fusion_weights(cfg: RunConfig) -> dict[str, float]:
    return dict(zip(("rgb", "pose"), cfg.train.late_fusion, strict=True))


def _save_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, cfg: RunConfig,
    class_names: list[str], epoch: int, rng: list[dict[str, Any]], history: list[dict[str, Any]], best: dict[str, Any],
) -> None:
    save_checkpoint(
        path,
        model.state_dict(),
        cfg.to_dict(),
        class_names,
        optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict(),
        epoch=epoch,
        rng=rng,
        history=history,
        best=best,
    )


def _rng_state(ctx: Context) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if ctx.cuda:
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def _set_rng_state(ctx: Context, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if ctx.cuda and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_output(path, True) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, allow_nan=False))


def train_process(
    cfg: RunConfig, resume: bool = False, overwrite: bool = False, use_cuda: bool = True, quiet: bool = True,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One process of a run (all of it without a process group): train, evaluate, write the run folder.
    ``facts``: what :func:`prepare` found, when the launcher has checked already."""
    ctx = dist_.init(use_cuda)
    reporter: Reporter = RichReporter(quiet) if ctx.main else Reporter()
    try:
        return _train(cfg, ctx, resume, overwrite, reporter, facts)
    finally:
        dist_.shutdown()


def _train(
    cfg: RunConfig, ctx: Context, resume: bool, overwrite: bool, reporter: Reporter, facts: dict[str, Any] | None
) -> dict[str, Any]:
    t_start, cpu_start = time.perf_counter(), _cpu_seconds()
    if facts is None:
        facts = prepare(cfg, resume, overwrite, check_outputs=ctx.main)
    run_dir = cfg.run_dir
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for f in RUN_FILES:
                (run_dir / f).unlink(missing_ok=True)
        with atomic_output(run_dir / "config.yaml", True) as tmp:
            Path(tmp).write_text(dump_config(cfg))
    dist_.barrier(ctx)

    _set_determinism(cfg, ctx)
    torch.manual_seed(cfg.seed)
    class_names = facts["class_names"]
    train_ds = open_split(cfg, cfg.data.train_split, train=True)
    val_ds = open_split(cfg, cfg.data.val_split, train=False) if cfg.data.val_split in facts["splits"] else None
    model = build_for_data(
        cfg, len(class_names), facts["in_channels"], facts["kind"], load_pretrained=not resume and not cfg.init_from,
        training_classes=class_names, graph=facts.get("graph"),
    )
    if cfg.init_from and not resume:
        report = init_from_branches(cfg, model, class_names)
        reporter.message(describe_merge(report))
    model = model.to(ctx.device)
    channels_last = cfg.train.channels_last
    if channels_last:
        model = channels_last_3d(model)
    amp = cfg.train.amp and ctx.cuda
    optimizer = make_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start_epoch, history, best = 0, [], {"epoch": None, "val_top1": None}
    best_val: Predictions | None = None
    torch.manual_seed(cfg.seed * 7919 + ctx.rank)  # dropout masks differ between processes
    if resume:
        state = load_checkpoint(run_dir / "last.pt", map_location=ctx.device)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), dict(state["best"])
        rng = state["rng"]
        if len(rng) == ctx.world:
            _set_rng_state(ctx, rng[ctx.rank])
        reporter.message(f"resuming {run_dir} after epoch {start_epoch}")
    net: torch.nn.Module = model
    if ctx.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.cuda else None)

    reporter.message(
        f"{cfg.name}: {cfg.model['name']} ({facts['params'] / 1e6:.2f} M parameters) on {len(train_ds)} "
        f"{cfg.data.train_split} clips, {ctx.world} process(es) on {ctx.device.type}, "
        f"batch {cfg.train.batch_size} per process"
    )
    epochs = cfg.train.epochs
    for epoch in range(start_epoch, epochs):
        row = _train_epoch(cfg, ctx, net, model, optimizer, scaler, train_ds, epoch, amp, channels_last, reporter)
        evaluate_now = val_ds is not None and cfg.train.val_every > 0 and (
            (epoch + 1) % cfg.train.val_every == 0 or epoch + 1 == epochs
        )
        if evaluate_now:
            preds = predict(
                model, val_ds, ctx, cfg.train.eval_batch_size, cfg.data.workers, amp, channels_last, reporter, "val",
                _fusion_weights(cfg),
            )
            from mgcli.report import topk_accuracy

            top1 = topk_accuracy(preds.probs, preds.labels, 1)
            row["val_top1"], row["val_loss"] = top1, preds.loss
            if best["val_top1"] is None or top1 > best["val_top1"]:
                best = {"epoch": epoch + 1, "val_top1": top1}
                best_val = preds  # the best weights' validation predictions: not evaluated again at the end
                if ctx.main:
                    save_checkpoint(
                        run_dir / "model.pt", inference_state(model), cfg.to_dict(), class_names,
                        epoch=epoch + 1, val_top1=top1,
                    )
        history.append(row)
        reporter.epoch_end(row)
        rng = dist_.all_gather_objects(ctx, _rng_state(ctx))
        if ctx.main:
            _save_state(run_dir / "last.pt", model, optimizer, scaler, cfg, class_names, epoch + 1, rng, history, best)
            _write_json(run_dir / "metrics.json", {"name": cfg.name, "finished": False, "history": history, "best": best})
        dist_.barrier(ctx)

    return _finish(cfg, ctx, model, facts, val_ds, history, best, amp, channels_last, reporter, t_start, cpu_start,
                   best_val)


def train_step(
    cfg: RunConfig, ctx: Context, net: torch.nn.Module, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scaler: Any, x: Any, y: torch.Tensor, lr: float, amp: bool, channels_last: bool,
    parts: dict[str, float] | None = None,
) -> float:
    """One optimiser step on a batch at learning rate ``lr``; the batch's loss.

    A multi-modal batch (a dict of tensors) goes to the model as keyword arguments with the labels
    (for training-time losses such as the PRM), and the model's ``loss`` gives the terms to sum;
    their values are added to ``parts`` when given."""
    x, y = _to_device(x, ctx, channels_last), y.to(ctx.device, non_blocking=True)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with _autocast(ctx, amp):
        if isinstance(x, dict) or getattr(model, "semantic", None) is not None:
            out = net(**x, labels=y) if isinstance(x, dict) else net(x, labels=y)
            terms = model.loss(out, y, cfg.train.label_smoothing)
            loss = sum(terms.values())
            if parts is not None:  # one device-to-host copy for all terms
                for k, t in zip(terms, torch.stack([t.detach().float() for t in terms.values()]).tolist(), strict=True):
                    parts[k] = parts.get(k, 0.0) + t * len(y)
        else:
            loss = F.cross_entropy(net(x).float(), y, label_smoothing=cfg.train.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.train.grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def make_optimizer(cfg: RunConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over all parameters, at ``optim.lr`` (the
    schedule sets the lr of every step)."""
    if cfg.optim.name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                                 weight_decay=cfg.optim.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
        nesterov=cfg.optim.nesterov and cfg.optim.momentum > 0,
    )


def _train_epoch(
    cfg: RunConfig, ctx: Context, net: torch.nn.Module, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scaler: Any, dataset: Any, epoch: int, amp: bool, channels_last: bool, reporter: Reporter,
) -> dict[str, Any]:
    dataset.set_epoch(epoch)
    indices = _epoch_indices(len(dataset), cfg.seed, epoch, ctx)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        sampler=indices,
        num_workers=cfg.data.workers,
        pin_memory=ctx.cuda,
        drop_last=False,
    )
    iters = len(loader)
    net.train()
    reporter.epoch_start(epoch, cfg.train.epochs, iters)
    t0 = time.perf_counter()
    wait = loss_sum = 0.0
    seen = 0
    parts: dict[str, float] = {}
    lr = lr_at(cfg, epoch)
    it = iter(loader)
    for step in range(iters):
        t_wait = time.perf_counter()
        x, y = next(it)
        wait += time.perf_counter() - t_wait
        lr = lr_at(cfg, epoch + step / iters)
        value = train_step(cfg, ctx, net, model, optimizer, scaler, x, y, lr, amp, channels_last, parts)
        if not math.isfinite(value):
            raise MgError(f"epoch {epoch + 1}, step {step + 1}: the loss is {value} (lower optim.lr?)")
        loss_sum += value * len(y)
        seen += len(y)
        reporter.step(value, lr)
    seconds = time.perf_counter() - t0
    row = {
        "epoch": epoch + 1,
        "train_loss": dist_.mean_across(ctx, loss_sum / max(seen, 1), seen),
        "lr": lr,
        "seconds": seconds,
        "data_wait": dist_.mean_across(ctx, wait / max(seconds, 1e-9)),
        "samples_per_s": dist_.mean_across(ctx, seen / max(seconds, 1e-9)) * ctx.world,
    }
    for key, total in parts.items():
        row[f"loss_{key}"] = dist_.mean_across(ctx, total / max(seen, 1), seen)
    return row


def _finish(
    cfg: RunConfig, ctx: Context, model: torch.nn.Module, facts: dict[str, Any], val_ds: Any,
    history: list[dict[str, Any]], best: dict[str, Any], amp: bool, channels_last: bool, reporter: Reporter,
    t_start: float, cpu_start: float, best_val: Predictions | None = None,
) -> dict[str, Any]:
    """Evaluate the best weights (or the last ones) on the validation and test splits; write the
    outputs. ``best_val``: the best weights' validation predictions when this process made them
    (a resumed run evaluates them again)."""
    run_dir = cfg.run_dir
    class_names = facts["class_names"]
    if best["epoch"] is not None:
        load_inference_state(model, load_checkpoint(run_dir / "model.pt", map_location=ctx.device)["state_dict"])
    elif ctx.main:
        save_checkpoint(run_dir / "model.pt", inference_state(model), cfg.to_dict(), class_names, epoch=cfg.train.epochs)
    splits: dict[str, Any] = {}
    for key, split in (("val", cfg.data.val_split), ("test", cfg.data.test_split)):
        if split not in facts["splits"]:
            continue
        if key == "val" and best_val is not None and best["epoch"] is not None:
            preds = best_val
        else:
            ds = val_ds if key == "val" else open_split(cfg, split, train=False)
            preds = predict(
                model, ds, ctx, cfg.train.eval_batch_size, cfg.data.workers, amp, channels_last, reporter, split,
                _fusion_weights(cfg),
            )
        if ctx.main:
            splits[key] = write_predictions(preds, run_dir, key, class_names)
    metrics: dict[str, Any] = {}
    if ctx.main:
        from mgcli.report import plot_curves

        plot_curves(history, run_dir / "curves.png")
        waits = [r["data_wait"] for r in history]
        metrics = {
            "name": cfg.name,
            "finished": True,
            "model": cfg.model["name"],
            "params": facts["params"],
            "processes": ctx.world,
            "device": ctx.device.type,
            "best": best,
            "splits": splits,
            "history": history,
            "seconds": time.perf_counter() - t_start,
            "cpu_seconds": _cpu_seconds() - cpu_start,
            "data_wait": float(np.mean(waits)) if waits else None,
        }
        _write_json(run_dir / "metrics.json", metrics)
    dist_.barrier(ctx)
    return metrics


# ------------------------------------------------------------------------------------------ launch


def launch(
    cfg: RunConfig,
    gpus: int = 0,
    procs: int = 1,
    cpu: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run training in this process, in ``gpus`` CUDA processes or ``procs`` CPU processes, or as one
    process of a ``torchrun`` job. Returns the run's metrics (read from ``metrics.json``)."""
    if dist_.under_torchrun():
        return train_process(cfg, resume, overwrite, use_cuda=not cpu, quiet=quiet)
    if gpus:
        if not torch.cuda.is_available():
            raise MgError(f"--gpus {gpus} needs CUDA, and this machine has no CUDA device (--procs N runs CPU processes)")
        if gpus > torch.cuda.device_count():
            raise MgError(f"--gpus {gpus}: only {torch.cuda.device_count()} CUDA devices are visible")
    nprocs = gpus or procs
    if nprocs < 1:
        raise MgError("--procs must be at least 1")
    use_cuda = not cpu and (gpus > 0 or (procs == 1 and torch.cuda.is_available()))
    facts = prepare(cfg, resume, overwrite)  # fail here, with one line, rather than in N processes
    if nprocs == 1:
        return train_process(cfg, resume, overwrite, use_cuda, quiet, facts)
    import torch.multiprocessing as mp

    try:
        dist_.spawn(nprocs, _spawned_train, cfg, resume, overwrite, use_cuda, quiet, facts)
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1]
        raise MgError(f"a training process failed: {last}") from None
    return json.loads((cfg.run_dir / "metrics.json").read_text())


def _spawned_train(
    cfg: RunConfig, resume: bool, overwrite: bool, use_cuda: bool, quiet: bool, facts: dict[str, Any]
) -> None:
    train_process(cfg, resume, overwrite, use_cuda, quiet, facts)


# ------------------------------------------------------------------------------------- mg evaluate


def evaluate_checkpoint(
    checkpoint: str | Path,
    split: str = "test",
    data: str | Path | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    use_cuda: bool = True,
    quiet: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Re-run the multi-view evaluation of a saved model on one split; write its scores CSV."""
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"], checkpoint)
    class_names = list(state["class_names"])
    path = Path(data) if data is not None else Path(cfg.data.path)
    names = {"val": cfg.data.val_split, "test": cfg.data.test_split, "train": cfg.data.train_split}
    split_name = names.get(split, split)
    out = Path(out) if out is not None else checkpoint.parent / f"scores-{split}.csv"
    if out.exists() and not overwrite:
        raise OutputExistsError("exists (pass --overwrite to replace it)", out)
    ds = open_split(cfg, split_name, train=False, path=path)  # one line for a missing split
    kind = data_kind(cfg, path)
    if list(ds.class_names) != class_names:
        raise MgError(f"the classes differ from the checkpoint's ({len(ds.class_names)} vs {len(class_names)})", path)
    ctx = Context(device=torch.device("cuda") if use_cuda and torch.cuda.is_available() else torch.device("cpu"))
    model = build_for_data(cfg, len(class_names), ds.num_channels, kind, checkpoint, load_pretrained=False,
                           graph=getattr(ds, "graph", None))  # fmt: skip
    model.load_state_dict(state["state_dict"])
    model.to(ctx.device)
    channels_last = cfg.train.channels_last
    if channels_last:
        model = channels_last_3d(model)
    reporter = RichReporter(quiet)
    preds = predict(
        model, ds, ctx, batch_size or cfg.train.eval_batch_size, cfg.data.workers if workers is None else workers,
        cfg.train.amp, channels_last, reporter, split_name, _fusion_weights(cfg),
    )
    return out, write_scores_and_summary(preds, out, class_names)
