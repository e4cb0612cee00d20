"""Metrics against pycocotools and hand-computed cases."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mtl_perception.evaluation.metrics import (
    BinaryConfusion,
    DetectionAccumulator,
    interpolated_ap,
    match_frame,
)


def _random_frames(seed: int, n_frames: int = 40, n_classes: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        n_gt = int(rng.integers(0, 8))
        xy = rng.uniform(0, 500, (n_gt, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 120, (n_gt, 2))], 1)
        gt_cls = rng.integers(0, n_classes, n_gt)
        # detections: jittered copies of some ground truth, plus clutter
        keep = rng.random(n_gt) < 0.8
        jitter = gt[keep] + rng.normal(0, 6, (int(keep.sum()), 4))
        clutter_xy = rng.uniform(0, 500, (int(rng.integers(0, 6)), 2))
        clutter = np.concatenate([clutter_xy, clutter_xy + rng.uniform(10, 80, clutter_xy.shape)], 1)
        boxes = np.concatenate([jitter, clutter]).astype(np.float32)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        classes = np.concatenate([gt_cls[keep], rng.integers(0, n_classes, len(clutter))])
        scores = rng.uniform(0.001, 1, len(boxes)).astype(np.float32)
        frames.append({"gt": gt.astype(np.float32), "gt_cls": gt_cls, "boxes": boxes, "scores": scores,
                       "classes": classes})
    return frames


def _coco_map(frames: list[dict], n_classes: int) -> tuple[float, float]:
    images, annotations, results = [], [], []
    for i, f in enumerate(frames):
        images.append({"id": i, "width": 700, "height": 700})
        for (x1, y1, x2, y2), c in zip(f["gt"].tolist(), f["gt_cls"].tolist(), strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": c, "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
        for (x1, y1, x2, y2), s, c in zip(f["boxes"].tolist(), f["scores"].tolist(), f["classes"].tolist(),
                                          strict=True):
            results.append({"image_id": i, "category_id": c, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": c} for c in range(n_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results)
        coco = COCOeval(gt, dt, "bbox")
        coco.params.areaRng = [[0, 1e10]]  # one "all" range: no small/medium/large split
        coco.params.areaRngLbl = ["all"]
        coco.evaluate()
        coco.accumulate()
    precision = coco.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at maxDets 100
    per_class = [precision[:, :, k] for k in range(n_classes) if (precision[:, :, k] > -1).any()]
    map50_95 = float(np.mean([p.mean() for p in per_class]))
    map50 = float(np.mean([p[0].mean() for p in per_class]))
    return map50, map50_95


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_pycocotools(seed: int) -> None:
    frames = _random_frames(seed)
    acc = DetectionAccumulator(("a", "b", "c"))
    for f in frames:
        acc.add(f["boxes"], f["scores"], f["classes"], f["gt"], f["gt_cls"])
    ours = acc.summary()
    map50, map50_95 = _coco_map(frames, 3)
    assert ours["map50"] == pytest.approx(map50, abs=2e-3)
    assert ours["map50_95"] == pytest.approx(map50_95, abs=2e-3)


def test_perfect_and_empty_detection() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    acc = DetectionAccumulator(("car",))
    acc.add(gt, np.array([0.9, 0.8], np.float32), np.zeros(2, np.int64), gt, np.zeros(2, np.int64))
    summary = acc.summary()
    assert summary["map50"] == pytest.approx(1.0) and summary["map50_95"] == pytest.approx(1.0)
    assert summary["recall"] == 1.0 and summary["precision_at_threshold"] == 1.0
    empty = DetectionAccumulator(("car",))
    empty.add(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), gt,
              np.zeros(2, np.int64))
    assert empty.summary()["map50"] == 0.0 and empty.summary()["recall"] == 0.0


def test_matching_takes_each_ground_truth_once() -> None:
    gt = np.array([[0, 0, 10, 10]], np.float32)
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 9]], np.float32)  # a duplicate: the second is a false positive
    tp = match_frame(preds, np.array([0.5, 0.9], np.float32), gt)
    assert tp[0].tolist() == [False, True]  # the higher score takes it
    # AP of a TP then an FP over one ground truth: recall reaches 1 at precision 1
    assert interpolated_ap(np.array([1, 1]), np.array([0, 1]), 1) == pytest.approx(1.0)


def test_memory_does_not_grow_with_frames() -> None:
    acc = DetectionAccumulator(("a", "b", "c"))
    before = acc.tp.nbytes + acc.fp.nbytes
    for f in _random_frames(3, n_frames=200):
        acc.add(f["boxes"], f["scores"], f["classes"], f["gt"], f["gt_cls"])
    assert acc.tp.nbytes + acc.fp.nbytes == before


def test_segmentation_hand_computed() -> None:
    truth = np.array([[1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0]], bool)
    c = BinaryConfusion()
    c.add(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 1)
    assert c.iou == pytest.approx(1 / 3) and c.background_iou == pytest.approx(1 / 3)
    assert c.drivable_summary() == pytest.approx({"miou": 1 / 3, "iou": 1 / 3, "acc": 0.5, "precision": 0.5,
                                                  "recall": 0.5})
    assert c.lane_summary() == pytest.approx({"acc": 0.5, "iou": 1 / 3, "balanced_acc": 0.5})


def test_segmentation_edge_cases() -> None:
    nothing = np.zeros((2, 2), bool)
    everything = np.ones((2, 2), bool)
    empty = BinaryConfusion()
    empty.add(nothing, nothing)  # nothing to find, nothing found
    assert empty.iou == 1.0 and empty.recall == 1.0 and empty.pixel_accuracy == 1.0
    missed = BinaryConfusion()
    missed.add(nothing, everything)  # empty prediction
    assert missed.iou == 0.0 and missed.recall == 0.0
    spurious = BinaryConfusion()
    spurious.add(everything, nothing)  # empty ground truth
    assert spurious.iou == 0.0 and spurious.specificity == 0.0
    perfect = BinaryConfusion()
    perfect.add(everything, everything)
    assert perfect.iou == 1.0 and perfect.lane_summary()["balanced_acc"] == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        perfect.add(nothing, np.zeros((3, 3), bool))


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` (Euclidean) of a set pixel, by OR-ing shifted copies: an independent
    dilation by the disk skimage's binary_dilation(mask, disk(radius)) uses in the toolkit."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius:
                src = mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
                out[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] |= src
    return out


def _toolkit_f(pred: np.ndarray, truth: np.ndarray, radius: int) -> float:
    """bdd100k/eval/lane.py eval_lane_per_threshold, for two non-empty masks."""
    precision = (pred & _near(truth, radius)).sum() / pred.sum()
    recall = (truth & _near(pred, radius)).sum() / truth.sum()
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def test_lane_boundary_f_on_real_bdd100k_masks(bdd100k_samples: Path) -> None:
    from mtl_perception.data.bdd100k import decode_lane_mask, read_mask
    from mtl_perception.evaluation.metrics import BOUNDARY_PIXELS, BoundaryF, boundary_f_score

    masks = [decode_lane_mask(read_mask(p)) for p in sorted((bdd100k_samples / "lane").glob("*.png"))]
    assert len(masks) == 4
    itself = BoundaryF()
    for mask in masks:
        itself.add(mask, mask)
    assert itself.summary() == {"f1_1px": 1.0, "f1_2px": 1.0, "f1_5px": 1.0}
    for mask in masks:
        shifted = np.zeros_like(mask)
        shifted[2:, 3:] = mask[:-2, :-3]  # the marking moved 3 px right and 2 down (3.6 px)
        for radius in BOUNDARY_PIXELS:
            assert boundary_f_score(shifted, mask, radius) == pytest.approx(_toolkit_f(shifted, mask, radius))
        assert boundary_f_score(shifted, mask, 5) == pytest.approx(1.0, abs=0.01)  # all within 5 px
        assert boundary_f_score(shifted, mask, 1) < boundary_f_score(shifted, mask, 2) < 1.0


def test_lane_boundary_f_empty_masks_follow_the_toolkit() -> None:
    from mtl_perception.evaluation.metrics import boundary_f_score

    empty, some = np.zeros((8, 8), bool), np.eye(8, dtype=bool)
    assert boundary_f_score(empty, empty, 1) == 1.0  # nothing there and nothing found
    assert boundary_f_score(empty, some, 1) == 0.0  # precision 1, recall 0
    assert boundary_f_score(some, empty, 1) == 0.0  # precision 0, recall 1


def test_a_slower_model_is_said_to_be_slower_than_the_peer() -> None:
    from mtl_perception.evaluation.benchmark import Latency, PeerComparison

    def latency(name: str, ms: float) -> Latency:
        return Latency(name, "256x384", "onnxruntime", ms, ms, 1e3 / ms, None, 20)

    assert "ours 2.00x faster" in PeerComparison(latency("mobilenetv2", 25.0), latency("yolop", 50.0)).line()
    slower = PeerComparison(latency("resnet50", 86.3), latency("yolop", 50.4)).line()
    assert "ours 1.71x slower" in slower and "faster" not in slower
