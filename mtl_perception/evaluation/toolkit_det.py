"""Detection scored as the BDD100K toolkit scores it.

The toolkit (bdd100k/eval/run.py -> scalabel/eval/detect.py) converts frames to COCO
(scalabel/label/to_coco.py) and runs pycocotools' COCOeval; this module takes the same path:
- boxes measured as scalabel's box2d_to_bbox does: width x2 - x1 + 1, height y2 - y1 + 1;
- crowd boxes and det_20's ignored categories (other person, other vehicle, trailer, as their
  class) become `iscrowd` regions: a detection on one counts neither as true nor false positive;
- COCO matching, 101 recall points, IoU 0.5:0.95, at most 100 detections per image;
- figures x100, -1 where a class has no ground truth, as scalabel reports them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.data.bdd100k import (
    DETECTION_CLASSES,
    IGNORE_MAPPING,
    NAME_MAPPING,
    DatasetError,
    FrameLabels,
    box_problems,
    describe_box_problem,
    read_frame_list,
)

METRICS = ("AP", "AP50", "AP75", "AR100")


@dataclass(frozen=True)
class PredictedFrame:
    """One frame's detections in image pixels: boxes float[N, 4] x1, y1, x2, y2; scores float[N]."""

    name: str
    boxes: np.ndarray
    scores: np.ndarray
    categories: tuple[str, ...]

    def to_scalabel(self) -> dict:
        """The frame in BDD100K/scalabel's format, as the official evaluation reads predictions."""
        return {"name": self.name, "labels": [
            {"id": str(i), "category": c, "score": round(float(s), 5),
             "box2d": {"x1": round(float(b[0]), 2), "y1": round(float(b[1]), 2), "x2": round(float(b[2]), 2),
                       "y2": round(float(b[3]), 2)}}
            for i, (b, s, c) in enumerate(zip_strict(self.boxes.tolist(), self.scores.tolist(), self.categories))]}


@dataclass(frozen=True)
class DetScores:
    """Toolkit figures (x100; -1 where a class has no ground truth)."""

    overall: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "per_class": self.per_class,
                "definition": "BDD100K toolkit / scalabel: COCO AP@0.5:0.95, 101 points, +1 box widths, "
                              "crowd and ignored categories as ignored regions, x100"}


def _scored_category(name: str) -> str:
    name = NAME_MAPPING.get(name, name)
    return IGNORE_MAPPING.get(name, name)


def load_predictions(path: Path) -> list[PredictedFrame]:
    """Predictions in BDD100K/scalabel's format (a list of frames, or {"frames": [...]}), each label with
    a category, box2d and score."""
    out = []
    for index, frame in enumerate(read_frame_list(path, "predictions")):
        try:
            labels = [lb for lb in frame.get("labels") or [] if "box2d" in lb]
            boxes = np.array([[lb["box2d"][k] for k in ("x1", "y1", "x2", "y2")] for lb in labels],
                             np.float64).reshape(-1, 4)
            scores = np.array([float(lb["score"]) for lb in labels], np.float64)
            # as the toolkit converts results (bdd100k_to_scalabel): names mapped, and a prediction of an ignored
            # category (trailer, other vehicle, other person) scored as the class it maps to
            categories = tuple(_scored_category(lb["category"]) for lb in labels)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DatasetError(f"{path}: frame {index} is malformed ({type(err).__name__}: {err}); each "
                               "prediction needs 'category', 'box2d' and 'score'") from err
        for i, problem in box_problems(boxes)[:1]:
            raise DatasetError(describe_box_problem(path, frame["name"], boxes, i, problem)
                               + ": the predictions cannot be scored; fix the model's output or its writer")
        if not np.isfinite(scores).all():
            i = int(np.flatnonzero(~np.isfinite(scores))[0])
            raise DatasetError(f"{path}: frame {frame['name']!r}: box {i} has score {scores[i]}: the predictions "
                               "cannot be scored")
        out.append(PredictedFrame(frame["name"], boxes, scores, categories))
    return out


def _bbox(box: Sequence[float]) -> list[float]:
    """scalabel's box2d_to_bbox: x, y, w, h with w = x2 - x1 + 1, h = y2 - y1 + 1."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1 + 1, y2 - y1 + 1]


def score_detections(labels: Sequence[FrameLabels], predictions: Iterable[PredictedFrame],
                     classes: Sequence[str] = DETECTION_CLASSES) -> DetScores:
    """AP, AP50, AP75 and AR100, overall and per class, as the toolkit computes them."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class_ids = {c: i + 1 for i, c in enumerate(classes)}
    image_ids = {f.name: i + 1 for i, f in enumerate(sorted(labels, key=lambda f: f.name))}
    gt_annotations: list[dict[str, Any]] = []
    for frame in labels:
        for box, category, ignore in zip_strict(frame.boxes.tolist(), frame.categories, frame.ignore.tolist()):
            if category in class_ids:
                bbox = _bbox(box)
                gt_annotations.append({"id": len(gt_annotations) + 1, "image_id": image_ids[frame.name],
                                       "category_id": class_ids[category], "bbox": bbox,
                                       "area": bbox[2] * bbox[3], "iscrowd": int(ignore), "ignore": 0})
    detections: list[dict[str, Any]] = []
    for predicted in predictions:
        if predicted.name not in image_ids:
            raise DatasetError(f"prediction frame {predicted.name!r} is not in the labels: score predictions "
                               "against the labels of the same split")
        for box, score, category in zip_strict(predicted.boxes.tolist(), predicted.scores.tolist(), predicted.categories):
            if category in class_ids:
                bbox = _bbox(box)
                detections.append({"id": len(detections) + 1, "image_id": image_ids[predicted.name],
                                   "category_id": class_ids[category], "bbox": bbox, "area": bbox[2] * bbox[3],
                                   "score": score, "iscrowd": 0})
    images = [{"id": i, "file_name": name} for name, i in image_ids.items()]
    categories = [{"id": i, "name": c} for c, i in class_ids.items()]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt, dt = COCO(), COCO()
        gt.dataset = {"images": images, "categories": categories, "annotations": gt_annotations}
        dt.dataset = {"images": images, "categories": categories, "annotations": detections}
        gt.createIndex()
        dt.createIndex()
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.params.imgIds = sorted(image_ids.values())
        evaluation.evaluate()
        evaluation.accumulate()
    precision, recall = evaluation.eval["precision"], evaluation.eval["recall"]  # [T,R,K,A,M], [T,K,A,M]
    max_dets = evaluation.params.maxDets.index(100)

    def mean(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean() * 100) if valid.size else -1.0

    def scores(k: slice | int) -> dict[str, float]:
        return {"AP": mean(precision[:, :, k, 0, max_dets]), "AP50": mean(precision[0, :, k, 0, max_dets]),
                "AP75": mean(precision[5, :, k, 0, max_dets]), "AR100": mean(recall[:, k, 0, max_dets])}

    return DetScores(scores(slice(None)), {c: scores(i) for i, c in enumerate(classes)})


def format_scores(result: DetScores) -> str:
    """The toolkit's table: one row per class and OVERALL, one decimal, '-' where a class has no labels."""
    def cell(value: float) -> str:
        return "-" if value < 0 else f"{value:.1f}"

    lines = [f"| class | {' | '.join(METRICS)} |", "|---|" + "---|" * len(METRICS)]
    for name, values in [*result.per_class.items(), ("OVERALL", result.overall)]:
        lines.append(f"| {name} | {' | '.join(cell(values[m]) for m in METRICS)} |")
    return "\n".join(lines)
