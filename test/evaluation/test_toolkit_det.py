"""Detection scored as the BDD100K toolkit scores it, held to scalabel's own test case on real boxes.

test/data/scalabel-det/ is scalabel's detect_test.py case (real BDD100K frames, a detector's
predictions, Apache-2.0, see its README); the expected values are the ones that test asserts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtl_perception.data.bdd100k import FrameLabels, load_frames
from mtl_perception.evaluation.toolkit_det import PredictedFrame, load_predictions, score_detections

CASE = Path(__file__).resolve().parents[1] / "data" / "scalabel-det"
# scalabel tests/eval/detect_test.py: AP per class (x100), -1 without ground truth, and the overall row
SCALABEL_AP = {"pedestrian": 41.37670388, "rider": 41.70985554, "car": 66.14185519, "truck": 50.07078219,
               "bus": 0.30253025, "train": -1.0, "motorcycle": 4.57462895, "bicycle": -1.0, "traffic light": -1.0,
               "traffic sign": -1.0}
SCALABEL_OVERALL = {"AP": 34.02939267, "AP50": 55.32390041, "AP75": 34.9387336, "AR100": 40.95160450224777}


@pytest.fixture(scope="module")
def scalabel_case() -> tuple[list[FrameLabels], list[PredictedFrame]]:
    return load_frames(CASE / "track_sample_anns.json"), load_predictions(CASE / "bbox_predictions.json")


def test_reproduces_scalabel_on_real_boxes(scalabel_case: tuple) -> None:
    result = score_detections(*scalabel_case)
    for name, expected in SCALABEL_AP.items():
        assert result.per_class[name]["AP"] == pytest.approx(expected, abs=0.5), name
    for metric, expected in SCALABEL_OVERALL.items():
        assert result.overall[metric] == pytest.approx(expected, abs=0.5), metric


def test_the_real_case_needs_crowd_handling(scalabel_case: tuple) -> None:
    """Crowd boxes kept as ordinary ground truth move classes away from scalabel's figures: the test
    above would catch a reader that dropped the attribute."""
    labels, predictions = scalabel_case
    assert sum(int(f.crowd.sum()) for f in labels) == 132
    no_crowd = [FrameLabels(f.name, f.boxes, f.categories, f.attributes, np.zeros_like(f.crowd),
                            f.ignored, f.occluded, f.truncated) for f in labels]
    wrong = score_detections(no_crowd, predictions).per_class
    assert max(abs(wrong[c]["AP"] - ap) for c, ap in SCALABEL_AP.items() if ap >= 0) > 0.5


def _frame(name: str, boxes: list, categories: tuple, crowd: list | None = None) -> FrameLabels:
    n = len(boxes)
    ignored = np.array([c in ("other vehicle",) for c in categories], bool)
    return FrameLabels(name, np.array(boxes, np.float32).reshape(-1, 4),
                       tuple("car" if c == "other vehicle" else c for c in categories), {},
                       np.array(crowd or [False] * n, bool), ignored, np.zeros(n, bool), np.zeros(n, bool))


def test_detections_on_ignored_regions_are_neither_true_nor_false() -> None:
    labels = [_frame("a.jpg", [[0, 0, 99, 99], [300, 300, 499, 399], [600, 0, 699, 99]],
                     ("car", "car", "other vehicle"), [False, True, False])]
    hit = PredictedFrame("a.jpg", np.array([[0, 0, 99, 99.0]]), np.array([0.5]), ("car",))
    assert score_detections(labels, [hit]).per_class["car"]["AP"] == pytest.approx(100.0)
    # higher-scored detections on the crowd box and on the "other vehicle" box change nothing
    with_ignored = PredictedFrame("a.jpg", np.array([[0, 0, 99, 99.0], [320, 310, 400, 390], [600, 0, 699, 99]]),
                                  np.array([0.5, 0.9, 0.8]), ("car", "car", "car"))
    assert score_detections(labels, [with_ignored]).per_class["car"]["AP"] == pytest.approx(100.0)
    # the same box as a plain false positive elsewhere costs precision
    stray = PredictedFrame("a.jpg", np.array([[0, 0, 99, 99.0], [900, 600, 999, 699]]), np.array([0.5, 0.9]),
                           ("car", "car"))
    assert score_detections(labels, [stray]).per_class["car"]["AP"] < 60.0


def test_boxes_are_measured_with_plus_one() -> None:
    # 10x10 ground truth [0, 0, 9, 9] is 10 px wide to scalabel; a detection [1, 0, 10, 9] then
    # overlaps 9x10 of 11x10 (IoU 0.818), under 0.85 and above 0.8: AP75 1, AP at 0.85+ thresholds 0
    labels = [_frame("a.jpg", [[0, 0, 9, 9]], ("car",))]
    prediction = PredictedFrame("a.jpg", np.array([[1, 0, 10, 9.0]]), np.array([0.9]), ("car",))
    result = score_detections(labels, [prediction]).per_class["car"]
    assert result["AP75"] == pytest.approx(100.0)
    assert result["AP"] == pytest.approx(100.0 * 7 / 10)  # thresholds 0.50 ... 0.80 of ten


def test_score_det_command(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "score-det", *args],
                              capture_output=True, text=True, timeout=120)

    result = run("--labels", str(CASE / "track_sample_anns.json"), "--predictions",
                 str(CASE / "bbox_predictions.json"), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["overall"]["AP"] == pytest.approx(SCALABEL_OVERALL["AP"], abs=1e-6)
    assert scores["per_class"]["train"]["AP"] == -1.0
    table = run("--labels", str(CASE / "track_sample_anns.json"), "--predictions", str(CASE / "bbox_predictions.json"))
    assert "| car | 66.1 | 90.7 | 73.9 | 69.8 |" in table.stdout and "| OVERALL | 34.0 | 55.3 | 34.9 | 41.0 |" in table.stdout
    stranger = tmp_path / "pred.json"
    stranger.write_text(json.dumps([{"name": "elsewhere.jpg", "labels": []}]))
    refused = run("--labels", str(CASE / "track_sample_anns.json"), "--predictions", str(stranger))
    assert refused.returncode == 2 and "'elsewhere.jpg' is not in the labels" in refused.stderr


@pytest.mark.parametrize(("side", "field", "value", "message"), [
    ("predictions", "x1", float("nan"), "is not a finite number"), ("labels", "x1", float("nan"), "is not a finite number"),
    ("predictions", "x2", -5.0, "is inverted"), ("labels", "x2", -5.0, "is inverted"),
    ("predictions", "score", float("nan"), "has score nan")])
def test_score_det_refuses_boxes_no_metric_can_score(tmp_path: Path, field: str, value: float, message: str,
                                                     side: str) -> None:
    """NaN passes every comparison: x1 = NaN once scored AP 61.3 against 25.0 for the real boxes."""
    files = {"labels": CASE / "track_sample_anns.json", "predictions": CASE / "bbox_predictions.json"}
    frames = json.loads(files[side].read_text())
    frames = frames["frames"] if isinstance(frames, dict) else frames
    first = next(f for f in frames if f.get("labels"))
    label = next(lb for lb in first["labels"] if "box2d" in lb)
    (label if field == "score" else label["box2d"])[field] = value
    changed = tmp_path / f"{side}.json"
    changed.write_text(json.dumps(frames))
    files[side] = changed
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "score-det", "--labels", str(files["labels"]),
                             "--predictions", str(files["predictions"])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr and str(changed) in result.stderr, result.stderr
    assert f"frame {first['name']!r}" in result.stderr and "Traceback" not in result.stderr
