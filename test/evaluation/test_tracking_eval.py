"""Tracking scores held equal to the official BDD100K toolkit's (`python -m bdd100k.eval.run -t box_track`):
on the toolkit's own box_track test case (scalabel's track_sample_anns.json, 202 real BDD100K frames, with
predictions made from it by dropping, shifting and re-numbering boxes), and on a synthetic drive tracked by
`eval` with the bundled model (issue 32 item 5)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_perception.data.bdd100k import DatasetError
from mtl_perception.data.synthetic_set import SynthConfig, write_dataset
from mtl_perception.evaluation.tracking_eval import AVERAGE, METRICS, OVERALL, score_tracks

pytest.importorskip("bdd100k.eval.run", reason="the official BDD100K toolkit (make setup's toolkit extra)")

# motmetrics 1.4.0, the last release and what the toolkit counts with, calls np.asfarray, which NumPy 2 removed:
# the toolkit runs here with that one function put back, as it was (asarray of floats)
TOOLKIT = ("import runpy, sys, numpy as np\n"
           "np.asfarray = getattr(np, 'asfarray', lambda a, dtype=np.float64: np.asarray(a, dtype=dtype))\n"
           "sys.argv = ['bdd100k.eval.run', *sys.argv[1:]]\n"
           "runpy.run_module('bdd100k.eval.run', run_name='__main__')\n")


def _toolkit(truth: Path, result: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", TOOLKIT, "-t", "box_track", "-g", str(truth), "-r", str(result),
                           "--out-file", str(out), "--nproc", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures: dict = json.loads(out.read_text())
    return figures


def _by_class(toolkit: dict, metric: str) -> dict[str, float]:
    merged: dict[str, float] = {}
    for group in toolkit[metric]:  # classes, super classes, then AVERAGE and OVERALL
        merged.update(group)
    return merged


def _perturbed(frames: list[dict], seed: int) -> list[dict]:
    """Predictions made from ground truth: boxes missed, shifted, re-numbered now and then, and a false one."""
    rng = random.Random(seed)
    numbers: dict[str, int] = {}
    out = []
    for frame in frames:
        labels = []
        for label in frame["labels"]:
            if rng.random() < 0.15:
                continue
            shift = rng.uniform(-5, 5)
            if label["id"] not in numbers or rng.random() < 0.03:
                numbers[label["id"]] = len(numbers) + 1 + 1000 * (label["id"] in numbers)
            labels.append({"id": str(numbers[label["id"]]), "category": label["category"], "score": 0.9,
                           "box2d": {k: v + shift for k, v in label["box2d"].items()}})
        if rng.random() < 0.3:
            labels.append({"id": "99999", "category": "car", "score": 0.5,
                           "box2d": {"x1": 10.0, "y1": 10.0, "x2": 60.0, "y2": 45.0}})
        out.append({"name": frame["name"], "videoName": frame["videoName"], "frameIndex": frame["frameIndex"],
                    "labels": labels})
    return out


def test_equal_to_the_toolkit_on_its_own_test_case(bdd100k_samples: Path, tmp_path: Path) -> None:
    case = bdd100k_samples / "scalabel-det/track_sample_anns.json"
    truth = json.loads(case.read_text())
    predicted = _perturbed(truth, seed=0)
    (tmp_path / "result.json").write_text(json.dumps(predicted))
    toolkit = _toolkit(case, tmp_path / "result.json", tmp_path / "scores.json")
    ours = score_tracks(truth, predicted)
    for metric in METRICS.values():
        for name, value in _by_class(toolkit, metric).items():
            assert ours.by_class[name][metric] == pytest.approx(value, nan_ok=True, abs=1e-9), (metric, name)
    assert ours.mota == pytest.approx(toolkit["mMOTA"]) and ours.idf1 == pytest.approx(toolkit["mIDF1"])
    assert 0 < ours.id_switches and ours.by_class[OVERALL]["FP"] > 0 and ours.by_class[OVERALL]["FN"] > 0


def test_equal_to_the_toolkit_on_a_synthetic_drive_tracked_by_eval(bundled_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "drive"
    write_dataset(SynthConfig(data, train=0, val=24, seed=2, height=360, width=640, drive_frames=12), progress=False)
    done = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "eval", "--data", str(data), "--split", "val",
                           "--model", str(bundled_model), "--threads", "2", "--save-tracks", str(tmp_path / "tracks.json"),
                           "--json", str(tmp_path / "eval.json")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    tracking = json.loads((tmp_path / "eval.json").read_text())["tracking"]
    assert tracking["frames"] == 24 and tracking["videos"] == 2
    toolkit = _toolkit(data / "labels/box_track_20/val", tmp_path / "tracks.json", tmp_path / "scores.json")
    assert tracking["mMOTA"] == pytest.approx(toolkit["mMOTA"]) and tracking["mIDF1"] == pytest.approx(toolkit["mIDF1"])
    assert tracking["IDSw"] == _by_class(toolkit, "IDSw")[OVERALL]
    assert tracking["MOTA"] == pytest.approx(_by_class(toolkit, "MOTA")[OVERALL])
    assert tracking["IDF1"] > 0  # the model finds and keeps some of the drive's vehicles


def test_perfect_tracks_score_full_marks() -> None:
    truth = [{"name": f"f{i}", "videoName": "v", "frameIndex": i, "labels": [
        {"id": "a", "category": "car", "box2d": {"x1": 10.0 + i, "y1": 10.0, "x2": 50.0 + i, "y2": 40.0}},
        {"id": "b", "category": "pedestrian", "box2d": {"x1": 100.0, "y1": 10.0, "x2": 120.0, "y2": 60.0}}]}
        for i in range(5)]
    predicted = [{**f, "labels": [{**label, "id": str(n + 1)} for n, label in enumerate(f["labels"])]} for f in truth]
    scores = score_tracks(truth, predicted)
    assert scores.by_class["car"]["MOTA"] == 100.0 and scores.by_class["pedestrian"]["IDF1"] == 100.0
    assert scores.id_switches == 0
    # AVERAGE is over box_track's eight classes, those without any box counting 0 (as the toolkit's mMOTA)
    assert scores.by_class[AVERAGE]["MOTA"] == pytest.approx(100.0 * 2 / 8)


@pytest.mark.parametrize("label, message", [
    ({"id": "x7", "category": "car"}, "not an integer"),
    ({"id": "7", "category": "traffic light"}, "none of box_track's"),
])
def test_bad_predictions_are_named(label: dict, message: str) -> None:
    truth = [{"name": "f0", "videoName": "v", "frameIndex": 0, "labels": []}]
    predicted = [{"name": "f0", "videoName": "v", "frameIndex": 0,
                  "labels": [{**label, "box2d": {"x1": 0.0, "y1": 0.0, "x2": 9.0, "y2": 9.0}}]}]
    with pytest.raises(DatasetError, match=message):
        score_tracks(truth, predicted)
