"""mtl-perception infer: overlays and detections for people without ROS (and without torch, YAML or rclpy:
make test runs this under JetPack's Pythons too)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.jetson_python


def _infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_perception.cli", "infer", *args], capture_output=True, text=True)


def test_folder_and_video(bundled_model: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"f{i}.jpg"), np.full((360, 640, 3), 60 * i, np.uint8))
    (images / "broken.jpg").write_bytes(b"nope")
    result = _infer("--model", str(bundled_model), "--input", str(images), "--out", str(tmp_path / "out"),
                    "--score-threshold", "0.0", "--max-detections", "3", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert "skipping unreadable image" in result.stderr
    detections = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert set(detections) == {"f0", "f1"} and len(detections["f0"]["boxes"]) == 3
    assert cv2.imread(str(tmp_path / "out" / "f1.jpg")).shape == (360, 640, 3)

    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (320, 240))
    for i in range(3):
        writer.write(np.full((240, 320, 3), 50 * i, np.uint8))
    writer.release()
    result = _infer("--model", str(bundled_model), "--input", str(video), "--out", str(tmp_path / "vid"))
    assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / "vid" / "detections.json").read_text())) == 3


def test_missing_input_and_model(bundled_model: Path, tmp_path: Path) -> None:
    result = _infer("--model", str(bundled_model), "--input", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = _infer("--model", str(tmp_path / "m.onnx"), "--input", str(tmp_path), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "m.onnx not found" in result.stderr


def test_compare_two_models_side_by_side(bundled_model: Path, tmp_path: Path) -> None:
    """Each frame, the same model on both sides here: the two halves of every tile and their detections agree."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"f{i}.jpg"), np.random.default_rng(i).integers(0, 256, (360, 640, 3), np.uint8))
    out = tmp_path / "out"
    result = _infer("--compare", str(bundled_model), str(bundled_model), "--input", str(images), "--out", str(out),
                    "--score-threshold", "0.0", "--max-detections", "2", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "compare.json").read_text())
    assert set(report) == {"f0", "f1", "f2"}
    for name, both in report.items():
        assert both["old"]["boxes"] == both["new"]["boxes"] and len(both["old"]["boxes"]) == 2
        tile = cv2.imread(str(out / f"compare_{name}.jpg"))
        assert tile.shape == (360, 1280, 3)
        below_titles = tile[40:]
        assert np.abs(below_titles[:, :640].astype(int) - below_titles[:, 640:]).mean() < 2  # JPEG noise only
    sheet = cv2.imread(str(out / "compare.png"))
    assert sheet.shape == (3 * 360, 2 * 640, 3)  # one row per frame, old left, new right
    neither = _infer("--input", str(images), "--out", str(out))
    assert neither.returncode == 2 and "one of the arguments --model --compare is required" in neither.stderr
