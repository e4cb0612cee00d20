"""Validation during training: the network in torch, scored with the project's own metrics."""

from __future__ import annotations

from typing import Any, TypedDict

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.ops import batched_nms
from tqdm import tqdm

from mtl_perception.evaluation.metrics import BinaryConfusion, DetectionAccumulator
from mtl_perception.runtime.presets import PEER_EVALUATION  # validation scores as the peers do
from mtl_perception.training.dataset import IGNORE_INDEX
from mtl_perception.training.model import InputNormalizer, MultiTaskNet


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, score_threshold: float, iou: float,
                max_det: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image: boxes [N, 4], scores [N, C] -> kept boxes, scores, classes (one box per class above threshold)."""
    idx, cls = (scores > score_threshold).nonzero(as_tuple=True)
    b, s = boxes[idx], scores[idx, cls]
    keep = batched_nms(b, s, cls, iou)[:max_det]
    return b[keep], s[keep], cls[keep]


@torch.no_grad()
def evaluate(model: MultiTaskNet, loader: DataLoader, device: torch.device, progress: bool = True) -> ValMetrics:
    """Metrics in input (letterboxed) pixels: det map50/map50_95/recall, drivable miou/iou/acc, lane acc/iou."""
    normalize = InputNormalizer(model.config.normalization).to(device)
    was_training = model.training
    model.eval()
    det = DetectionAccumulator(model.config.class_names)
    drivable, lane = BinaryConfusion(), BinaryConfusion()
    for batch in tqdm(loader, desc="val", leave=False, disable=not progress):
        outputs = model(normalize(batch["image"].to(device)))
        boxes, scores = model.decode(outputs)
        for i in range(len(boxes)):
            kb, ks, kc = postprocess(boxes[i], scores[i], PEER_EVALUATION.score_threshold,
                                     PEER_EVALUATION.iou_threshold, PEER_EVALUATION.max_detections)
            # ignore regions are no object to find (the peers' evaluation has none)
            gt = batch["targets"][(batch["targets"][:, 0] == i) & (batch["targets"][:, 1] >= 0)]
            det.add(kb.cpu().numpy(), ks.cpu().numpy(), kc.cpu().numpy(),
                    gt[:, 2:6].numpy(), gt[:, 1].long().numpy())
        drivable_pred = outputs["drivable"].argmax(1).cpu().numpy() == 1
        lane_pred = outputs["lane"].argmax(1).cpu().numpy() == 1
        # unlabelled pixels are no error either way: they count as agreed background
        for confusion, pred, truth in ((drivable, drivable_pred, batch["drivable"].numpy()),
                                       (lane, lane_pred, batch["lane"].numpy())):
            labelled = truth != IGNORE_INDEX
            confusion.add(pred & labelled, (truth == 1) & labelled)
    model.train(was_training)
    return {"det": det.summary(), "drivable": drivable.drivable_summary(), "lane": lane.lane_summary()}


class ValMetrics(TypedDict):
    """evaluate()'s result: the peers' figures, as metrics.DetectionAccumulator and BinaryConfusion give them."""

    det: dict[str, Any]
    drivable: dict[str, float]
    lane: dict[str, float]


def fitness(metrics: ValMetrics) -> float:
    """One number to pick the best checkpoint by: detection and both segmentation tasks weigh alike."""
    return (metrics["det"]["map50"] + metrics["drivable"]["miou"] + metrics["lane"]["iou"]) / 3


def freeze(modules: list[nn.Module]) -> None:
    """No gradients and batch norm statistics fixed: the paper's detection-only phase."""
    for module in modules:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
