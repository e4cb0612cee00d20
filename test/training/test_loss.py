"""Anchor assignment and loss terms on hand-made cases."""

from __future__ import annotations

import torch

from mtl_perception.training.anchors import STRIDES
from mtl_perception.training.loss import MultiTaskLoss, dice_loss


def _loss() -> MultiTaskLoss:
    anchors = torch.tensor([[[10.0, 10.0], [5.0, 40.0], [40.0, 5.0]]] * 3)
    return MultiTaskLoss(anchors, num_classes=2)


def test_assignment_hand_computed() -> None:
    # a 12 x 12 box centred at (20, 28) on image 0, class 1; at stride 8 the centre is in cell (2, 3),
    # offset (0.5, 0.5) exactly: no neighbour is nearer than the cell itself on either axis
    targets = torch.tensor([[0.0, 1.0, 14.0, 22.0, 26.0, 34.0]])
    loss = _loss()
    centres = (targets[:, 2:4] + targets[:, 4:6]) / 2
    sizes = targets[:, 4:6] - targets[:, 2:4]
    img, anc, gj, gi, tbox, tcls = loss._assign(targets, centres, sizes, 0, STRIDES[0], 8, 8)
    # every anchor is within a size ratio of 4: square 12/10 = 1.2, tall and wide max(12/5, 40/12) = 3.33
    assert img.tolist() == [0, 0, 0] and sorted(anc.tolist()) == [0, 1, 2]
    assert gi.tolist() == [2, 2, 2] and gj.tolist() == [3, 3, 3]
    assert tcls.tolist() == [1, 1, 1]
    torch.testing.assert_close(tbox[0], targets[0, 2:6])


def test_assignment_takes_near_neighbours_and_skips_misfits() -> None:
    # centre (21, 27): frac x = 0.625 (> 0.5, right neighbour), frac y = 0.375 (< 0.5, upper neighbour);
    # the 100 x 100 box is more than 4 times every anchor at this level and is not assigned here
    loss = _loss()
    targets = torch.tensor([[0.0, 0.0, 15.0, 21.0, 27.0, 33.0], [0.0, 0.0, 0.0, 0.0, 100.0, 100.0]])
    centres = (targets[:, 2:4] + targets[:, 4:6]) / 2
    sizes = targets[:, 4:6] - targets[:, 2:4]
    _, anc, gj, gi, _, _ = loss._assign(targets, centres, sizes, 0, 8, 8, 8)
    assert len(anc) == 9  # 3 anchors x 3 cells, all from the first box
    square = anc == 0
    assert sorted(zip(gi[square].tolist(), gj[square].tolist(), strict=True)) == [(2, 2), (2, 3), (3, 3)]


def test_detection_loss_falls_as_prediction_improves() -> None:
    loss = _loss()
    targets = torch.tensor([[0.0, 1.0, 14.0, 22.0, 26.0, 34.0]])
    raw = [torch.zeros(1, 3, 8, 8, 7), torch.zeros(1, 3, 4, 4, 7), torch.zeros(1, 3, 2, 2, 7)]
    box0, obj0, cls0 = loss.detection_losses(raw, targets)
    better = [r.clone() for r in raw]
    better[0][0, :, 3, 2, 6] = 8.0  # the right class, confidently
    better[0][0, :, 3, 2, 5] = -8.0
    _, _, cls1 = loss.detection_losses(better, targets)
    assert cls1 < cls0
    assert box0 > 0 and obj0 > 0


def test_dice_edge_cases() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1, 1] = 1
    perfect = torch.full((1, 2, 4, 4), -20.0)
    perfect[:, 0] = 20.0
    perfect[0, 1, 1, 1], perfect[0, 0, 1, 1] = 20.0, -20.0
    assert dice_loss(perfect, target).item() < 1e-3
    assert dice_loss(-perfect, target).item() > 0.9
    # empty truth and empty prediction: nothing to find, nothing found -> no loss
    empty = torch.zeros(1, 4, 4, dtype=torch.long)
    none = torch.full((1, 2, 4, 4), -20.0)
    none[:, 0] = 20.0
    assert dice_loss(none, empty).item() < 1e-3
