"""L = alpha * L_det + beta * L_seg.

L_det: CIoU box loss, BCE objectness (with IoU targets) and BCE class loss, on
anchors assigned YOLOv5's way: an anchor takes a box whose width and height are
within `anchor_threshold` times its own, in the box's grid cell and the two
nearest neighbours. L_seg: cross-entropy for both heads plus a Dice term for
thin lane markings.

Ignore regions count in no loss: a target of class IGNORE_CLASS is assigned to no
anchor, and the cells whose centre lies inside it are not pushed towards
"no object"; pixels labelled IGNORE_INDEX are left out of the cross-entropy and
the Dice term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import complete_box_iou_loss

from mtl_perception.training.anchors import STRIDES
from mtl_perception.training.dataset import IGNORE_CLASS, IGNORE_INDEX


@dataclass(frozen=True)
class LossConfig:
    alpha: float = 1.0  # detection
    beta: float = 1.0  # segmentation
    box: float = 0.5
    objectness: float = 1.0
    classification: float = 0.5
    level_balance: tuple[float, float, float] = (4.0, 1.0, 0.4)  # strides 8, 16, 32
    anchor_threshold: float = 4.0
    lane_dice: float = 1.0
    lane_class_weight: float = 1.0  # >1 weighs rare lane pixels up; Dice already balances, and more fattens lanes


def dice_loss(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """1 - Dice of the foreground probability over the labelled pixels. logits [B, 2, H, W], target long
    [B, H, W] (0, 1 or IGNORE_INDEX)."""
    labelled = (target != IGNORE_INDEX).float()
    prob = logits.softmax(dim=1)[:, 1] * labelled
    truth = (target == 1).float()
    inter = (prob * truth).sum(dim=(1, 2))
    return (1 - (2 * inter + eps) / (prob.sum(dim=(1, 2)) + truth.sum(dim=(1, 2)) + eps)).mean()


def masked_cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over the labelled pixels only; 0 (not NaN) when a batch has none."""
    if not bool((target != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE_INDEX)


def _cells_inside(boxes: Tensor, batch: int, h: int, w: int, stride: int) -> Tensor:
    """bool [B, H, W]: the grid cells whose centre lies inside one of boxes [M, 6] (image, class, x1..y2)."""
    inside = torch.zeros(batch, h, w, dtype=torch.bool, device=boxes.device)
    for image, _, x1, y1, x2, y2 in boxes.tolist():  # few per batch: a loop is cheaper than a grid test
        # cell i's centre is at (i + 0.5) * stride
        c0, c1 = max(math.ceil(x1 / stride - 0.5), 0), min(math.floor(x2 / stride - 0.5), w - 1)
        r0, r1 = max(math.ceil(y1 / stride - 0.5), 0), min(math.floor(y2 / stride - 0.5), h - 1)
        if c0 <= c1 and r0 <= r1:
            inside[int(image), r0:r1 + 1, c0:c1 + 1] = True
    return inside


class MultiTaskLoss(nn.Module):
    anchors: Tensor
    lane_weight: Tensor

    def __init__(self, anchors: Tensor, num_classes: int, config: LossConfig = LossConfig()) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.register_buffer("anchors", anchors.clone(), persistent=False)  # [L, A, 2] pixels
        self.register_buffer("lane_weight", torch.tensor([1.0, config.lane_class_weight]), persistent=False)

    def forward(self, outputs: dict, batch: dict[str, Tensor], with_segmentation: bool = True
                ) -> tuple[Tensor, dict[str, float]]:
        box, obj, cls = self.detection_losses(outputs["det"], batch["targets"])
        c = self.config
        det = c.box * box + c.objectness * obj + c.classification * cls
        parts = {"box": box.item(), "obj": obj.item(), "cls": cls.item(), "det": det.item()}
        total = c.alpha * det
        if with_segmentation:
            drivable = masked_cross_entropy(outputs["drivable"], batch["drivable"])
            lane_ce = masked_cross_entropy(outputs["lane"], batch["lane"], weight=self.lane_weight)
            lane_dice = dice_loss(outputs["lane"], batch["lane"])
            seg = drivable + lane_ce + c.lane_dice * lane_dice
            total = total + c.beta * seg
            parts.update(drivable=drivable.item(), lane=lane_ce.item(), lane_dice=lane_dice.item(), seg=seg.item())
        parts["total"] = total.item()
        return total, parts

    def detection_losses(self, raw: list[Tensor], targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """raw: per level [B, A, H, W, 5 + C]; targets [M, 6] (image, class, x1, y1, x2, y2) in pixels."""
        device = raw[0].device
        ignore = targets[targets[:, 1] == IGNORE_CLASS]
        targets = targets[targets[:, 1] != IGNORE_CLASS]
        box_loss = torch.zeros((), device=device)
        cls_loss = torch.zeros((), device=device)
        obj_loss = torch.zeros((), device=device)
        centres = (targets[:, 2:4] + targets[:, 4:6]) / 2
        sizes = (targets[:, 4:6] - targets[:, 2:4]).clamp(min=1e-3)
        for level, (out, stride) in enumerate(zip(raw, STRIDES, strict=True)):
            h, w = out.shape[2:4]
            tobj = torch.zeros(out.shape[:4], device=device)
            img, anc, gj, gi, tbox, tcls = self._assign(targets, centres, sizes, level, stride, h, w)
            if img.numel():
                p = out[img, anc, gj, gi]
                pxy = (p[:, 0:2].sigmoid() * 2 - 0.5 + torch.stack([gi, gj], 1)) * stride
                pwh = (p[:, 2:4].sigmoid() * 2) ** 2 * self.anchors[level][anc]
                pbox = torch.cat([pxy - pwh / 2, pxy + pwh / 2], 1)
                ciou = complete_box_iou_loss(pbox, tbox, reduction="none")
                box_loss = box_loss + ciou.mean()
                iou = (1 - ciou).detach().clamp(0, 1)
                tobj[img, anc, gj, gi] = iou.to(tobj.dtype)
                onehot = F.one_hot(tcls, self.num_classes).to(p.dtype)
                cls_loss = cls_loss + F.binary_cross_entropy_with_logits(p[:, 5:], onehot)
            # cells inside an ignore region are neither object nor background, unless a real box claims them
            counted = ~(_cells_inside(ignore, out.shape[0], h, w, stride)[:, None] & (tobj == 0))
            obj_loss = obj_loss + self.config.level_balance[level] * F.binary_cross_entropy_with_logits(
                out[..., 4], tobj, weight=counted.to(tobj.dtype))
        return box_loss, obj_loss, cls_loss

    def _assign(self, targets: Tensor, centres: Tensor, sizes: Tensor, level: int, stride: int,
                h: int, w: int) -> tuple[Tensor, ...]:
        anchors = self.anchors[level]  # [A, 2]
        ratio = sizes[:, None, :] / anchors[None]  # [M, A, 2]
        ok = torch.max(ratio, 1 / ratio).amax(dim=2) < self.config.anchor_threshold  # [M, A]
        m_idx, a_idx = ok.nonzero(as_tuple=True)
        grid = centres[m_idx] / stride
        cells = [grid.floor()]
        frac = grid - grid.floor()
        # also the neighbouring cells nearest the centre: predictions there can reach it (xy in -0.5..1.5)
        for axis in (0, 1):
            for side, use in ((-1, frac[:, axis] < 0.5), (1, frac[:, axis] > 0.5)):
                shifted = grid.floor().clone()
                shifted[:, axis] += side
                cells.append(torch.where(use[:, None], shifted, torch.full_like(shifted, -1)))
        cell = torch.cat(cells)
        m_all, a_all = m_idx.repeat(len(cells)), a_idx.repeat(len(cells))
        valid = (cell[:, 0] >= 0) & (cell[:, 0] < w) & (cell[:, 1] >= 0) & (cell[:, 1] < h)
        cell, m_all, a_all = cell[valid].long(), m_all[valid], a_all[valid]
        t = targets[m_all]
        return t[:, 0].long(), a_all, cell[:, 1], cell[:, 0], t[:, 2:6], t[:, 1].long()
