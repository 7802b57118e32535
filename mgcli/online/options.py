"""The options of ``mg detect`` and ``mg predict`` (no heavy imports: the CLI reads the defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from mgcli.errors import MgError


@dataclass(frozen=True)
class DetectOptions:
    """Sliding windows and the segment rules (see the module docstring); frames of the video."""

    window: int = 64
    stride: int = 8
    threshold: float = 0.3
    min_len: int = 16
    merge_gap: int = 8
    nms_iou: float = 0.5
    batch_size: int = 16
    split: str = "test"  # the clip table's split whose videos to scan; "all": every video of the file
    num_clips: int = 0  # test clips per window (0: the model's test view's num_clips)

    def __post_init__(self) -> None:
        checks = (("window", 2), ("stride", 1), ("min_len", 1), ("merge_gap", 0), ("batch_size", 1), ("num_clips", 0))
        for name, lo in checks:
            if getattr(self, name) < lo:
                raise MgError(f"--{name.replace('_', '-')} must be at least {lo}, not {getattr(self, name)}")
        for name in ("threshold", "nms_iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise MgError(f"--{name.replace('_', '-')} must be between 0 and 1, not {getattr(self, name)}")
