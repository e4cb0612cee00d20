"""The frame pipeline (runtime/pipeline.py) on the bundled model: encoded frames as a camera sends them,
decoded as OpenCV decodes them; bad frames skipped without failing the batch; detections handed out before
the masks exist; each camera's ground outputs, and a geometry fault said rather than thrown."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GridSpec
from mtl_perception.runtime.perception import Perception, PerceptionConfig
from mtl_perception.runtime.pipeline import (
    CameraFrame,
    CameraGeometry,
    EncodedImage,
    FramePipeline,
    FrameResult,
)
from mtl_perception.runtime.presets import deployed, deployed_backend, deployed_tracking

pytestmark = pytest.mark.jetson_python

SPEC = GridSpec(resolution=0.5, x_min=0.0, x_max=30.0, y_half=8.0, max_range=30.0)
FRONT = CameraGeometry(CameraIntrinsics(500.0, 500.0, 320.0, 240.0, 640, 480), CameraPose(0.0, 0.0, 1.5, 0.0, 0.1, 0.0))


@pytest.fixture(scope="module")
def pipeline(bundled_model: Path) -> FramePipeline:
    perception = Perception(PerceptionConfig(bundled_model, deployed_backend(backend="onnxruntime", threads=1,
                                                                           max_batch=3),
                                             0.05, deployed().iou_threshold, 50))
    return FramePipeline(perception, SPEC, deployed_tracking(), max_pixels=1000 * 1000)


def _frame(seed: int) -> np.ndarray:
    y, x = np.mgrid[0:480, 0:640]
    image = np.stack([x % 251, y % 241, (x + y) % 239], axis=-1).astype(np.uint8)
    image[300:] = (90, 90, 90)  # a grey road in the lower part
    return np.roll(image, 7 * seed, axis=1)


def test_encoded_frames_decode_as_opencv_decodes_them(pipeline: FramePipeline) -> None:
    image = _frame(0)
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    rgb = np.ascontiguousarray(image[..., ::-1])
    frames = [CameraFrame("raw", 1, EncodedImage(rgb.tobytes(), "rgb8", 480, 640, 640 * 3)),
              CameraFrame("jpeg", 2, EncodedImage(jpeg.tobytes(), "jpeg", compressed=True)),
              CameraFrame("decoded", 3, cv2.imdecode(jpeg, cv2.IMREAD_COLOR))]
    raw, compressed, decoded = pipeline.run(frames)
    np.testing.assert_array_equal(raw.image, image)
    for a, b in ((compressed, decoded),):  # the same bytes, decoded by the pipeline and by OpenCV itself
        np.testing.assert_array_equal(a.drivable, b.drivable)
        np.testing.assert_array_equal(a.detections.boxes, b.detections.boxes)
    assert [r.frame.stamp_ns for r in (raw, compressed, decoded)] == [1, 2, 3]
    assert all(r.ok and r.damage is None for r in (raw, compressed, decoded))


def test_a_bad_frame_is_skipped_and_the_others_answered(pipeline: FramePipeline) -> None:
    frames = [CameraFrame("front", 1, _frame(1)),
              CameraFrame("cut", 2, EncodedImage(b"\x00" * 10, "bgr8", 480, 640, 640 * 3)),
              CameraFrame("huge", 3, EncodedImage(b"", "bgr8", 100_000, 100_000, 300_000))]
    front, cut, huge = pipeline.run(frames)
    assert front.ok and front.detections is not None and front.drivable.shape == (480, 640)
    assert cut.bad and "skipping bad frame" in (cut.problem or "") and cut.detections is None
    assert huge.bad and cut.problem != huge.problem


def test_detections_come_before_the_masks(pipeline: FramePipeline) -> None:
    seen: list[tuple[str, bool, bool]] = []

    def on_detections(result: FrameResult) -> None:
        seen.append((result.frame.camera, result.detections is not None, result.drivable is None))

    results = pipeline.run([CameraFrame("a", 1, _frame(2)), CameraFrame("b", 2, _frame(3))], on_detections)
    assert seen == [("a", True, True), ("b", True, True)]
    assert all(r.drivable is not None for r in results)


def test_ground_outputs_per_camera_and_geometry_faults_said(pipeline: FramePipeline) -> None:
    wrong_size = CameraGeometry(CameraIntrinsics(500.0, 500.0, 640.0, 360.0, 1280, 720), FRONT.pose)
    sky = CameraGeometry(FRONT.intrinsics, CameraPose(0.0, 0.0, 1.5, 0.0, -0.9, 0.0))  # looks up: sees no ground
    frames = [CameraFrame("front", 1, _frame(4), FRONT), CameraFrame("other", 2, _frame(4), wrong_size),
              CameraFrame("up", 3, _frame(4), sky), CameraFrame("none", 4, _frame(4))]
    front, other, up, none = pipeline.run(frames)
    assert front.ground is not None and front.ground_off is None
    assert front.ground.occupancy.shape == SPEC.shape and (front.ground.occupancy >= 0).any()
    assert other.ground is None and "camera_info is 1280x720, the frames 640x480" in (other.ground_off or "")
    assert up.ground is None and (up.ground_off or "").startswith("drivable_grid")
    assert none.ground is None and none.ground_off is None  # no geometry yet is no fault
    assert "ground" in front.timings and front.timings["total"] >= front.timings["inference"]


def test_each_camera_tracks_its_own_boxes_by_stamp(bundled_model: Path) -> None:
    """The same frame again under later stamps: every confident box keeps its ID; another camera's tracker is
    its own (its IDs start at 1 too)."""
    perception = Perception(PerceptionConfig(bundled_model, deployed_backend(backend="onnxruntime", threads=1),
                                             0.3, deployed().iou_threshold, 50))
    pipeline = FramePipeline(perception, SPEC, deployed_tracking(high_score=0.3, new_track_score=0.3))
    from mtl_perception.data.synthetic import render_scene

    image = render_scene(np.random.default_rng(3), 360, 640).image  # a road with cars
    runs = [pipeline.run([CameraFrame("front", i * 100_000_000, image), CameraFrame("rear", i * 100_000_000, image)])
            for i in range(3)]
    front = [run[0].tracks.track_ids.tolist() for run in runs]
    rear = [run[1].tracks.track_ids.tolist() for run in runs]
    assert front[0] and all(i > 0 for i in front[0]), front  # the first frame's boxes are tracks at once
    assert front[0] == front[1] == front[2] and rear == front
