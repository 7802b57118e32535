"""What a run without a config file trains with: the model's recipe, for data sets of any size.

``mg train-branch --model agcn-joint --data poses.h5`` (no ``--config``) starts from the recipe of
its model below, then applies the command line's overrides. A recipe is the paper's optimiser and
schedule (pyskl's for PoseConv3D and 2s-AGCN) written so that it carries over to other data:

- the lr is given for the paper's global batch (``optim.lr_batch``) and scaled linearly to the
  batch actually used (batch size x processes);
- ``train.min_steps`` gives a small data set enough optimiser steps: a few hundred clips at
  batch 16 are 10 steps an epoch, so the paper's 24 epochs would be 240 steps; the run gets more
  epochs instead and the whole schedule stretches with them (on iMiGUE, 13k clips, it changes
  nothing);
- the test views stay the paper's.

The ``pipelines/*.yaml`` configs are complete recipes of their own and do not read these. The
measurements behind the choices are in ``tests/benchmarks/real`` and the README ("Real skeletons").
Plain data, no torch: the command line reads it before anything is built.
"""

from __future__ import annotations

import copy
from typing import Any

# pyskl's PoseConv3D SlowOnly recipe (SGD 0.9 Nesterov, weight decay 3e-4, cosine, clip 40) with a
# higher lr: pyskl's 0.2 for 8 GPUs x 16 clips, scaled linearly, is 0.025 at batch 16, and on a
# small real set that underfits (train loss 1.41 after 1000 steps, test top-1 0.39, against 1.05
# and 0.59 with 0.1); 0.4 for a global batch of 64 is 0.1 at batch 16. No dropout before the
# head (pyskl: 0.5): on a small real set it kept the training loss above 1.1 after 1000 steps and
# cost up to 0.2 of test top-1 (README, "Real skeletons"); the imigue_* configs keep pyskl's 0.5.
# At least 2000 steps: after 1000 the training loss was still 0.5-0.65 on AR.data and the joint
# stream ended below a random forest (0.70 test top-1, seed 0); 2000 took it to 0.23 and 0.82.
_POSEC3D: dict[str, Any] = {
    "model": {"dropout": 0.0},
    "optim": {"name": "sgd", "lr": 0.4, "lr_batch": 64, "momentum": 0.9, "weight_decay": 3.0e-4, "nesterov": True},
    "schedule": {"kind": "cosine", "warmup_epochs": 0},
    "train": {"epochs": 24, "min_steps": 2000, "batch_size": 16, "grad_clip": 40, "eval_batch_size": 4},
}
# pyskl's 2s-AGCN recipe (SGD 0.9 Nesterov, weight decay 5e-4, cosine; lr 0.1 for 4 GPUs x 16).
_AGCN: dict[str, Any] = {
    "optim": {"name": "sgd", "lr": 0.1, "lr_batch": 64, "momentum": 0.9, "weight_decay": 5.0e-4, "nesterov": True},
    "schedule": {"kind": "cosine", "warmup_epochs": 0},
    "train": {"epochs": 40, "min_steps": 1500, "batch_size": 16, "grad_clip": 40, "eval_batch_size": 8},
}

# The emotion models (InterFusion and its one-stream ablations; the seed paper gives no recipe):
# AdamW with a cosine schedule, as transformers on frozen embeddings are usually trained, and
# enough steps for a few dozen videos (each epoch draws data.view.windows_per_video windows per
# video). Evaluation takes one video (all its windows) per batch.
_EMOTION: dict[str, Any] = {
    "optim": {"name": "adamw", "lr": 5.0e-4, "lr_batch": 32, "weight_decay": 0.05},
    "schedule": {"kind": "cosine", "warmup_epochs": 1},
    "train": {"epochs": 20, "min_steps": 300, "batch_size": 32, "grad_clip": 5, "eval_batch_size": 1},
}

RECIPES: dict[str, dict[str, Any]] = {
    "posec3d_slowonly": _POSEC3D,
    "agcn": _AGCN,
    "interfusion": _EMOTION,
    "emotion_face": _EMOTION,
    "emotion_context": _EMOTION,
}


def model_recipe(model_name: str) -> dict[str, Any]:
    """A copy of the model's recipe as a raw config mapping (``{}`` for a model without one)."""
    return copy.deepcopy(RECIPES.get(model_name, {}))
