"""MMPose top-down backend: person boxes (MMDetection, or the whole frame) -> 2D keypoints.

The model comes from an MMPose config file and a checkpoint (``--pose-config``,
``--pose-checkpoint``), or from an MMPose model alias such as ``human`` / ``rtmpose-m`` on a
machine that can download weights. Without a checkpoint the model is randomly initialised
(useful only to check the plumbing). Boxes come from an MMDetection model when
``--det-config`` is given (person class, score above ``bbox_thr``); otherwise each frame is one
box. All boxes of a batch of frames go through the pose model in one forward pass; CUDA is used
when present. Install with ``make setup-mmpose`` (see the README for the recipe).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mgcli.errors import MgError
from mgcli.pose.backends import PoseBackend
from mgcli.pose.tracking import Detection

# MMPose dataset names -> our layouts.
DATASET_LAYOUTS = {"coco": "coco17", "coco_openpose": "body25"}


def _import_mmpose() -> tuple[Any, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mmpose
            from mmpose.apis import init_model
    except ImportError as e:
        raise MgError(f"the mmpose backend needs MMPose ({e}); install it with: make setup-mmpose") from None
    return mmpose, init_model


def packaged_config(relative: str) -> Path:
    """A config shipped inside the mmpose package, e.g. ``body_2d_keypoint/rtmpose/coco/...py``."""
    mmpose, _ = _import_mmpose()
    path = Path(mmpose.__file__).parent / ".mim" / "configs" / relative
    if not path.is_file():
        raise MgError(f"mmpose ships no config {relative}", path)
    return path


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class MMPoseBackend(PoseBackend):
    name = "mmpose"

    def __init__(
        self,
        config: str | None = None,
        checkpoint: str | None = None,
        det_config: str | None = None,
        det_checkpoint: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        bbox_thr: float = 0.3,
        det_cat_id: int = 0,
    ) -> None:
        if not config:
            raise MgError("the mmpose backend needs --pose-config (a config file or an MMPose model alias)")
        self.mmpose, init_model = _import_mmpose()
        self.device = device or default_device()
        self.batch_size = max(1, int(batch_size))
        self.bbox_thr, self.det_cat_id = float(bbox_thr), int(det_cat_id)
        self.config, self.checkpoint = config, checkpoint
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if Path(config).is_file():
                self.model = init_model(config, checkpoint, device=self.device)
            else:
                self.model = self._from_alias(config)
        name = (self.model.dataset_meta or {}).get("dataset_name", "")
        if name not in DATASET_LAYOUTS:
            raise MgError(
                f"the pose model predicts {name!r} keypoints; supported: {', '.join(DATASET_LAYOUTS)}", config
            )
        self.layout = DATASET_LAYOUTS[name]
        from mmengine.dataset import Compose, pseudo_collate

        self._pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        self._collate = pseudo_collate
        self.detector = None
        if det_config:
            self.detector = self._detector(det_config, det_checkpoint)

    def _from_alias(self, alias: str) -> Any:
        try:
            from mmpose.apis.inferencers import Pose2DInferencer

            return Pose2DInferencer(model=alias, device=self.device).model
        except Exception as e:  # mmengine raises several types for unknown aliases and failed downloads
            raise MgError(
                f"cannot load MMPose model {alias!r} ({type(e).__name__}: {str(e)[:120]}); give a config file "
                "and --pose-checkpoint on a machine without network"
            ) from None

    def _detector(self, config: str, checkpoint: str | None) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from mmdet.apis import init_detector
        except ImportError as e:
            raise MgError(f"--det-config needs MMDetection ({e}); install it with: make setup-mmpose") from None
        if not Path(config).is_file():
            raise MgError("detector config not found", config)
        return init_detector(config, checkpoint, device=self.device)

    def _boxes(self, frames_bgr: list[np.ndarray]) -> list[np.ndarray]:
        if self.detector is None:
            return [np.array([[0, 0, f.shape[1], f.shape[0]]], np.float32) for f in frames_bgr]
        from mmdet.apis import inference_detector

        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = inference_detector(self.detector, frames_bgr)
        for result in results:
            inst = result.pred_instances.cpu().numpy()
            keep = (inst.labels == self.det_cat_id) & (inst.scores > self.bbox_thr)
            out.append(inst.bboxes[keep].astype(np.float32))
        return out

    def process(self, frames_rgb: list[np.ndarray]) -> list[list[Detection]]:
        import torch

        frames_bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames_rgb]  # MMPose models take BGR
        boxes = self._boxes(frames_bgr)
        owners, data = [], []
        for i, (img, frame_boxes) in enumerate(zip(frames_bgr, boxes, strict=True)):
            for box in frame_boxes:
                info = dict(img=img, bbox=box[None], bbox_score=np.ones(1, np.float32))
                info.update(self.model.dataset_meta)
                data.append(self._pipeline(info))
                owners.append(i)
        detections: list[list[Detection]] = [[] for _ in frames_rgb]
        for start in range(0, len(data), self.batch_size):
            chunk = data[start : start + self.batch_size]
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecation chatter from mmengine/mmdet internals
                results = self.model.test_step(self._collate(chunk))
            for owner, res in zip(owners[start : start + self.batch_size], results, strict=True):
                inst = res.pred_instances
                kp = np.asarray(inst.keypoints[0], np.float32)
                # SimCC and heatmap maxima are not bounded by 1: keep scores in [0, 1] for heatmaps
                sc = np.clip(np.asarray(inst.keypoint_scores[0], np.float32), 0.0, 1.0)
                box = np.asarray(inst.bboxes[0], np.float32) if "bboxes" in inst else None
                detections[owner].append(Detection(kp, sc, box))
        return detections

    def describe(self) -> str:
        weights = Path(self.checkpoint).name if self.checkpoint else "random init"
        det = "mmdet boxes" if self.detector is not None else "whole-frame boxes"
        return f"mmpose {self.mmpose.__version__} {Path(self.config).stem} ({weights}, {det}, {self.device})"
