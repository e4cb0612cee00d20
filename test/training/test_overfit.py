"""The network, loss and data pipeline can learn: 4 images, 60 steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import update_bn

from mtl_perception.runtime.nms import box_iou
from mtl_perception.training.dataset import DataConfig, MultiTaskDataset, collate
from mtl_perception.training.loss import MultiTaskLoss
from mtl_perception.training.model import InputNormalizer, build_model, default_config
from mtl_perception.training.validate import postprocess


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float((pred & truth).sum() / (pred | truth).sum())


def test_overfit_four_images(tiny_set: Path) -> None:
    torch.manual_seed(0)
    data = MultiTaskDataset(DataConfig(tiny_set, height=256, width=384, limit=4), "train")
    batch = collate([data[i] for i in range(4)])
    model = build_model(default_config("mobilenetv2", data.classes.names))
    criterion = MultiTaskLoss(model.anchors, len(data.classes.names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.5e-2)
    images = InputNormalizer()(batch["image"])
    losses = []
    model.train()
    for _ in range(60):
        loss, _ = criterion(model(images), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

    # 60 steps from random weights leave batch-norm running statistics behind the weights;
    # re-estimate them (torch's own update_bn) before judging the model in eval mode
    update_bn([images] * 5, model)
    model.eval()
    with torch.no_grad():
        out = model(images)
        boxes, scores = model.decode(out)
    best = []
    for i in range(4):
        kept, _, _ = postprocess(boxes[i], scores[i], 0.25, 0.5, 100)
        gt = batch["targets"][batch["targets"][:, 0] == i, 2:6].numpy()
        best.extend(box_iou(gt, kept.numpy()).max(axis=1) if len(kept) else np.zeros(len(gt)))
    assert len(best) > 8 and np.mean(best) >= 0.5, np.round(best, 2)
    assert _iou(out["drivable"].argmax(1) == 1, batch["drivable"] == 1) >= 0.8
    assert _iou(out["lane"].argmax(1) == 1, batch["lane"] == 1) >= 0.8
