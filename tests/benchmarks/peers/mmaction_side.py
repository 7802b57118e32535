"""The mmaction2 side of ``make bench-peers``: runs in the side environment (``.venv-peers``:
mmaction2 1.2.0 on CPU torch 2.13.0), never in the product's.

It reads one JSON request per line on stdin and answers one JSON line on stdout, so that
``bench_peers.py`` can alternate it with our side request by request (A/B, one side idle while the
other is timed). Arrays come and go as ``.npy`` files named in the request. Requests:

- ``{"op": "threads", "n": N}``: ``torch.set_num_threads(N)``.
- ``{"op": "heatmaps", "keypoint": npy, "score": npy, "size": [H, W], "sigma": s, "kind":
  "joint"|"limb", "reps": R, "out": npy|null}``: time R calls of ``GeneratePoseTarget`` on the clip
  (a fresh results dict per call); ``out``: also save one output, ``[T, C, H, W]`` as it returns it.
- ``{"op": "pipeline", "keypoint": npy, "score": npy, "img_shape": [H, W], "clip_len": L,
  "reps": R}``: time R samples of the pose training pipeline of mmaction2's PoseConv3D keypoint
  config (UniformSampleFrames ... GeneratePoseTarget, FormatShape, PackActionInputs).
- ``{"op": "build", "model": "pose"|"rgbpose", "batch": B, "num_classes": K, "seed": S}`` then
  ``{"op": "steps", "reps": R}``: time R training steps (``model.train_step``: data preprocessor,
  forward, loss, backward, gradient clipping, SGD) of the model on random inputs of our shapes.

The answer to a timed request is ``{"seconds": [...]}`` (one per rep).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import types

import numpy as np
import torch

# Answers go to the real stdout; anything else printed (mmengine's logs) goes to stderr.
ANSWER = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr


def _stub_drn() -> None:
    """mmaction2 1.2.0's wheel lacks ``mmaction/models/localizers/drn`` but its package imports it:
    an empty stand-in, in this side environment only (nothing here uses DRN)."""
    pkg = types.ModuleType("mmaction.models.localizers.drn")
    pkg.__path__ = []
    mod = types.ModuleType("mmaction.models.localizers.drn.drn")
    mod.DRN = type("DRN", (), {})
    sys.modules[pkg.__name__], sys.modules[mod.__name__] = pkg, mod


_stub_drn()

import mmaction.datasets.transforms  # noqa: E402,F401 (registers the pose transforms)
from mmaction.registry import MODELS, TRANSFORMS  # noqa: E402
from mmaction.structures import ActionDataSample  # noqa: E402
from mmaction.utils import register_all_modules  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402

register_all_modules()

LEFT = [1, 3, 5, 7, 9, 11, 13, 15]  # COCO-17, as mmaction2's keypoint configs
RIGHT = [2, 4, 6, 8, 10, 12, 14, 16]

# ResNet3dSlowOnly as the pose branch the project trains (pipelines/imigue_pose_joint.yaml): base 32,
# stages (4, 6, 3), temporal strides (1, 1, 1); the pose pathway of RGBPoseConv3D is the same network.
POSE_NET = dict(
    in_channels=17,
    base_channels=32,
    num_stages=3,
    out_indices=(2,),
    stage_blocks=(4, 6, 3),
    conv1_stride_s=1,
    pool1_stride_s=1,
    inflate=(0, 1, 1),
    spatial_strides=(2, 2, 2),
    temporal_strides=(1, 1, 1),
    dilations=(1, 1, 1),
)
POSE_BACKBONE = dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, **POSE_NET)
RGBPOSE_BACKBONE = dict(
    type="RGBPoseConv3D",
    speed_ratio=4,
    channel_ratio=4,
    rgb_pathway=dict(
        num_stages=4,
        lateral=True,
        lateral_infl=1,
        lateral_activate=[0, 0, 1, 1],
        fusion_kernel=7,
        base_channels=64,
        conv1_kernel=(1, 7, 7),
        inflate=(0, 0, 1, 1),
        with_pool2=False,
    ),
    pose_pathway=dict(
        **POSE_NET,
        lateral=True,
        lateral_inv=True,
        lateral_infl=16,
        lateral_activate=(0, 1, 1),
        fusion_kernel=7,
        conv1_kernel=(1, 7, 7),
        conv1_stride_t=1,
        pool1_stride_t=1,
        with_pool2=False,
    ),
)


def pose_pipeline(clip_len: int) -> Compose:
    """The training pipeline of mmaction2's ``slowonly_r50_8xb16-u48-240e_ntu60-xsub-keypoint``."""
    return Compose(
        [
            dict(type="UniformSampleFrames", clip_len=clip_len),
            dict(type="PoseDecode"),
            dict(type="PoseCompact", hw_ratio=1.0, allow_imgpad=True),
            dict(type="Resize", scale=(-1, 64)),
            dict(type="RandomResizedCrop", area_range=(0.56, 1.0)),
            dict(type="Resize", scale=(56, 56), keep_ratio=False),
            dict(type="Flip", flip_ratio=0.5, left_kp=LEFT, right_kp=RIGHT),
            dict(type="GeneratePoseTarget", sigma=0.6, use_score=True, with_kp=True, with_limb=False),
            dict(type="FormatShape", input_format="NCTHW_Heatmap"),
            dict(type="PackActionInputs"),
        ]
    )


