"""Tracking scored as the BDD100K toolkit scores it.

`bdd100k.eval.run -t box_track` (scalabel/eval/mot.py) counts CLEAR MOT and IDF1 with py-motmetrics, and this
module takes the same path with the same library:
- per video and per class of box_track's eight (pedestrian ... bicycle), frames in frameIndex order; a box is
  matched when its IoU is at least 0.5 (boxes measured as scalabel's box2d_to_bbox: width x2 - x1 + 1);
- crowd boxes and the categories BDD100K maps to ignored regions (other person, other vehicle, trailer) are no
  one's ground truth: a predicted box that matches nothing and lies more than half inside one is dropped;
- per class, every video's accumulator together (motmetrics' OVERALL); then the three super classes (human,
  vehicle, bike), AVERAGE (the mean over the eight classes, a class without any box counting 0, as the
  toolkit's mMOTA does) and OVERALL (every class's events together);
- rates x100, counts as counts.
A video missing from the predictions is a video of empty frames, as the toolkit treats it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.data.bdd100k import IGNORE_MAPPING, NAME_MAPPING, DatasetError

TRACK_CLASSES = ("pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
SUPER_CLASSES = {"human": ("pedestrian", "rider"), "vehicle": ("car", "truck", "bus", "train"),
                 "bike": ("motorcycle", "bicycle")}
# motmetrics' names -> the toolkit's
METRICS = {"idf1": "IDF1", "mota": "MOTA", "motp": "MOTP", "num_false_positives": "FP", "num_misses": "FN",
           "num_switches": "IDSw", "mostly_tracked": "MT", "partially_tracked": "PT", "mostly_lost": "ML",
           "num_fragmentations": "FM"}
AVERAGE, OVERALL = "AVERAGE", "OVERALL"


@dataclass(frozen=True)
class TrackScores:
    """The toolkit's figures: by_class[name][metric] for each class, super class, AVERAGE and OVERALL."""

    by_class: dict[str, dict[str, float]]
    frames: int
    videos: int

    @property
    def mota(self) -> float:
        return self.by_class[AVERAGE]["MOTA"]

    @property
    def idf1(self) -> float:
        return self.by_class[AVERAGE]["IDF1"]

    @property
    def id_switches(self) -> int:
        return int(self.by_class[OVERALL]["IDSw"])

    def summary(self) -> dict[str, Any]:
        """What eval reports: the toolkit's headline figures and ID switches per 100 frames."""
        average, overall = self.by_class[AVERAGE], self.by_class[OVERALL]
        return {"mMOTA": average["MOTA"], "mIDF1": average["IDF1"], "mMOTP": average["MOTP"],
                "MOTA": overall["MOTA"], "IDF1": overall["IDF1"], "IDSw": self.id_switches,
                "IDSw_per_100_frames": 100.0 * self.id_switches / max(self.frames, 1),
                "FP": int(overall["FP"]), "FN": int(overall["FN"]), "frames": self.frames, "videos": self.videos}


@dataclass(frozen=True)
class _Boxes:
    """One frame's boxes of the eight classes (x, y, w, h as the toolkit measures them), and its ignored regions."""

    boxes: np.ndarray
    classes: np.ndarray
    ids: list[Any]
    ignored: np.ndarray


def _parse(labels: Iterable[dict], predicted: bool) -> _Boxes:
    boxes, classes, ids, ignored = [], [], [], []
    for label in labels:
        box = label.get("box2d")
        if box is None:
            continue
        category = NAME_MAPPING.get(label["category"], label["category"])
        attributes = label.get("attributes") or {}
        crowd = bool(attributes.get("crowd", False)) or bool(attributes.get("ignored", False))
        if category in IGNORE_MAPPING:
            category, crowd = IGNORE_MAPPING[category], True
        if category not in TRACK_CLASSES:
            raise DatasetError(f"category {label['category']!r} is none of box_track's ({', '.join(TRACK_CLASSES)}) "
                               "nor one they map or ignore")
        xywh = [box["x1"], box["y1"], box["x2"] - box["x1"] + 1, box["y2"] - box["y1"] + 1]
        if crowd:
            ignored.append(xywh)
            continue
        boxes.append(xywh)
        classes.append(TRACK_CLASSES.index(category))
        ids.append(_prediction_id(label["id"]) if predicted else label["id"])
    return _Boxes(np.array(boxes, np.float64).reshape(-1, 4), np.array(classes, np.int64), ids,
                  np.array(ignored, np.float64).reshape(-1, 4))


def _prediction_id(value: Any) -> int:
    # the toolkit reads predicted ids as integers
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DatasetError(f"predicted track id {value!r} is not an integer, as BDD100K's box_track results are") from None


