"""The project's BDD100K figures against the official toolkit itself: scalabel 0.3.1 (`evaluate_det`) and
bdd100k 1.0.1 (the lane F-score, the segmentation confusion matrix), installed by the `toolkit` extra. On
scalabel's own test case, on random boxes, and on the real BDD100K lane masks in ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

try:
    from bdd100k.common.utils import load_bdd100k_config
    from bdd100k.eval import lane as toolkit_lane
    from bdd100k.eval import seg as toolkit_seg
    from bdd100k.label.to_scalabel import bdd100k_to_scalabel
    from scalabel.eval.detect import evaluate_det
    from scalabel.label.io import load
except ImportError as err:  # pragma: no cover - the toolkit extra is part of `make test`'s venv
    pytest.skip(f"the official toolkit is not installed ({err}): pip install '.[toolkit]' (scalabel 0.3.1, "
                "bdd100k 1.0.1)", allow_module_level=True)

from mtl_perception.data.bdd100k import DETECTION_CLASSES, decode_lane_mask, load_frames
from mtl_perception.evaluation.metrics import BinaryConfusion, BoundaryF, boundary_f_score
from mtl_perception.evaluation.toolkit_det import load_predictions, score_detections

SHARED = Path(__file__).resolve().parents[3] / "shared"
CASE = SHARED / "bdd100k-samples" / "scalabel-det"
LANES = sorted((SHARED / "bdd100k-samples" / "lane").glob("*.png"))
METRICS = ("AP", "AP50", "AP75", "AR100")


def _scalabel(labels: Path, predictions: Path) -> dict[str, float]:
    """What `python -m bdd100k.eval.run -t det` computes (its _load_frames, then evaluate_det)."""
    config = load_bdd100k_config("det")
    frames = [bdd100k_to_scalabel(load(str(path)).frames, config) for path in (labels, predictions)]
    return evaluate_det(*frames, config.scalabel, nproc=1).summary()


def _ours(labels: Path, predictions: Path) -> dict[str, float]:
    scores = score_detections(load_frames(labels, "labels"), load_predictions(predictions)).as_dict()
    flat = dict(scores["overall"])
    flat.update({f"AP/{name}": per["AP"] for name, per in scores["per_class"].items()})
    return flat


def _assert_same(ours: dict[str, float], theirs: dict[str, float]) -> None:
    for metric in METRICS:
        assert ours[metric] == pytest.approx(float(theirs[metric]), abs=1e-6), metric
    for name in DETECTION_CLASSES:
        theirs_ap = float(theirs[f"AP/{name}"])
        # a class with no ground truth: scalabel NaN, ours -1 (the table's "-")
        assert ours[f"AP/{name}"] == (-1.0 if np.isnan(theirs_ap) else pytest.approx(theirs_ap, abs=1e-6)), name


def test_score_det_is_scalabel_on_its_own_test_case() -> None:
    _assert_same(_ours(CASE / "track_sample_anns.json", CASE / "bbox_predictions.json"),
                 _scalabel(CASE / "track_sample_anns.json", CASE / "bbox_predictions.json"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_det_is_scalabel_on_random_boxes(tmp_path: Path, seed: int) -> None:
    """Random frames with every det_20 class, crowd boxes and ignored categories; predictions jittered from
    the truth, missed, duplicated and invented, with random scores."""
    rng = np.random.default_rng(seed)
    categories = [*DETECTION_CLASSES, "other vehicle", "other person", "trailer"]
    labels, predictions = [], []
    for f in range(40):
        truth, guessed = [], []
        for i in range(int(rng.integers(0, 9))):
            x1, y1 = rng.uniform(0, 1200), rng.uniform(0, 650)
            w, h = rng.uniform(4, 200), rng.uniform(4, 150)
            box = {"x1": x1, "y1": y1, "x2": min(x1 + w, 1279.0), "y2": min(y1 + h, 719.0)}
            category = str(rng.choice(categories))
            truth.append({"id": f"{f}-{i}", "category": category, "box2d": box,
                          "attributes": {"crowd": bool(rng.random() < 0.1), "occluded": False, "truncated": False}})
            for copy in range(int(rng.choice([0, 1, 1, 2]))):  # missed, found, found twice
                jitter = rng.normal(0, 0.08 * min(w, h), 4)
                moved = {k: float(v + d) for (k, v), d in zip(box.items(), jitter)}
                moved["x2"], moved["y2"] = max(moved["x2"], moved["x1"] + 1), max(moved["y2"], moved["y1"] + 1)
                guessed.append({"id": f"p{f}-{i}-{copy}", "score": float(rng.random()), "box2d": moved,
                                "category": category if rng.random() < 0.85 else str(rng.choice(DETECTION_CLASSES))})
        for j in range(int(rng.integers(0, 4))):  # invented
            x1, y1 = rng.uniform(0, 1100), rng.uniform(0, 600)
            guessed.append({"id": f"f{f}-{j}", "score": float(rng.random()), "category": str(rng.choice(DETECTION_CLASSES)),
                            "box2d": {"x1": x1, "y1": y1, "x2": x1 + rng.uniform(5, 150), "y2": y1 + rng.uniform(5, 100)}})
        labels.append({"name": f"{f:04d}.jpg", "labels": truth})
        predictions.append({"name": f"{f:04d}.jpg", "labels": guessed})
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    (tmp_path / "predictions.json").write_text(json.dumps(predictions))
    _assert_same(_ours(tmp_path / "labels.json", tmp_path / "predictions.json"),
                 _scalabel(tmp_path / "labels.json", tmp_path / "predictions.json"))


def _predictions_of(truth: np.ndarray) -> list[np.ndarray]:
    """Masks a model might give for a frame's markings: exact, shifted, thickened, thinned, partial, empty."""
    kernel = np.ones((3, 3), np.uint8)
    as_u8 = truth.astype(np.uint8)
    half = truth.copy()
    half[:, : truth.shape[1] // 2] = False
    return [truth, np.roll(truth, 2, axis=1), np.roll(truth, (3, -4), axis=(0, 1)),
            cv2.dilate(as_u8, kernel, iterations=2) > 0, cv2.erode(as_u8, kernel) > 0, half,
            np.zeros_like(truth)]


def test_lane_f_score_is_the_toolkits_on_real_masks() -> None:
    assert LANES, "../shared/bdd100k-samples/lane holds BDD100K's real lane masks"
    ours, theirs = BoundaryF(), []
    for path in LANES:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        truth = decode_lane_mask(raw)
        assert np.array_equal(truth, toolkit_lane.get_foreground(raw).astype(bool)), path.name  # which pixels
        for pred in _predictions_of(truth):
            frame = []
            for radius in toolkit_lane.BOUND_PIXELS:
                expected = toolkit_lane.eval_lane_per_threshold(truth.astype(np.uint8), pred.astype(np.uint8), radius)
                assert boundary_f_score(pred, truth, radius) == pytest.approx(expected, abs=1e-9), (path.name, radius)
                frame.append(expected)
            ours.add(pred, truth)
            theirs.append(frame)
    # frames averaged as the toolkit's merge_results does (before its x100)
    mean = np.mean(theirs, axis=0)
    assert [ours.summary()[f"f1_{r}px"] for r in toolkit_lane.BOUND_PIXELS] == pytest.approx(mean.tolist(), abs=1e-9)
    both_empty = np.zeros((8, 8), bool)
    assert boundary_f_score(both_empty, both_empty, 1) == toolkit_lane.eval_lane_per_threshold(
        both_empty.astype(np.uint8), both_empty.astype(np.uint8), 1)


def test_drivable_figures_follow_the_toolkits_confusion_matrix() -> None:
    """Our drivable IoU, background IoU, mIoU and pixel accuracy from the toolkit's own confusion-matrix code
    (bdd100k/eval/seg.py: fast_hist, per_class_iou, whole_acc) over classes drivable 0, background 1 and an
    ignored 2. The toolkit's drivable benchmark proper scores direct against alternative with background
    ignored, which a merged-drivable model cannot enter (docs/metrics.md)."""
    rng = np.random.default_rng(3)
    confusion, hist = BinaryConfusion(), np.zeros((3, 3), np.int64)
    for _ in range(5):
        truth = np.zeros((72, 128), bool)
        cv2.fillConvexPoly(truth.view(np.uint8), rng.integers(0, 128, (4, 2)).astype(np.int32), 1)
        pred = np.roll(truth, int(rng.integers(-6, 7)), axis=1) | (rng.random(truth.shape) < 0.05)
        confusion.add(pred, truth)
        hist += toolkit_seg.fast_hist((~truth).astype(np.uint8).ravel(), (~pred).astype(np.uint8).ravel(), 3)
    ious = toolkit_seg.per_class_iou(hist)
    summary = confusion.drivable_summary()
    assert summary["iou"] == pytest.approx(ious[0], abs=1e-12)
    assert confusion.background_iou == pytest.approx(ious[1], abs=1e-12)
    assert summary["miou"] == pytest.approx(float(np.mean(ious)), abs=1e-12)
    assert summary["acc"] == pytest.approx(toolkit_seg.whole_acc(hist), abs=1e-12)
    # fast_hist's rows are the truth, its columns the prediction; class 0 is drivable here
    assert summary["precision"] == pytest.approx(hist[0, 0] / hist[:, 0].sum(), abs=1e-12)
    assert summary["recall"] == pytest.approx(hist[0, 0] / hist[0, :].sum(), abs=1e-12)


def test_lane_values_decode_as_the_toolkit_decodes_them() -> None:
    """Every marking value the project writes (encode_lane: each category, solid or dashed, parallel or
    vertical) is read back by the toolkit's own bit functions as that category, style and direction."""
    from bdd100k.label.label import lane_categories

    from mtl_perception.data.bdd100k import LANE_CATEGORIES, encode_lane

    assert list(LANE_CATEGORIES) == [c.name for c in lane_categories]
    for index, category in enumerate(LANE_CATEGORIES):
        for dashed in (False, True):
            for vertical in (False, True):
                value = np.array([encode_lane(category, dashed=dashed, vertical=vertical)], np.uint8)
                funcs = toolkit_lane.sub_task_funcs
                assert bool(toolkit_lane.get_foreground(value)[0])
                assert bool(funcs["category"](value, index)[0]) and bool(funcs["style"](value, int(dashed))[0])
                assert bool(funcs["direction"](value, int(vertical))[0])
