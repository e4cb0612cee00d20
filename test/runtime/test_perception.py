"""Perception on the bundled model: camera-sized outputs; clear errors for bad models.

Needs only what a Jetson has; test_perception_contract.py edits models with the onnx package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtl_perception.runtime.backends import ModelLoadError, load_backend
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.presets import deployed, deployed_backend

pytestmark = pytest.mark.jetson_python


@pytest.fixture(scope="module")
def perception(bundled_model: Path) -> Perception:
    return Perception(PerceptionConfig(bundled_model, deployed_backend(backend="onnxruntime", threads=1),
                                       0.0, deployed().iou_threshold, 20))


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (480, 640), (300, 300)])
def test_outputs_at_camera_size(perception: Perception, height: int, width: int) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    result = perception.process(frame)
    assert result.drivable.shape == result.lane.shape == (height, width)
    assert result.drivable.dtype == np.uint8 and set(np.unique(result.drivable)) <= {0, 255}
    assert set(np.unique(result.lane)) <= {0, 255}
    boxes = result.detections.boxes
    assert len(result.detections) == 20  # threshold 0 keeps max_detections
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= width).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= height).all()
    assert set(result.timings) == {"preprocess", "inference", "detections", "masks", "total"}
    assert result.timings["total"] == pytest.approx(sum(v for k, v in result.timings.items() if k != "total"))


def test_masks_are_the_models_own_on_a_hand_made_letterbox(perception: Perception, bundled_model: Path) -> None:
    """Against ONNX Runtime on the contract's input built by hand with OpenCV (a 640x480 frame is scaled by
    0.8 to 512x384 and centred on a 114 canvas, 64 px each side), the model's mask cropped and resized back
    with nearest neighbour: what the pipeline publishes, pixel for pixel on all but a few border pixels."""
    import cv2
    import onnxruntime as ort

    frame = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    canvas = np.full((1, 384, 640, 3), 114, np.uint8)
    canvas[0, :, 64:576] = cv2.resize(frame, (512, 384), interpolation=cv2.INTER_LINEAR)
    session = ort.InferenceSession(str(bundled_model), providers=["CPUExecutionProvider"])
    drivable = session.run(["drivable"], {"images": canvas})[0][0, :, 64:576]
    by_hand = cv2.resize(drivable, (640, 480), interpolation=cv2.INTER_NEAREST) * 255
    result = perception.process(frame)
    assert (result.drivable != by_hand).mean() < 0.01


def test_metadata_read_from_model(perception: Perception) -> None:
    info = perception.info
    assert (info.input_height, info.input_width, info.pad_value) == (384, 640, 114)
    assert info.class_names[2] == "car" and info.backbone == "mobilenetv2"
    # what the weights learnt from, in words (no machine's paths): the synthetic scenes and the pseudo-labelled frames
    assert "synthetic scenes (mtl-perception synth" in info.trained_on and "pseudo-labelled" in info.trained_on
    assert "/work" not in info.trained_on


def test_rejects_non_bgr_frames(perception: Perception) -> None:
    with pytest.raises(ValueError, match="expected a uint8 BGR frame"):
        perception.process(np.zeros((10, 10), np.uint8))


def test_missing_model_names_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx not found; export one"):
        load_backend(tmp_path / "nope.onnx", deployed_backend(backend="onnxruntime"))


def test_corrupt_model(tmp_path: Path, bundled_model: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(bundled_model.read_bytes()[:100_000])
    with pytest.raises(ModelLoadError, match=r"broken\.onnx could not be loaded.*re-export"):
        load_backend(broken, deployed_backend(backend="onnxruntime"))


def test_unknown_backend_and_precision(bundled_model: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'openvino'"):
        load_backend(bundled_model, deployed_backend(backend="openvino"))
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        deployed_backend(precision="fp8")


def test_onnxruntime_threads_stop_spinning_after_each_run(bundled_model: Path) -> None:
    # between camera frames, spinning pool threads would hold the cores that DDS and other nodes need
    backend = load_backend(bundled_model, deployed_backend(backend="onnxruntime", threads=2))
    options = backend.session.get_session_options()  # type: ignore[attr-defined]
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.intra_op_num_threads == 2