def _inside_fraction(preds: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """float[P, R]: how much of each predicted box lies inside each region."""
    x1 = np.maximum(preds[:, None, 0], regions[None, :, 0])
    y1 = np.maximum(preds[:, None, 1], regions[None, :, 1])
    x2 = np.minimum(preds[:, None, 0] + preds[:, None, 2], regions[None, :, 0] + regions[None, :, 2])
    y2 = np.minimum(preds[:, None, 1] + preds[:, None, 3], regions[None, :, 1] + regions[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    area = (preds[:, 2] * preds[:, 3])[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area != 0)


def _numbered_ids(frames: Sequence[dict]) -> dict[str, int]:
    """The video's ground-truth ids as numbers (motmetrics keeps ids as floats): their own value where every id
    is digits, else their rank in sorted order from 1, as the toolkit numbers them."""
    ids = sorted({str(label["id"]) for frame in frames for label in frame.get("labels") or []})
    if all(i.isdigit() for i in ids):
        return {i: int(i) for i in ids}
    return {i: n for n, i in enumerate(ids, start=1)}


def _iou_distances(mm: Any, gt: np.ndarray, pred: np.ndarray, iou_threshold: float) -> np.ndarray:
    """float[G, P]: 1 - IoU, NaN (no match) below the threshold: motmetrics' iou_matrix, whose np.asfarray
    NumPy 2 removed (motmetrics 1.4.0 is its last release), around the same library's boxiou."""
    if not len(gt) or not len(pred):
        return np.full((len(gt), len(pred)), np.nan)
    distances = 1 - mm.distances.boxiou(gt[:, None], pred[None, :])
    return np.where(distances > 1 - iou_threshold, np.nan, distances)


def _motmetrics() -> Any:
    try:
        import motmetrics  # evaluation only: the node never imports this module
    except ImportError:
        raise ValueError("tracking is scored with py-motmetrics, which is not installed: "
                         "pip install 'mtl_perception[evaluation]' (or motmetrics==1.4.0)") from None
    return motmetrics


def _accumulate_video(truth: Sequence[dict], predicted: Sequence[dict], iou_threshold: float,
                      ignore_threshold: float) -> list[Any]:
    """One motmetrics accumulator per class for one video (frames paired by frameIndex)."""
    mm = _motmetrics()

    accumulators = [mm.MOTAccumulator(auto_id=True) for _ in TRACK_CLASSES]
    by_index = {frame.get("frameIndex", 0): frame for frame in predicted}
    numbers = _numbered_ids(truth)
    for frame in sorted(truth, key=lambda f: f.get("frameIndex", 0)):
        gt = _parse([{**label, "id": numbers[str(label["id"])]} for label in frame.get("labels") or []],
                    predicted=False)
        pred = _parse((by_index.get(frame.get("frameIndex", 0)) or {}).get("labels") or [], predicted=True)
        for c, accumulator in enumerate(accumulators):
            gt_c, pred_c = gt.classes == c, pred.classes == c
            gt_ids = [i for i, keep in zip_strict(gt.ids, gt_c) if keep]
            pred_ids = np.array([i for i, keep in zip_strict(pred.ids, pred_c) if keep], np.int64)
            distances = _iou_distances(mm, gt.boxes[gt_c], pred.boxes[pred_c], iou_threshold)
            if len(gt.ignored):
                unmatched = np.ones(len(pred_ids), bool)
                rows, cols = mm.lap.linear_sum_assignment(distances)
                for r, k in zip_strict(rows, cols):
                    if np.isfinite(distances[r, k]):
                        unmatched[k] = False
                inside = (_inside_fraction(pred.boxes[pred_c], gt.ignored) > ignore_threshold).any(axis=1)
                keep = ~(unmatched & inside)
                pred_ids, distances = pred_ids[keep], distances[:, keep]
            if distances.shape != (0, 0):
                accumulator.update(gt_ids, pred_ids.tolist(), distances)
    return accumulators


def _class_figures(accumulators: list[Any]) -> dict[str, float]:
    mm = _motmetrics()

    host = mm.metrics.create()
    names = [str(i) for i in range(len(accumulators))]
    summary = host.compute_many(accumulators, names=names, metrics=list(METRICS), generate_overall=True)
    figures: dict[str, float] = {METRICS[k]: v["OVERALL"] for k, v in summary.to_dict().items()}
    if isinstance(figures["MOTP"], float) and math.isnan(figures["MOTP"]):
        # motmetrics leaves OVERALL's MOTP undefined where some video has none: the toolkit weights them itself
        detections = host.compute_many(accumulators, names=names, metrics=["num_detections"], generate_overall=True)
        weighted = float((summary["motp"] * detections["num_detections"]).sum())
        figures["MOTP"] = 1 - mm.math_util.quiet_divide(weighted, detections["num_detections"]["OVERALL"])
    else:
        figures["MOTP"] = 1 - figures["MOTP"]
    return {k: 100 * v if isinstance(v, float) else v for k, v in figures.items()}


RATES = ("IDF1", "MOTA", "MOTP")  # averaged over the classes; the counts are summed


def _average(per_class: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in METRICS.values():
        values = np.nan_to_num(np.array([f[metric] for f in per_class], np.float64), nan=0, posinf=0, neginf=0)
        out[metric] = float(values.mean()) if metric in RATES else int(values.sum())
    return out


def _videos(frames: Iterable[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for frame in frames:
        out.setdefault(str(frame.get("videoName", "")), []).append(frame)
    return out


def score_tracks(truth: Iterable[dict], predicted: Iterable[dict], iou_threshold: float = 0.5,
                 ignore_threshold: float = 0.5) -> TrackScores:
    """The toolkit's box_track figures for predicted frames (scalabel box_track JSON frames) against the truth's."""
    truth_videos, predicted_videos = _videos(truth), _videos(predicted)
    if not truth_videos:
        raise DatasetError("the box_track ground truth holds no frames")
    strays = sorted(set(predicted_videos) - set(truth_videos))
    if strays:
        raise DatasetError(f"predictions for videos the ground truth lacks: {', '.join(strays[:3])}"
                           f"{' ...' if len(strays) > 3 else ''}")
    per_video = [_accumulate_video(frames, predicted_videos.get(video, []), iou_threshold, ignore_threshold)
                 for video, frames in truth_videos.items()]
    # per class: the videos where that class had any event (the toolkit leaves the others out)
    class_accumulators = [[video[c] for video in per_video if len(video[c].events)] for c in range(len(TRACK_CLASSES))]
    per_class = [_class_figures(accs) for accs in class_accumulators]
    by_class = dict(zip_strict(TRACK_CLASSES, per_class))
    for name, members in SUPER_CLASSES.items():
        by_class[name] = _class_figures([a for m in members for a in class_accumulators[TRACK_CLASSES.index(m)]])
    by_class[AVERAGE] = _average(per_class)
    by_class[OVERALL] = _class_figures([a for accs in class_accumulators for a in accs])
    frames = sum(len(f) for f in truth_videos.values())
    return TrackScores(by_class, frames, len(truth_videos))


BDD100K_VIDEO_LABEL_HZ = 5.0  # BDD100K's tracking labels are 5 frames a second: a frame without timestamp is timed so


@dataclass(frozen=True)
class TrackedFrame:
    """Where a labelled frame sits in its video."""

    video: str
    index: int
    stamp_ns: int


def load_track_labels(folder: Path) -> list[dict]:
    """Every frame of a box_track label folder (one JSON list of frames per video), in file and frame order."""
    frames: list[dict] = []
    for path in sorted(folder.glob("*.json")):
        try:
            video = json.loads(path.read_text())
        except ValueError as err:
            raise DatasetError(f"{path} is not JSON: {err}") from err
        if not isinstance(video, list) or not all(isinstance(f, dict) and "name" in f for f in video):
            raise DatasetError(f"{path} is not a box_track file: expected a list of frames with name, videoName, "
                               "frameIndex and labels")
        frames += sorted(video, key=lambda f: f.get("frameIndex", 0))
    return frames


def frame_positions(frames: Iterable[dict]) -> dict[str, TrackedFrame]:
    """Frame name -> its video, index and stamp (the timestamp in ms, or the index at BDD100K's 5 Hz)."""
    out = {}
    for frame in frames:
        index = int(frame.get("frameIndex", 0))
        stamp_ms = frame.get("timestamp")
        stamp_ns = int(stamp_ms) * 1_000_000 if stamp_ms is not None else round(index * 1e9 / BDD100K_VIDEO_LABEL_HZ)
        out[Path(frame["name"]).name] = TrackedFrame(str(frame.get("videoName", "")), index, stamp_ns)
    return out


def box_track_frame(name: str, video: str, index: int, boxes: np.ndarray, scores: np.ndarray,
                    categories: Sequence[str], track_ids: np.ndarray, timestamp_ms: int | None = None) -> dict:
    """One frame of predicted tracks in BDD100K's box_track layout (what the toolkit reads as results): the boxes
    a confirmed track holds (track id > 0) whose category box_track scores."""
    labels = [{"id": str(int(track)), "category": category, "score": round(float(score), 5),
               "box2d": {"x1": round(float(b[0]), 2), "y1": round(float(b[1]), 2), "x2": round(float(b[2]), 2),
                         "y2": round(float(b[3]), 2)}}
              for b, score, category, track in zip_strict(boxes.tolist(), scores.tolist(), categories,
                                                          track_ids.tolist())
              if track and category in TRACK_CLASSES]
    frame: dict[str, Any] = {"name": name, "videoName": video, "frameIndex": index, "labels": labels}
    if timestamp_ms is not None:
        frame["timestamp"] = timestamp_ms
    return frame
