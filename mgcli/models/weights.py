"""Weights: fetching them (torchvision's weights enums, downloaded once into ``$TORCH_HOME``; state
dicts on disk), each failing with one clear line when they are not available here, and the one
way they are applied to a module (:func:`load_weights`, which always returns a :class:`LoadReport`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgcli.errors import MgError


def _reason(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__


def fetch(weights: Any, what: str, fallback: str) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights enum member; ``what`` names it and ``fallback``
    says what to do instead, in the error raised when it cannot be fetched (offline, proxy, hash)."""
    try:
        return dict(weights.get_state_dict(progress=False))
    except Exception as e:  # no network, proxy, hash mismatch: all mean "not available here"
        raise MgError(f"could not fetch the {what} weights ({_reason(e)}); {fallback}") from None


def read_state_dict(path: str | Path, hint: str) -> dict[str, torch.Tensor]:
    """A state dict from a file (``torch.load(weights_only=True)``); a checkpoint that wraps its
    weights under ``"state_dict"`` is unwrapped. ``hint``: what may be given instead of a missing file."""
    path = Path(path)
    if not path.is_file():
        raise MgError(f"pretrained weights not found ({hint})", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and runtime errors for foreign or damaged files
        raise MgError(f"not a loadable state dict ({_reason(e)})", path) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MgError("expected a state dict (parameter name -> tensor)", path)
    return state


# ------------------------------------------------------------------------------ applying weights


@dataclass
class LoadReport:
    """What :func:`load_weights` did, by target tensor name (``unused``: source names).

    ``loaded`` copied as they are, ``padded`` zero-padded along the input channels, ``inflated``
    2D kernels repeated along time, ``new`` left at their init, ``skipped`` source tensors the
    policy leaves out (e.g. a head), ``unused`` source tensors with no place in the module."""

    source: str
    loaded: list[str] = field(default_factory=list)
    padded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    @property
    def filled(self) -> list[str]:
        return self.loaded + self.padded + self.inflated

    def merge(self, other: LoadReport) -> LoadReport:
        """Two loads into one module: a tensor is new only if neither filled it."""
        done = set(other.filled)
        return LoadReport(
            f"{self.source} + {other.source}",
            self.loaded + other.loaded,
            self.padded + other.padded,
            self.inflated + other.inflated,
            [k for k in self.new if k not in done],
            self.skipped + other.skipped,
            self.unused + other.unused,
        )

    def describe(self) -> str:
        """One paragraph for the log: counts, then the groups of padded / new / skipped / unused tensors."""

        def names(keys: list[str], depth: int = 3) -> str:
            groups = sorted({".".join(k.split(".")[:depth]) for k in keys})
            return ", ".join(groups[:8]) + (", ..." if len(groups) > 8 else "")

        counts = [f"{len(self.loaded)} tensors loaded"]
        for word, keys in (
            ("zero-padded for the lateral channels", self.padded),
            ("inflated 2D -> 3D", self.inflated),
            ("new", self.new),
            ("skipped", self.skipped),
            ("unused", self.unused),
        ):
            if keys:
                counts.append(f"{len(keys)} {word}")
        lines = [f"{self.source}: " + ", ".join(counts)]
        for word, keys, depth in (
            ("padded", [k.rpartition(".")[0] for k in self.padded], 7),
            ("new", self.new, 3),
            ("skipped", self.skipped, 3),
            ("unused", self.unused, 3),
        ):
            if keys:
                lines.append(f"  {word}: {names(keys, depth)}")
        return "\n".join(lines)


def load_weights(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    rename: Callable[[str], str | None] | None = None,
    skip: tuple[str, ...] = (),
    pad_inputs: bool = False,
    inflate: bool = False,
    strict: bool = True,
) -> LoadReport:
    """Load ``state`` into ``module`` under an explicit policy, and say what happened.

    Each source tensor is renamed (``rename``: source name -> module name, None for no place),
    left out when its source or module name starts with one of ``skip``, then copied when the
    shapes are equal; with ``inflate`` a 2D kernel ``[O, I, h, w]`` fills a 3D one ``[O, I, t, h, w]``
    (repeated ``t`` times, divided by ``t``); with ``pad_inputs`` a tensor with fewer input
    channels (dim 1) fills the leading ones and the rest are zero. Any other shape is an error:
    nothing is ever skipped silently. ``strict``: every module tensor (but ``num_batches_tracked``)
    must be filled and every source tensor used, else an error; otherwise both are reported.
    """
    target = module.state_dict()
    merged = dict(target)
    report = LoadReport(source)
    filled: set[str] = set()
    for key, src in state.items():
        name = rename(key) if rename is not None else key
        if key.startswith(skip) or (name is not None and name.startswith(skip)):
            report.skipped.append(key)
            continue
        if name is None or name not in target:
            report.unused.append(key)
            continue
        if not isinstance(src, torch.Tensor):
            raise MgError(f"{source}: {key!r} is not a tensor")
        dst = target[name]
        if src.shape == dst.shape:
            merged[name] = src.detach().to(dst.dtype).clone()
            report.loaded.append(name)
        elif inflate and src.dim() == 4 and dst.dim() == 5 and src.shape == dst.shape[:2] + dst.shape[3:]:
            t = dst.shape[2]
            merged[name] = (src.detach().to(dst.dtype).unsqueeze(2).expand_as(dst) / t).clone()
            report.inflated.append(name)
        elif (
            pad_inputs
            and src.dim() >= 2
            and src.shape[0] == dst.shape[0]
            and src.shape[2:] == dst.shape[2:]
            and src.shape[1] < dst.shape[1]
        ):
            padded = torch.zeros_like(dst)
            padded[:, : src.shape[1]] = src
            merged[name] = padded
            report.padded.append(name)
        else:
            raise MgError(
                f"{source}: {key!r} has shape {list(src.shape)} but {name!r} here has {list(dst.shape)} "
                "(another architecture, width or depth?)"
            )
        filled.add(name)
    report.new = [k for k in target if k not in filled and not k.startswith(skip)]
    if strict:
        new = [k for k in report.new if not k.endswith("num_batches_tracked")]
        if new or report.unused:
            shown = (new or report.unused)[:3]
            raise MgError(
                f"{source} does not fit: {len(new)} tensors of the model not in it, {len(report.unused)} "
                f"of its tensors with no place in the model (e.g. {', '.join(shown)})"
            )
    module.load_state_dict(merged)
    return report
