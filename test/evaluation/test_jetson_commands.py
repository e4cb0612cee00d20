"""The commands a Jetson user runs beside the node, each run as a user would, through the real CLI: make test
runs this file under JetPack 5's Python 3.8 (rosbags 0.9.23, NumPy 1.24, OpenCV 4.5.4) and JetPack 6's 3.10
as well as here. Only the bundled ONNX model is used: no torch, which a Jetson does not have."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.jetson_python


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jetson") / "set"
    result = _cli("synth", "--out", str(root), "--train", "0", "--val", "4", "--seed", "5")
    assert result.returncode == 0, result.stderr
    return root


def test_check_data(small_set: Path) -> None:
    result = _cli("check-data", "--data", str(small_set), "--split", "val")
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


def test_eval_and_its_saved_predictions_score_alike(bundled_model: Path, small_set: Path, tmp_path: Path) -> None:
    result = _cli("eval", "--model", str(bundled_model), "--data", str(small_set), "--split", "val",
                  "--json", str(tmp_path / "eval.json"), "--save-predictions", str(tmp_path / "pred.json"))
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["frames"] == 4 and 0.0 <= scores["drivable"]["miou"] <= 1.0
    scored = _cli("score-det", "--labels", str(small_set / "labels" / "det_20" / "det_val.json"),
                  "--predictions", str(tmp_path / "pred.json"), "--json")
    assert scored.returncode == 0, scored.stderr
    # the saved boxes are rounded to 0.01 px and the scores to 1e-5: AP (x100) agrees to 0.01
    assert json.loads(scored.stdout)["overall"] == pytest.approx(scores["det_toolkit"]["overall"], abs=0.01)


def test_make_bag_then_eval_bag(bundled_model: Path, small_set: Path, tmp_path: Path) -> None:
    from mtl_perception.bags import read_image_frames

    bag, out = tmp_path / "drive", tmp_path / "result"
    made = _cli("make-bag", "--images", str(small_set / "images" / "100k" / "val"), "--out", str(bag))
    assert made.returncode == 0, made.stderr
    assert len(list(read_image_frames(bag))) == 4
    storage = [p.name for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    assert storage == [f"drive{Path(storage[0]).suffix}"], storage  # named after the bag, not a hidden file
    evaluated = _cli("eval-bag", "--model", str(bundled_model), "--bag", str(bag), "--out", str(out),
                     "--labels", str(small_set), "--split", "val")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "4 frames" in evaluated.stdout + evaluated.stderr and "drivable" in evaluated.stdout
    assert (out / "metadata.yaml").is_file() and not list(tmp_path.glob(".*partial"))


def test_trt_check_passes_the_bundled_model(bundled_model: Path) -> None:
    result = _cli("trt-check", str(bundled_model))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8.5" in result.stdout and "10" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed: it builds")
def test_build_engine_without_tensorrt_says_how_to_install_it(bundled_model: Path, tmp_path: Path) -> None:
    result = _cli("build-engine", "--model", str(bundled_model), "--cache-dir", str(tmp_path))
    assert result.returncode != 0 and "apt install python3-libnvinfer" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_bench_node_starts_or_names_what_is_missing() -> None:
    """bench-node needs ROS 2's rclpy, which a Jetson has from apt and pip cannot give Python 3.8 here. Its --help
    needs none (its defaults come from config/jetson.yaml); without rclpy, running it is one line that says to
    source the ROS setup."""
    result = _cli("bench-node", "--help")
    assert result.returncode == 0 and "--rates" in result.stdout and "at most 7.5" in result.stdout
    if importlib.util.find_spec("rclpy") is None:
        result = _cli("bench-node", "--seconds", "1", "--frames", "48x64")
        assert result.returncode == 1 and "source /opt/ros" in result.stderr and "Traceback" not in result.stderr
