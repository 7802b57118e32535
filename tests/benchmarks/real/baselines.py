"""Simple baselines on normalised coordinates: a random forest and a small temporal CNN.

Both read the same ``poses.h5`` as the models of the project (its clip table and split) and see
each clip as ``frames`` frames sampled evenly over the clip, every joint centred on the mid-point
of the shoulders ("neck") and divided by the clip's median shoulder width. They are what a
careful researcher would try first: if a skeleton model of the project loses to them, something
around the model (defaults, schedule, normalisation) is wrong.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mgcli.io.poses import PosesFile
from mgcli.pose.layouts import get_layout


def clip_arrays(poses_path: str, frames: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (x [N, frames, V, 2], y [N])}`` of neck-centred, shoulder-scaled coordinates."""
    out: dict[str, tuple[list, list]] = {}
    with PosesFile(poses_path) as pf:
        layout = get_layout(pf.layout)
        ls, rs = layout.index("left_shoulder"), layout.index("right_shoulder")
        for row in pf.clips.itertuples():
            kp = pf[row.video_id].keypoint[0, row.start : row.end + 1]  # first person, [T, V, 2]
            idx = np.linspace(0, len(kp) - 1, frames).round().astype(int)
            kp = kp[idx]
            neck = (kp[:, ls] + kp[:, rs]) / 2
            width = np.median(np.linalg.norm(kp[:, ls] - kp[:, rs], axis=-1))
            x = (kp - neck[:, None]) / max(float(width), 1e-3)
            xs, ys = out.setdefault(row.split, ([], []))
            xs.append(x.astype(np.float32))
            ys.append(int(row.label))
    return {s: (np.stack(x), np.asarray(y)) for s, (x, y) in out.items()}


def random_forest(data: dict, seed: int) -> float:
    """Test top-1 of a 500-tree random forest on the flattened coordinates."""
    from sklearn.ensemble import RandomForestClassifier

    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    rf = RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=1)
    rf.fit(xtr.reshape(len(xtr), -1), ytr)
    return float((rf.predict(xte.reshape(len(xte), -1)) == yte).mean())


class TemporalCNN(nn.Module):
    """Three 1-D convolutions over time (joints x coordinates as channels), pooled, one linear."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(3):
            layers += [nn.Conv1d(c, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, T, V, 2]
        x = x.flatten(2).transpose(1, 2)
        return self.fc(self.body(x).mean(-1))


def temporal_cnn(data: dict, seed: int, epochs: int = 150, batch: int = 32) -> float:
    """Test top-1 of :class:`TemporalCNN` trained with Adam (lr 1e-3, weight decay 1e-4)."""
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    num_classes = int(max(ytr.max(), yte.max())) + 1
    net = TemporalCNN(xtr.shape[2] * 2, num_classes)
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=g).split(batch):
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(xte)).argmax(1).numpy()
    return float((pred == yte).mean())
