"""Pseudo-labels: teachers' outputs fused into BDD100K-layout labels, with ignore regions where they are unsure.

Per frame:
- every detector (and, with flips, its mirrored pass) gives boxes, mapped to BDD100K classes by
  COCO_TO_BDD100K; boxes of all passes are fused by weighted box fusion (ensemble-boxes; ZFTurbo's
  implementation of Solovyev et al.), so boxes the passes agree on keep their score and a box one pass of
  several found is weighed down;
- fused boxes scoring >= `box_keep` become labels; those in [`box_ignore`, `box_keep`) become ignore regions
  (BDD100K's crowd attribute: no loss calls them object or background); lower ones are dropped;
- a person box lying mostly inside a bicycle or motorcycle box is a rider to BDD100K, which COCO has no
  class for: it becomes an ignore region rather than a wrong pedestrian;
- segmentation probabilities of every segmenter (and flipped pass) are averaged; a pixel is drivable / lane
  where the mean is >= 0.5, and an ignore pixel where it lies within `pixel_margin` of 0.5.

Classes the COCO teachers cannot see at all (UNSEEN_BY_COCO_TEACHERS) are absent from the labels, so a model
trained on them alone would learn them as background: mix in data that has them (the synthetic scenes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.data.bdd100k import (
    DETECTION_CLASSES,
    DRIVABLE_BACKGROUND,
    DRIVABLE_DIRECT,
    DRIVABLE_IGNORE,
    LANE_BACKGROUND,
    LANE_IGNORE,
    encode_lane,
)
from mtl_perception.data.teachers import (
    Detector,
    Segmenter,
    TeacherDetections,
    TeacherMasks,
    flipped_detections,
    flipped_masks,
)

# The one COCO -> BDD100K class mapping (BDD100K's det_20 names). What a BDD100K-trained teacher of this
# project's contract says passes through under its own names.
COCO_TO_BDD100K: dict[str, str] = {
    "person": "pedestrian",
    "bicycle": "bicycle",
    "car": "car",
    "motorcycle": "motorcycle",
    "bus": "bus",
    "train": "train",
    "truck": "truck",
    "traffic light": "traffic light",
    "stop sign": "traffic sign",  # COCO's only sign: BDD100K's other traffic signs stay unlabelled
}
# BDD100K classes a COCO teacher gives no label for, or only a small part of
UNSEEN_BY_COCO_TEACHERS: dict[str, str] = {
    "rider": "COCO has no rider class: a person on a bicycle or motorcycle becomes an ignore region",
    "traffic sign": "COCO's only sign is the stop sign; every other traffic sign is missing",
}
RIDER_OVERLAP = 0.5  # share of a person box inside a bicycle/motorcycle box that makes it a rider
# the teachers' drivable area covers the ego lane and the lanes beside it: BDD100K's direct and alternative
# areas merged (the peers' definition). Written as direct (0): they cannot tell the two apart
DRIVABLE_DEFINITION = "direct+alternative"
LANE_CATEGORY = "single other"  # the teachers segment lane lines without a category


@dataclass(frozen=True)
class Thresholds:
    """How teacher scores become labels, ignore regions or nothing; each default is documented in
    docs/training.md ("Training without labels")."""

    box_keep: float = 0.30  # fused box score for a label
    box_ignore: float = 0.10  # fused box score for an ignore region (below box_keep)
    wbf_iou: float = 0.55  # boxes of one class overlapping this much are one object to the fusion
    drivable_margin: float = 0.25  # |p - 0.5| below this: an ignore pixel
    lane_margin: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.box_ignore <= self.box_keep <= 1:
            raise ValueError(f"need 0 <= box-ignore <= box-keep <= 1, got {self.box_ignore} and {self.box_keep}")
        if not 0 < self.wbf_iou <= 1:
            raise ValueError(f"--wbf-iou must lie in (0, 1], got {self.wbf_iou}")
        for name in ("drivable_margin", "lane_margin"):
            if not 0 <= getattr(self, name) < 0.5:
                raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 0.5), got {getattr(self, name)}")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class FusedBoxes:
    """boxes float32[N, 4] frame pixels; scores float32[N]; categories (BDD100K names); ignore bool[N]."""

    boxes: np.ndarray
    scores: np.ndarray
    categories: tuple[str, ...]
    ignore: np.ndarray


def to_bdd100k(det: TeacherDetections, known: Sequence[str]) -> TeacherDetections:
    """A teacher's detections in BDD100K classes: COCO names mapped, BDD100K names kept, the rest dropped."""
    names = [COCO_TO_BDD100K.get(n, n if n in known else "") for n in det.labels]
    keep = np.array([bool(n) for n in names], dtype=bool)
    return TeacherDetections(det.boxes[keep], det.scores[keep], tuple(n for n in names if n))


