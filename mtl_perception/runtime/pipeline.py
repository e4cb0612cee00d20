"""The frame pipeline: camera frames in, everything the package derives from them out, knowing nothing of ROS
(Autoware's core/node split: tensorrt_yolox's library class and its thin node).

    encoded frames of one or more cameras -> decode -> letterbox -> one backend batch -> per camera:
    detections and their tracks (handed out first) -> masks at the camera's size -> the ground (grid, markings,
    the road users placed with their velocities, the ego lane)

perception_node and every offline tool (eval-bag, infer, the demo's real clip) run frames through one
FramePipeline, so a stage added here is in all of them at once. The pipeline owns each camera's state, all of it
driven by the frames' stamps: its tracker (runtime/tracking.py), its tracks' places over time
(runtime/object_motion.py), its ego lane (runtime/ego_lane.py) and the ground lookups for its geometry. Results
are plain data: numpy arrays and dataclasses, with the frame's stamp.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from mtl_perception.compat import zip_strict
from mtl_perception.runtime.ego_lane import EgoLane, EgoLaneTracker
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GeometryError, GridSpec
from mtl_perception.runtime.ground_objects import GroundObjects, place_on_ground
from mtl_perception.runtime.image_encoding import ImageFormatError, compressed_to_bgr, jpeg_damage, raw_to_bgr
from mtl_perception.runtime.lane_markings import RoadProjection, RoadView
from mtl_perception.runtime.object_motion import ObjectMotion
from mtl_perception.runtime.perception import Perception, PerceptionResult, RawOutput
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.tracking import ByteTracker, TrackedDetections, TrackerSettings


@dataclass(frozen=True)
class EncodedImage:
    """A camera image as it arrives: raw pixels (sensor_msgs/Image's data, encoding, height, width, step) or a
    compressed buffer (sensor_msgs/CompressedImage's data and format: jpeg or png)."""

    data: bytes | bytearray | memoryview | np.ndarray
    encoding: str  # raw: bgr8, rgb8, mono8, ...; compressed: the format string
    height: int = 0
    width: int = 0
    step: int = 0
    compressed: bool = False


@dataclass(frozen=True)
class CameraGeometry:
    """Where a camera sits and how it sees: what the ground outputs need. Either part may be missing yet (no
    camera_info so far, no pose): the frame then has no ground outputs, and that is no fault."""

    intrinsics: CameraIntrinsics | None
    pose: CameraPose | None


@dataclass(frozen=True)
class CameraFrame:
    """One camera's frame: its name ("" for one unnamed camera), its stamp, and its image, encoded as it came
    or already decoded (uint8[H, W, 3] BGR)."""

    camera: str
    stamp_ns: int
    image: EncodedImage | np.ndarray
    geometry: CameraGeometry | None = None


@dataclass
class FrameResult:
    """What the pipeline made of one frame. `problem` says why a frame was skipped (bad: its image could not be
    decoded; failed: anything else), and then the outputs are None; `damage` marks a damaged JPEG that was
    answered all the same; `ground_off` a geometry fault that cost the frame its ground outputs."""

    frame: CameraFrame
    image: np.ndarray | None = None  # BGR at the camera's size
    detections: Detections | None = None
    tracks: TrackedDetections | None = None  # the detections with their camera's track IDs
    drivable: np.ndarray | None = None  # uint8[H, W] 0/255 at the camera's size
    lane: np.ndarray | None = None
    ground: RoadView | None = None
    objects: GroundObjects | None = None  # the tracked road users on the ground, where the geometry is known
    ego_lane: EgoLane | None = None  # the ego lane from the markings, where the geometry is known
    ground_off: str | None = None
    problem: str | None = None
    bad: bool = False  # the problem is the frame's own (ImageFormatError), not a fault of the pipeline
    damage: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def outputs(self) -> PerceptionResult:
        """The model's outputs in camera pixels (what evaluation scores); ValueError for a skipped frame."""
        if self.detections is None or self.drivable is None or self.lane is None:
            raise ValueError(self.problem or "the frame has not been through the model")
        return PerceptionResult(self.detections, self.drivable, self.lane, self.timings)


class OnDetections(Protocol):
    """Called with each frame's result as soon as its detections exist, before its masks and ground outputs are
    made: a planner waits for the detections, so the node publishes them first."""

    def __call__(self, result: FrameResult) -> None: ...


class FramePipeline:
    """Frames of any number of cameras through one model, one batch per call to run()."""

    def __init__(self, perception: Perception, grid: GridSpec, tracking: TrackerSettings, max_pixels: int = 0) -> None:
        self.perception, self.grid, self.tracking, self.max_pixels = perception, grid, tracking, max_pixels
        self._cameras: dict[str, _CameraState] = {}

    def set_tracking(self, settings: TrackerSettings) -> None:
        """New tracker thresholds for every camera's next frame; the tracks and their IDs stay."""
        self.tracking = settings
        for state in self._cameras.values():
            state.tracker.settings = settings

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.perception.info.class_names

    def run(self, frames: Sequence[CameraFrame], on_detections: OnDetections | None = None) -> list[FrameResult]:
        """One result per frame, in order. Frames that cannot be decoded come back with their problem; the
        rest run through the model as one batch (an exception of the backend propagates: the whole batch
        failed)."""
        results = [self._decode(frame) for frame in frames]
        decoded = [r for r in results if r.ok]
        if not decoded:
            return results
        raws = self.perception.infer_batch([r.image for r in decoded])  # type: ignore[misc]
        for result, raw in zip_strict(decoded, raws):
            self._outputs(result, raw, on_detections)
        return results

    def process(self, image: np.ndarray, stamp_ns: int = 0, geometry: CameraGeometry | None = None,
                camera: str = "") -> FrameResult:
        """One decoded frame, start to end: what the offline tools that read images call."""
        return self.run([CameraFrame(camera, stamp_ns, image, geometry)])[0]

    def _state(self, camera: str) -> _CameraState:
        if camera not in self._cameras:
            self._cameras[camera] = _CameraState(ByteTracker(self.tracking))
        return self._cameras[camera]

    def _decode(self, frame: CameraFrame) -> FrameResult:
        result = FrameResult(frame)
        start = time.perf_counter()
        try:
            result.image = _decoded(frame.image, self.max_pixels)
        except ImageFormatError as err:
            result.problem, result.bad = f"skipping bad frame: {err}", True
            return result
        except Exception as err:  # noqa: BLE001 - one failed frame must not fail the batch
            result.problem = f"frame failed: {type(err).__name__}: {err}"
            return result
        if isinstance(frame.image, EncodedImage) and frame.image.compressed:
            result.damage = jpeg_damage(frame.image.data)
        result.timings["decode"] = 1e3 * (time.perf_counter() - start)
        return result

    def _outputs(self, result: FrameResult, raw: RawOutput, on_detections: OnDetections | None) -> None:
        perception = self.perception
        result.detections = perception.detections(raw)
        start = time.perf_counter()
        result.tracks = self._state(result.frame.camera).tracker.update(result.detections, result.frame.stamp_ns)
        result.timings["tracking"] = 1e3 * (time.perf_counter() - start)
        if on_detections is not None:
            on_detections(result)
        result.drivable, result.lane = perception.masks(raw)
        result.timings.update(raw.timings)
        self._ground(result)
        result.timings["total"] = sum(v for k, v in result.timings.items() if k != "total")

    def _ground(self, result: FrameResult) -> None:
        geometry = result.frame.geometry
        if geometry is None or geometry.intrinsics is None or geometry.pose is None:
            return
        assert result.drivable is not None and result.lane is not None
        state = self._state(result.frame.camera)
        intrinsics, shape = geometry.intrinsics, result.drivable.shape
        if (intrinsics.height, intrinsics.width) != tuple(shape[:2]):
            # checked before any lookup is built: a camera_info of another camera must cost nothing
            result.ground_off = (f"drivable_grid skipped: camera_info is {intrinsics.width}x{intrinsics.height}, "
                                 f"the frames {shape[1]}x{shape[0]}: remap camera_info to this camera's")
            return
        road = state.road(intrinsics, geometry.pose, self.grid)
        if isinstance(road, str):
            result.ground_off = road
            return
        try:
            result.ground = road.project(result.drivable, result.lane)
        except GeometryError as err:
            result.ground_off = f"drivable_grid skipped: {err}"
            return
        start = time.perf_counter()
        assert result.detections is not None and result.tracks is not None
        names = [self.class_names[int(c)] for c in result.detections.class_ids.tolist()]
        objects = place_on_ground(result.detections.boxes, names, intrinsics, geometry.pose, self.grid.max_range)
        velocities = state.motion.update(result.tracks.track_ids[objects.indices], objects.contacts[:, :2],
                                         result.frame.stamp_ns)
        result.objects = replace(objects, velocities=velocities)
        result.ego_lane = state.ego_lane.update(result.ground.markings, result.frame.stamp_ns)
        result.timings["ground"] = result.ground.milliseconds + 1e3 * (time.perf_counter() - start)


@dataclass
class _CameraState:
    """What the pipeline keeps per camera between frames: its tracks and its ground lookups."""

    tracker: ByteTracker
    motion: ObjectMotion = field(default_factory=ObjectMotion)
    ego_lane: EgoLaneTracker = field(default_factory=EgoLaneTracker)
    _road: RoadProjection | str | None = None  # the lookups, or why this geometry has none
    _key: tuple | None = None

    def road(self, intrinsics: CameraIntrinsics, pose: CameraPose, grid: GridSpec) -> RoadProjection | str:
        """The lookups for this geometry, built once per geometry (a rebuild costs tens of milliseconds);
        a geometry that sees no ground gives the reason, once per geometry too."""
        key = (intrinsics, pose, grid)
        if self._key != key or self._road is None:
            self._key = key
            try:
                self._road = RoadProjection(intrinsics, pose, grid)
            except GeometryError as err:
                self._road = f"drivable_grid and lane_markings off: {err}"
        return self._road


def _decoded(image: EncodedImage | np.ndarray, max_pixels: int) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if image.compressed:
        return compressed_to_bgr(image.data, image.encoding, max_pixels)
    return raw_to_bgr(image.data, image.height, image.width, image.encoding, image.step, max_pixels)
