"""The demo's whole path on a few frames: synthetic drive -> rosbag2 -> perception_node -> demo_out/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2


def test_demo_end_to_end(random_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo_out"
    result = subprocess.run(
        [sys.executable, "-m", "mtl_perception.cli", "demo", "--model", str(random_model), "--data",
         str(tmp_path / "data"), "--out", str(out), "--frames", "6", "--rate", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] + summary["dropped"] == 6 and summary["frames"] >= 4
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99"} and summary["latency_ms"]["p50"] > 0
    assert {"map50"} <= set(summary["metrics"]["det"]) and {"miou"} <= set(summary["metrics"]["drivable"])
    assert {"iou"} <= set(summary["metrics"]["lane"]) and summary["fps"] > 0
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == summary["frames"]
    assert cv2.imread(str(out / "contact_sheet.png")) is not None
    assert list(out.glob("frame_*.png"))
    assert (tmp_path / "data" / "drive_6_rosbag2" / "frames.json").is_file()  # the drive is kept as a rosbag2
