"""The model contract: what the one training loop, evaluation and checkpoints rely on.

Every registered model (``mgcli.models.MODELS``) is an ``nn.Module`` that satisfies
:class:`Recognizer`; :class:`MgModel` gives the defaults, so a new model writes only what differs:

- **inputs as keyword tensors**: ``model(**sample, labels=None)`` where ``sample`` is the dataset's
  dict (``x`` for single-input models; ``rgb`` / ``pose`` / ``skeleton`` / ``present`` for
  two-modality ones). ``labels`` is passed in training, for training-time losses (PRM, semantic);
  models that do not use it ignore it.
- **outputs**: logits ``[N, K]``, or a dict of per-modality logits (late-fused at test time) plus,
  in training, any extra named terms the model's :meth:`~Recognizer.loss` consumes.
- ``loss(outputs, labels, label_smoothing) -> {name: scalar}``: the terms the loop sums (and logs
  as ``loss_<name>``). Default: one cross-entropy on tensor outputs.
- ``check_view(view, where)``: refuse a data view the model cannot take (fixed input sizes, the
  two pathways' frame and size ratios), with one line. Default: accept.
- ``inference_state()``: the state dict that goes into ``model.pt`` (without training-only parts,
  named by ``training_only`` prefixes); ``load_inference_state(state)`` loads it back.
- optional, for two-modality models: ``branch_inputs`` (``{modality: data kind}`` of the branch
  checkpoints ``init_from`` takes, in order) and ``load_branches({modality: state_dict}) ->
  LoadReport``.
- ``load_reports``: the :class:`~mgcli.models.weights.LoadReport` of every pretrained load the
  builder made (printed by the run).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from mgcli.errors import MgError

__all__ = ["MgModel", "Recognizer"]


@runtime_checkable
class Recognizer(Protocol):
    """What every model of :data:`mgcli.models.MODELS` provides (see the module doc)."""

    num_classes: int
    training_only: ClassVar[tuple[str, ...]]

    def __call__(self, *args: Any, **inputs: Any) -> torch.Tensor | dict[str, torch.Tensor]: ...

    def loss(self, outputs: Any, labels: torch.Tensor, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]: ...

    def check_view(self, view: Any, where: str | Path | None = None) -> None: ...

    def inference_state(self) -> dict[str, torch.Tensor]: ...

    def load_inference_state(self, state: Mapping[str, torch.Tensor]) -> None: ...


class MgModel(nn.Module):
    """Defaults of the contract: cross-entropy on tensor outputs, any view accepted, the whole
    state dict but ``training_only`` prefixes as the inference state."""

    training_only: ClassVar[tuple[str, ...]] = ()
    num_classes: int

    def __init__(self) -> None:
        super().__init__()
        self.load_reports: list[Any] = []

    def loss(self, outputs: Any, labels: torch.Tensor, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(outputs.float(), labels, label_smoothing=label_smoothing)}

    def check_view(self, view: Any, where: str | Path | None = None) -> None:
        """Accept any view (override for models with fixed input geometry)."""

    def inference_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.training_only)}

    def load_inference_state(self, state: Mapping[str, torch.Tensor]) -> None:
        try:
            missing, unexpected = self.load_state_dict(dict(state), strict=False)
        except RuntimeError as e:  # shapes that differ: the message lists every tensor
            lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
            first = lines[0] if lines else " ".join(str(e).split())[:200]
            raise MgError(
                f"the weights do not fit this model: {len(lines) or 'some'} tensors differ in shape "
                f"(e.g. {first}); was the checkpoint made with another config?"
            ) from None
        missing = [k for k in missing if not k.startswith(self.training_only)]
        if missing or unexpected:
            raise MgError(
                f"the weights do not fit this model: {len(missing)} missing (e.g. {missing[:2]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}); was the checkpoint made with "
                "another config?"
            )