def fuse_boxes(passes: Sequence[TeacherDetections], classes: Sequence[str], width: int, height: int,
               thresholds: Thresholds, weights: Sequence[float] | None = None) -> FusedBoxes:
    """Weighted box fusion of several passes (each already in BDD100K classes), then the thresholds."""
    from ensemble_boxes import weighted_boxes_fusion

    scale = np.array([width, height, width, height], np.float32)
    boxes_list, scores_list, labels_list = [], [], []
    for det in passes:
        clipped = np.clip(det.boxes / scale, 0.0, 1.0)
        boxes_list.append(clipped.tolist())
        scores_list.append(det.scores.tolist())
        labels_list.append([classes.index(n) for n in det.labels])
    if not any(scores_list):
        return FusedBoxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), (), np.zeros(0, bool))
    boxes, scores, labels = weighted_boxes_fusion(boxes_list, scores_list, labels_list, weights=weights,
                                                  iou_thr=thresholds.wbf_iou, skip_box_thr=thresholds.box_ignore)
    boxes = (np.asarray(boxes, np.float32).reshape(-1, 4) * scale).astype(np.float32)
    scores = np.asarray(scores, np.float32)
    categories = tuple(classes[int(i)] for i in labels)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (scores >= thresholds.box_ignore) & (area > 0)
    boxes, scores = boxes[keep], scores[keep]
    categories = tuple(c for c, k in zip_strict(categories, keep.tolist()) if k)
    ignore = scores < thresholds.box_keep
    ignore |= _riders(boxes, categories, scores >= thresholds.box_ignore)
    return FusedBoxes(boxes, scores, categories, ignore)


def _riders(boxes: np.ndarray, categories: tuple[str, ...], present: np.ndarray) -> np.ndarray:
    """bool[N]: person boxes lying mostly inside a bicycle or motorcycle box."""
    out = np.zeros(len(categories), bool)
    cycles = [i for i, c in enumerate(categories) if c in ("bicycle", "motorcycle") and present[i]]
    if not cycles:
        return out
    for i, category in enumerate(categories):
        if category != "pedestrian":
            continue
        person = boxes[i]
        area = max(float((person[2] - person[0]) * (person[3] - person[1])), 1e-6)
        for j in cycles:
            other = boxes[j]
            w = min(person[2], other[2]) - max(person[0], other[0])
            h = min(person[3], other[3]) - max(person[1], other[1])
            if w > 0 and h > 0 and w * h / area >= RIDER_OVERLAP:
                out[i] = True
                break
    return out


def fuse_masks(passes: Sequence[TeacherMasks], shape: tuple[int, int],
               thresholds: Thresholds) -> tuple[np.ndarray | None, np.ndarray | None]:
    """BDD100K-encoded drivable and lane masks (uint8[H, W]) from the mean probability of the passes, with
    ignore pixels near 0.5; None for a task no pass segments."""
    drivable = _mean([p.drivable for p in passes], shape)
    lane = _mean([p.lane for p in passes], shape)
    out_drivable = out_lane = None
    if drivable is not None:
        out_drivable = np.full(shape, DRIVABLE_BACKGROUND, np.uint8)
        out_drivable[drivable >= 0.5] = DRIVABLE_DIRECT
        out_drivable[np.abs(drivable - 0.5) < thresholds.drivable_margin] = DRIVABLE_IGNORE
    if lane is not None:
        out_lane = np.full(shape, LANE_BACKGROUND, np.uint8)
        out_lane[lane >= 0.5] = encode_lane(LANE_CATEGORY)
        out_lane[np.abs(lane - 0.5) < thresholds.lane_margin] = LANE_IGNORE
    return out_drivable, out_lane


def _mean(maps: list[np.ndarray | None], shape: tuple[int, int]) -> np.ndarray | None:
    present = [m for m in maps if m is not None]
    if not present:
        return None
    for m in present:
        if m.shape != shape:
            raise ValueError(f"a teacher's mask is {m.shape}, the frame {shape}")
    return np.mean(present, axis=0)


def frame_record(name: str, fused: FusedBoxes, source: str, teachers: str) -> dict:
    """One frame of det_20 JSON (scalabel's frame format), each label with its score and where it came from."""
    labels = []
    for index, (box, score, category, ignore) in enumerate(
            zip_strict(fused.boxes.tolist(), fused.scores.tolist(), fused.categories, fused.ignore.tolist())):
        labels.append({
            "id": str(index),
            "category": category,
            "box2d": {"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]},
            "score": round(score, 4),
            "attributes": {"crowd": bool(ignore), "occluded": False, "truncated": False, "pseudo_label": teachers},
        })
    return {"name": name, "attributes": {"weather": "undefined", "scene": "undefined", "timeofday": "undefined",
                                         "source": source},
            "labels": labels}


class Labeller:
    """The teachers of one run and the fusion of their outputs: label(frame) -> fused boxes, drivable and lane
    masks (BDD100K-encoded)."""

    def __init__(self, detectors: Sequence[Detector], segmenters: Sequence[Segmenter], flip: bool,
                 thresholds: Thresholds) -> None:
        self.detectors, self.segmenters, self.flip, self.thresholds = list(detectors), list(segmenters), flip, thresholds
        passes = [d.name for d in detectors] + [f"{d.name} flipped" for d in detectors if flip]
        self.detection_teachers = " + ".join(passes) + (" (WBF)" if len(passes) > 1 else "")

    def label(self, image: np.ndarray) -> tuple[FusedBoxes, np.ndarray | None, np.ndarray | None]:
        h, w = image.shape[:2]
        passes = [d.detect(image) for d in self.detectors]
        masks = [s.segment(image) for s in self.segmenters]
        if self.flip:
            passes += [flipped_detections(d, image) for d in self.detectors]
            masks += [flipped_masks(s, image) for s in self.segmenters]
        fused = fuse_boxes([to_bdd100k(p, DETECTION_CLASSES) for p in passes], DETECTION_CLASSES, w, h,
                           self.thresholds)
        drivable, lane = fuse_masks(masks, (h, w), self.thresholds)
        return fused, drivable, lane

