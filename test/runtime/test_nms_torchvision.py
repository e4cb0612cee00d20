"""Both batched-NMS routes (OpenCV >= 4.7's NMSBoxesBatched, and the class offset older OpenCV takes)
against torchvision's nms and batched_nms."""

from __future__ import annotations

import numpy as np
import torch
from test_nms import random_boxes  # the same random cases (pytest puts this folder on sys.path)
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import nms as tv_nms

from mtl_perception.runtime.nms import nms, nms_boxes_batched_opencv, nms_class_offset


def test_matches_torchvision() -> None:
    for seed in range(3):
        boxes, scores, classes = random_boxes(seed)
        expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, 0.5), expected)
        expected = tv_batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes),
                                  0.5).numpy()
        np.testing.assert_array_equal(nms_boxes_batched_opencv(boxes, scores, classes, 0.5), expected)
        np.testing.assert_array_equal(nms_class_offset(boxes, scores, classes, 0.5), expected)