class Side:
    def __init__(self) -> None:
        self.model = None
        self.optim = None
        self.data = None

    def threads(self, n: int) -> dict:
        torch.set_num_threads(int(n))
        return {"threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__}

    def heatmaps(self, keypoint, score, size, sigma, kind, reps, out=None) -> dict:
        kp, sc = np.load(keypoint), np.load(score)
        gen = TRANSFORMS.build(
            dict(
                type="GeneratePoseTarget",
                sigma=sigma,
                use_score=True,
                with_kp=kind == "joint",
                with_limb=kind == "limb",
            )
        )
        times = []
        for _ in range(reps):
            results = {"keypoint": kp.copy(), "keypoint_score": sc.copy(), "img_shape": tuple(size)}
            t0 = time.perf_counter()
            imgs = gen.transform(results)["imgs"]
            times.append(time.perf_counter() - t0)
        if out:
            np.save(out, imgs)
        return {"seconds": times}

    def pipeline(self, keypoint, score, img_shape, clip_len, reps) -> dict:
        pipe = pose_pipeline(clip_len)
        kp, sc = np.load(keypoint), np.load(score)
        sample = {
            "keypoint": kp,
            "keypoint_score": sc,
            "img_shape": tuple(img_shape),
            "original_shape": tuple(img_shape),
            "total_frames": kp.shape[1],
            "label": 0,
            "start_index": 0,
            "modality": "Pose",
        }
        np.random.seed(0)
        times = []
        for _ in range(reps):
            results = copy.deepcopy(sample)  # the dataset hands the pipeline a copy of its record
            t0 = time.perf_counter()
            pipe(results)
            times.append(time.perf_counter() - t0)
        return {"seconds": times}

    def build(self, model, batch, num_classes, seed) -> dict:
        torch.manual_seed(seed)
        if model == "pose":
            cfg = dict(
                type="Recognizer3D",
                backbone=POSE_BACKBONE,
                cls_head=dict(type="I3DHead", in_channels=512, num_classes=num_classes, dropout_ratio=0.5),
                data_preprocessor=dict(type="ActionDataPreprocessor", format_shape="NCTHW"),
            )
            inputs = {"inputs": [torch.rand(1, 17, 32, 56, 56) for _ in range(batch)]}
        else:
            cfg = dict(
                type="MMRecognizer3D",
                backbone=RGBPOSE_BACKBONE,
                cls_head=dict(
                    type="RGBPoseHead",
                    num_classes=num_classes,
                    in_channels=[2048, 512],
                    loss_components=["rgb", "pose"],
                    loss_weights=[1.0, 1.0],
                ),
                data_preprocessor=dict(
                    type="MultiModalDataPreprocessor",
                    preprocessors=dict(
                        imgs=dict(
                            type="ActionDataPreprocessor",
                            mean=[123.675, 116.28, 103.53],
                            std=[58.395, 57.12, 57.375],
                            format_shape="NCTHW",
                        ),
                        heatmap_imgs=dict(type="ActionDataPreprocessor"),
                    ),
                ),
            )
            inputs = {  # what the multi-modal collate gives: one list per modality
                "inputs": {
                    "imgs": [torch.randint(0, 256, (1, 3, 8, 224, 224)).float() for _ in range(batch)],
                    "heatmap_imgs": [torch.rand(1, 17, 32, 56, 56) for _ in range(batch)],
                }
            }
        self.model = MODELS.build(cfg)
        self.model.init_weights()
        self.model.train()
        self.optim = build_optim_wrapper(
            self.model,
            dict(
                optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=3e-4, nesterov=True),
                clip_grad=dict(max_norm=40, norm_type=2),
            ),
        )
        samples = [ActionDataSample().set_gt_label(i % num_classes) for i in range(batch)]
        self.data = {**inputs, "data_samples": samples}
        params = sum(p.numel() for p in self.model.parameters())
        return {"params": params}

    def steps(self, reps) -> dict:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            inputs = self.data["inputs"]  # a fresh collated batch (the preprocessor replaces its lists)
            data = {
                "inputs": dict(inputs) if isinstance(inputs, dict) else list(inputs),
                "data_samples": list(self.data["data_samples"]),
            }
            self.model.train_step(data, self.optim)
            times.append(time.perf_counter() - t0)
        return {"seconds": times}


def main() -> None:
    side = Side()
    print(json.dumps({"ready": True, "torch": torch.__version__, "numpy": np.__version__}), file=ANSWER, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "quit":
            break
        print(json.dumps(getattr(side, op)(**req)), file=ANSWER, flush=True)


if __name__ == "__main__":
    main()
