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


def _images(folder: Path, names: list[str], size: tuple[int, int] = (360, 640)) -> Path:
    folder.mkdir()
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((*size, 3), 60 * i, np.uint8))
    return folder


def test_folder_gives_scalabel_detections_that_score_det_reads(bundled_model: Path, tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["f0.jpg", "f1.jpg"])
    (images / "broken.jpg").write_bytes(b"nope")
    result = _infer("--model", str(bundled_model), "--input", str(images), "--out", str(tmp_path / "out"),
                    "--score-threshold", "0.0", "--max-detections", "3", "--backend", "onnxruntime", "--masks")
    assert result.returncode == 0, result.stderr
    assert "skipping unreadable image" in result.stderr and "1 unreadable frame(s) skipped" in result.stdout
    frames = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [f["name"] for f in frames] == ["f0.jpg", "f1.jpg"] and len(frames[0]["labels"]) == 3
    assert {"category", "score", "box2d"} <= set(frames[0]["labels"][0]) and frames[0]["attributes"]["latency_ms"] > 0
    assert cv2.imread(str(tmp_path / "out" / "f1.jpg")).shape == (360, 640, 3)
    lane = cv2.imread(str(tmp_path / "out" / "masks" / "f1_lane.png"), cv2.IMREAD_UNCHANGED)
    assert lane.shape == (360, 640) and set(np.unique(lane)) <= {0, 255}
    from mtl_perception.evaluation.toolkit_det import load_predictions

    loaded = load_predictions(tmp_path / "out" / "detections.json")  # what score-det reads
    assert [len(f.boxes) for f in loaded] == [3, 3]


def test_video_gives_frames_and_an_overlay_video(bundled_model: Path, tmp_path: Path) -> None:
    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (320, 240))
    for i in range(3):
        writer.write(np.full((240, 320, 3), 50 * i, np.uint8))
    writer.release()
    result = _infer("--model", str(bundled_model), "--input", str(video), "--out", str(tmp_path / "vid"))
    assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / "vid" / "detections.json").read_text())) == 3
    capture = cv2.VideoCapture(str(tmp_path / "vid" / "overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and capture.read()[1].shape == (240, 320, 3)


def test_one_stem_two_files_gives_two_results(bundled_model: Path, tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["frame.jpg", "frame.png"])
    result = _infer("--model", str(bundled_model), "--input", str(images), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert [f["name"] for f in json.loads((tmp_path / "out" / "detections.json").read_text())] == \
        ["frame.jpg", "frame.png"]
    assert (tmp_path / "out" / "frame_jpg.jpg").is_file() and (tmp_path / "out" / "frame_png.jpg").is_file()


def test_nothing_readable_or_not_an_image_is_an_error(bundled_model: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    result = _infer("--model", str(bundled_model), "--input", str(corrupt), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no frame of" in result.stderr and not (tmp_path / "out").exists()
    config = tmp_path / "params.yaml"
    config.write_text("a: 1\n")
    result = _infer("--model", str(bundled_model), "--input", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "neither an image" in result.stderr and not (tmp_path / "out").exists()


def test_reused_out_is_refused_then_replaced_whole(bundled_model: Path, tmp_path: Path) -> None:
    first = _images(tmp_path / "first", ["a.jpg", "b.jpg"])
    second = _images(tmp_path / "second", ["c.jpg"])
    out = tmp_path / "out"
    assert _infer("--model", str(bundled_model), "--input", str(first), "--out", str(out)).returncode == 0
    again = _infer("--model", str(bundled_model), "--input", str(second), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr and (out / "a.jpg").is_file()
    replaced = _infer("--model", str(bundled_model), "--input", str(second), "--out", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["c.jpg", "detections.json", "tracks.json"]  # no stale overlay
    assert not list(tmp_path.glob(".out.*"))


def test_a_write_that_fails_leaves_no_results(bundled_model: Path, tmp_path: Path) -> None:
    """Overlays that cannot be written (here a file-size limit, as a full disk refuses them) end the run with
    one line, and nothing that looks like a result is left."""
    import resource
    import signal

    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):  # noise: each overlay's JPEG is far above the limit
        cv2.imwrite(str(images / name), np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8))

    def limit_file_size() -> None:  # writes past 200 KB fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "infer", "--model", str(bundled_model),
                             "--input", str(images), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            preexec_fn=limit_file_size)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


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
    assert set(report) == {"f0.jpg", "f1.jpg", "f2.jpg"}
    for name, both in report.items():
        assert both["old"]["boxes"] == both["new"]["boxes"] and len(both["old"]["boxes"]) == 2
        tile = cv2.imread(str(out / f"compare_{Path(name).stem}.jpg"))
        assert tile.shape == (360, 1280, 3)
        below_titles = tile[40:]
        assert np.abs(below_titles[:, :640].astype(int) - below_titles[:, 640:]).mean() < 2  # JPEG noise only
    sheet = cv2.imread(str(out / "compare.png"))
    assert sheet.shape == (3 * 360, 2 * 640, 3)  # one row per frame, old left, new right
    neither = _infer("--input", str(images), "--out", str(out))
    assert neither.returncode == 2 and "one of the arguments --model --compare is required" in neither.stderr
