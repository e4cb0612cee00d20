"""perception_node: camera images in; detections, drivable and lane masks out, and the ground outputs.

A managed (lifecycle) node: configure reads the parameters and loads the model (or
builds the TensorRT engine), activate subscribes and starts inferring, deactivate stops,
cleanup lets the model go. With `autostart` (the default) it configures and activates
itself, so `ros2 run` and the launch file just work.

Thin glue around runtime.Perception, in small parts: camera_input.CameraInput (the subscriptions and their
QoS matching), frame_worker.FrameWorker (latest frame wins: a slow model never queues stale frames),
ground_outputs.GroundOutputs (drivable_grid and the lane markings); this module wires them to the
parameters, the lifecycle and /diagnostics.
"""

from __future__ import annotations

import difflib
import logging
import re
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from mtl_perception.ros.camera_input import CameraInput
from mtl_perception.ros.conversions import (
    RclpyMessages,
    bgr_to_image,
    compressed_image_to_bgr,
    detections_to_msg,
    image_to_bgr,
    label_info_msg,
    mask_to_image,
)
from mtl_perception.ros.frame_worker import Arrival, FrameWorker
from mtl_perception.ros.ground_outputs import GroundOutputs, SurroundGrid
from mtl_perception.ros.parameters import (
    LIVE,
    PARAMETERS,
    NodeSettings,
    load_defaults,
    settings_from,
    updated_settings,
)
from mtl_perception.runtime.allocator import retain_large_buffers
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import CameraPose
from mtl_perception.runtime.health import CameraState, node_health
from mtl_perception.runtime.image_encoding import ImageFormatError, jpeg_damage
from mtl_perception.runtime.overlay import detection_labels, draw_overlay
from mtl_perception.runtime.perception import Perception, RawOutput
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.realtime import RollingStats
from mtl_perception.stamps import to_ns
from mtl_perception.topics import camera_topic, diagnostics_name

OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE_S = 5.0  # per cause of a bad or failed frame
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


# The package's Python logging (the runtime's messages, TensorRT's own log, engine-build progress) goes
# to the node's ROS logger, so that it reaches the console, /rosout and the launch log like the node's own.
PACKAGE_LOGGER = "mtl_perception"


class RosLogHandler(logging.Handler):
    def __init__(self, ros_logger: Any, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"[{record.name.rsplit('.', 1)[-1]}] {record.getMessage()}"
            if record.levelno >= logging.ERROR:
                self.ros_logger.error(message)
            elif record.levelno >= logging.WARNING:
                self.ros_logger.warning(message)
            elif record.levelno >= logging.INFO:
                self.ros_logger.info(message)
            else:
                self.ros_logger.debug(message)
        except Exception:  # noqa: BLE001 - logging must never raise into the code that logs
            self.handleError(record)


def bridge_package_logging(ros_logger: Any) -> RosLogHandler:
    """Route the mtl_perception package's records at INFO and above to ros_logger; returns the handler
    (remove it with unbridge_package_logging)."""
    handler = RosLogHandler(ros_logger)
    package = logging.getLogger(PACKAGE_LOGGER)
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False  # the ROS logger prints it; a root handler would print it twice
    return handler


def unbridge_package_logging(handler: RosLogHandler) -> None:
    package = logging.getLogger(PACKAGE_LOGGER)
    package.removeHandler(handler)
    package.propagate = True


class PerceptionNode(LifecycleNode):
    """Its parts are made in on_configure and released in on_cleanup, as the ros2/demos lifecycle talker
    makes its publisher: the model (runtime.Perception), the camera's subscriptions (CameraInput), the
    frame worker (FrameWorker) and the ground outputs (GroundOutputs). While unconfigured it holds none of
    them, and every parameter may be set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("perception_node", **kwargs)
        self._log_bridge = bridge_package_logging(self.get_logger())  # the runtime's and TensorRT's messages
        self._declare_parameters()
        self._last_logged: dict[str, float] = {}  # cause of a bad frame -> when it was last logged
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.stats = RollingStats()
        self.parts: _Configured | None = None  # while configured

    def _declare_parameters(self) -> None:
        """Each parameter with config/jetson.yaml's default (one without a default, camera_pose, is declared
        by its type alone: unset until given), then a warning for each override the node does not have."""
        defaults = load_defaults()
        for name, spec in PARAMETERS.items():
            value = defaults[name] if spec.unset_type is None else Parameter.Type[spec.unset_type]
            self.declare_parameter(name, value, spec.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._warn_unknown_parameters()

    def _parameter_values(self) -> dict[str, Any]:
        """Every parameter's value; None for one left unset."""
        values: dict[str, Any] = {}
        for name in PARAMETERS:
            try:
                values[name] = self.get_parameter(name).value
            except ParameterUninitializedException:
                values[name] = None
        return values

    def _warn_unknown_parameters(self) -> None:
        """A -p NAME:=VALUE or params-file key that is no parameter of this node would be ignored in silence
        (rclpy keeps undeclared overrides aside): say so once each, with the nearest declared name."""
        # rclpy (Humble to Kilted) keeps the overrides given for this node here; there is no public accessor
        overrides = getattr(self, "_parameter_overrides", {}) or {}
        declared = set(self._parameters)
        for name in sorted(set(overrides) - declared):
            if name.startswith("qos_overrides."):
                continue  # read by rclpy itself when a publisher or subscription is created
            near = difflib.get_close_matches(name, sorted(declared), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            self.get_logger().warning(f"parameter {name} is not one of perception_node's and is ignored: {hint}"
                                      "`ros2 param list` on the running node lists them")

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter("autostart").value)

    # lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = settings_from(self._parameter_values())
            perception = Perception(settings.perception)
        except (ModelLoadError, ModelContractError, ValueError) as err:
            self.get_logger().error(f"cannot configure: {err}")
            return FAILURE
        except Exception as err:  # noqa: BLE001 - rclpy's lifecycle wrapper would swallow it without a word
            self.get_logger().error(f"cannot configure: unexpected {type(err).__name__}: {err}")
            return FAILURE
        info = perception.info
        self.get_logger().info(f"model {settings.perception.model_path} ({info.backbone}, {info.input_height}x"
                               f"{info.input_width}, trained on {info.trained_on}) on {perception.backend.name}")
        self.parts = _Configured(
            settings=settings, perception=perception,
            cameras={name: self._camera(name, pose, settings)
                     for name, pose in zip(settings.cameras, settings.camera_poses)},
            surround=SurroundGrid(self, OUTPUT_QOS, settings.target_frame, settings.grid)
            if settings.named_cameras else None,
            worker=FrameWorker(self._process, self._on_frame_error),
            diagnostics_timer=self.create_timer(settings.diagnostics_period, self._publish_diagnostics))
        if settings.named_cameras:
            self.get_logger().info(f"{len(settings.cameras)} cameras ({', '.join(settings.cameras)}) through one "
                                   f"model, up to {len(settings.cameras)} frames per run")
        return super().on_configure(state)

    def _camera(self, name: str, pose: CameraPose | None, settings: NodeSettings) -> _Camera:
        """One camera's subscriptions and outputs, its topics under its name; its pose from camera_pose, or
        where that is unset from TF (its images' frame_id)."""
        ground = GroundOutputs(self, OUTPUT_QOS, pose, settings.target_frame, settings.grid,
                               self._log_once_per_cause, prefix=name)
        return _Camera(
            name=name, outputs=_ImageOutputs.create(self, name), ground=ground,
            input=CameraInput(self, settings.input_transport, settings.input_reliability,
                              lambda msg: self._on_image(msg, name), ground.on_camera_info, prefix=name))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.parts is not None
        result = super().on_activate(state)  # lifecycle publishers publish from here on
        if result != SUCCESS:
            return result
        self._publish_label_info()
        self.parts.worker.start()
        for camera in self.parts.cameras.values():
            camera.input.start()
            camera.subscribed_at, camera.last_received = time.monotonic(), None
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_input()
        self._release()
        return SUCCESS

    def stop_input(self) -> None:
        """Unsubscribe, then let the worker finish its frame; the configured parts stay (deactivate, shutdown,
        and main() before the node is destroyed)."""
        if self.parts is not None:
            for camera in self.parts.cameras.values():
                camera.input.stop()
            self.parts.worker.stop()

    def _release(self) -> None:
        """Back to unconfigured: every part goes (TensorRT's CUDA context and GPU buffers now, not at exit)."""
        parts, self.parts = self.parts, None
        if parts is None:
            return
        self.destroy_timer(parts.diagnostics_timer)
        for camera in parts.cameras.values():
            camera.outputs.close(self)
            camera.ground.close()
        if parts.surround is not None:
            parts.surround.close()
        parts.perception.close()

    def _publish_label_info(self) -> None:
        assert self.parts is not None
        for camera in self.parts.cameras.values():
            camera.outputs.labels.publish(label_info_msg(
                Header(stamp=self.get_clock().now().to_msg()), self.parts.perception.info.class_names,
                self.parts.settings.perception.score_threshold))

    # input -----------------------------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage, camera: str) -> None:
        parts = self.parts
        if parts is not None:
            self.stats.on_received(parts.worker.put(msg, camera), stamp_ns=to_ns(msg.header.stamp), source=camera)
            parts.cameras[camera].last_received = time.monotonic()

    def _on_frame_error(self, err: BaseException) -> None:
        """A fault in a frame's handling that _process did not catch itself: counted, logged, survived."""
        self.stats.on_error()
        self._log_once_per_cause(f"frame failed: {type(err).__name__}: {err}", warning=False)

    # processing ------------------------------------------------------------------------------
    def _process(self, batch: list[Arrival]) -> None:
        """The newest frame of each camera that has one: decoded, run through the model as one batch, then
        each camera's outputs published under its name with its own header."""
        parts = self.parts
        if parts is None:
            return
        decoded: list[tuple[Arrival, np.ndarray]] = []
        for arrival in batch:
            frame = self._decode(arrival.message, parts.settings.max_image_pixels)
            if frame is not None:
                decoded.append((arrival, frame))
        if not decoded:
            return
        try:
            raws = parts.perception.infer_batch([frame for _, frame in decoded])
        except Exception as err:  # noqa: BLE001 - one failed batch must not stop the node
            self._frame_failed(err, count=len(decoded))
            return
        for (arrival, frame), raw in zip(decoded, raws):
            self._publish(parts, parts.cameras[arrival.camera], arrival, frame, raw)
        if parts.surround is not None:
            try:
                parts.surround.publish()
            except Exception as err:  # noqa: BLE001 - one failed grid must not stop the node
                self._frame_failed(err)

    def _decode(self, msg: Image | CompressedImage, max_pixels: int) -> np.ndarray | None:
        """The frame as BGR, or None for a bad one (counted and logged once per cause)."""
        try:
            frame = compressed_image_to_bgr(msg, max_pixels) if isinstance(msg, CompressedImage) \
                else image_to_bgr(msg, max_pixels)
        except ImageFormatError as err:
            self.stats.on_bad_frame()
            self._log_once_per_cause(f"skipping bad frame: {err}", warning=True)
            return None
        except Exception as err:  # noqa: BLE001 - one failed frame must not stop the node
            self._frame_failed(err)
            return None
        damage = jpeg_damage(msg.data) if isinstance(msg, CompressedImage) else None
        if damage is not None:
            self.stats.on_damaged()
            kind = damage.split(":")[0]  # one cause per kind, not per byte offset
            self._log_once_per_cause(f"a damaged jpeg frame ({kind}; in transit?): answered, but its "
                                     "damaged part is grey or smeared", warning=True)
        return frame

    def _publish(self, parts: _Configured, camera: _Camera, arrival: Arrival, frame: np.ndarray,
                 raw: RawOutput) -> None:
        perception, outputs, class_names = parts.perception, camera.outputs, parts.perception.info.class_names
        header = arrival.message.header
        try:
            detections = perception.detections(raw)
            # detections go out before the masks are even resized: they are what a planner waits for
            outputs.detections.publish(detections_to_msg(header, detections, class_names, outputs.messages))
            drivable, lane = perception.masks(raw)
            outputs.publish_images(header, frame, detections, drivable, lane, class_names,
                                   parts.settings.publish_overlay)
            occupancy = camera.ground.publish(header, drivable, lane)
            if occupancy is not None and parts.surround is not None:
                parts.surround.update(camera.name, to_ns(header.stamp), occupancy, arrival.received)
        except Exception as err:  # noqa: BLE001 - one failed frame must not stop the node
            self._frame_failed(err)
            return
        self.stats.on_processed(1e3 * (time.monotonic() - arrival.received), raw.timings["inference"])

    def _frame_failed(self, err: BaseException, count: int = 1) -> None:
        if not self.context.ok():  # Ctrl-C: rclpy shut the context down under this frame; nothing failed
            return
        for _ in range(count):
            self.stats.on_error()
        self._log_once_per_cause(f"frame failed: {type(err).__name__}: {err}", warning=False)

    # diagnostics -----------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        parts = self.parts
        if parts is None:
            return
        snap = self.stats.snapshot()
        now = time.monotonic()
        cameras = self._camera_states(parts, now)
        health = node_health(snap, cameras, parts.worker.died,
                             all(camera.input.subscribed for camera in parts.cameras.values()))
        status = DiagnosticStatus(name=diagnostics_name(self.get_fully_qualified_name()), level=bytes([health.level]),
                                  message=health.message, hardware_id=parts.perception.backend.name)
        values = {**{k: f"{v:.2f}" if isinstance(v, float) else str(v) for k, v in snap.items()},
                  "backend": parts.perception.backend.name, "model": str(parts.settings.perception.model_path)}
        for camera in cameras:
            key = f"camera {camera.name}" if camera.name else "camera"
            values[f"{key}: topic"] = camera.topic
            values[f"{key}: seconds since a frame"] = "never" if camera.since_frame_s is None else \
                f"{camera.since_frame_s:.2f}"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                     status=[status]))

    def _camera_states(self, parts: _Configured, now: float) -> list[CameraState]:
        losses = self.stats.recent_loss_by_source(now)
        skews = parts.surround.stamp_skews() if parts.surround is not None else {}
        states = []
        for camera in parts.cameras.values():
            if not camera.input.subscribed or camera.subscribed_at is None:
                continue
            states.append(CameraState(
                name=camera.name, topic=camera.input.topic_name or "",
                since_frame_s=None if camera.last_received is None else now - camera.last_received,
                since_subscribed_s=now - camera.subscribed_at, recent_loss=losses.get(camera.name, 0.0),
                grid_off=camera.ground.off_reason, stamp_skew_s=skews.get(camera.name, 0.0),
                other_transport=camera.input.other_transport_with_publishers()))
        return states

    def destroy_node(self) -> None:
        unbridge_package_logging(self._log_bridge)
        super().destroy_node()

    def _log_once_per_cause(self, message: str, warning: bool) -> None:
        """Log a bad or failed frame at most once per LOG_THROTTLE_S per cause (the message with its numbers
        taken out): rclpy's throttle is per call site, so one cause would silence every other."""
        if not self.context.ok():  # shutting down: rosout is gone, and the cause with it
            return
        cause = re.sub(r"\d+", "#", message)
        now = time.monotonic()
        if now - self._last_logged.get(cause, -LOG_THROTTLE_S) < LOG_THROTTLE_S:
            return
        self._last_logged[cause] = now
        # two call sites: rclpy fixes a logging call site's severity on its first call and raises
        # "Logger severity cannot be changed between calls" if one line logs at two severities
        if warning:
            self.get_logger().warning(message)
        else:
            self.get_logger().error(message)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Live parameters (score_threshold, iou_threshold, max_detections, publish_overlay) take effect on
        the next frame; an invalid value is refused with the reason. Ranges and read-only parameters are
        checked by rclpy from their descriptors before this runs."""
        changes = {p.name: p.value for p in params}
        parts = self.parts
        if parts is None:
            return SetParametersResult(successful=True)  # unconfigured: read at the next configure
        fixed = sorted(set(changes) - LIVE)
        if fixed:
            name = self.get_fully_qualified_name()
            # cleanup is refused from active (its transitions there are deactivate and shutdown)
            first = f"`ros2 lifecycle set {name} deactivate`, then `cleanup`" if parts.worker.running else \
                f"`ros2 lifecycle set {name} cleanup`"
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(fixed)} is read-only while the node is configured: {first}, set it, then `configure` "
                "and `activate` (or restart the node)"))
        try:
            settings = updated_settings(parts.settings, changes)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        parts.settings = settings
        parts.perception.config = settings.perception  # read once per frame by the worker
        if "score_threshold" in changes and parts.worker.running:  # active: the latched label_info says it too
            self._publish_label_info()
        self.get_logger().info("set " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return SetParametersResult(successful=True)


@dataclass
class _ImageOutputs:
    """The image-plane outputs: detections, both masks, the overlay and the latched label_info."""

    detections: Any
    drivable: Any
    lane: Any
    overlay: Any  # always there (publish_overlay can be switched on while running); drawn only while wanted
    labels: Any
    messages: RclpyMessages  # message classes looked up once

    @classmethod
    def create(cls, node: LifecycleNode, camera: str = "") -> _ImageOutputs:
        def publisher(kind: Any, topic: str, qos: QoSProfile = OUTPUT_QOS) -> Any:
            return node.create_lifecycle_publisher(kind, camera_topic(camera, topic), qos)

        return cls(publisher(Detection2DArray, "detections"), publisher(Image, "drivable_mask"),
                   publisher(Image, "lane_mask"), publisher(Image, "overlay"),
                   publisher(LabelInfo, "label_info", LATCHED_QOS), RclpyMessages())

    def close(self, node: LifecycleNode) -> None:
        for publisher in (self.detections, self.drivable, self.lane, self.overlay, self.labels):
            node.destroy_lifecycle_publisher(publisher)

    def publish_images(self, header: Header, frame: np.ndarray, detections: Detections, drivable: np.ndarray,
                       lane: np.ndarray, class_names: tuple[str, ...], overlay: bool) -> None:
        self.drivable.publish(mask_to_image(header, drivable, self.messages))
        self.lane.publish(mask_to_image(header, lane, self.messages))
        if overlay and self.overlay.get_subscription_count() > 0:
            labels = detection_labels(class_names, detections.class_ids, detections.scores)
            overlay_image = draw_overlay(frame, detections.boxes, labels, drivable, lane)
            self.overlay.publish(bgr_to_image(header, overlay_image, self.messages))


@dataclass
class _Camera:
    """One camera's part of the node: its subscriptions, its outputs, and when its last frame came."""

    name: str  # "": the unnamed camera
    input: CameraInput
    outputs: _ImageOutputs
    ground: GroundOutputs
    last_received: float | None = None  # time.monotonic(); None until its first frame since activation
    subscribed_at: float | None = None  # time.monotonic() of the last activation


@dataclass
class _Configured:
    """What the node holds between on_configure and on_cleanup."""

    settings: NodeSettings
    perception: Perception
    cameras: dict[str, _Camera]
    surround: SurroundGrid | None  # drivable_grid fused from the named cameras' grids; None for one unnamed
    worker: FrameWorker
    diagnostics_timer: Any


def main(args: list[str] | None = None) -> int:
    retain_large_buffers()  # before any frame is allocated; see runtime/allocator.py
    try:
        rclpy.init(args=args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - rcl's argument errors (RCLError and kin): one line, not a traceback
        print(f"perception_node: cannot start: {_first_line(err)}; check the --ros-args (-p NAME:=VALUE, "
              "--params-file FILE, -r FROM:=TO)", file=sys.stderr)
        return 1
    node: PerceptionNode | None = None
    try:
        try:
            node = PerceptionNode()
        except (InvalidParameterValueException, InvalidParameterTypeException) as err:
            # rclpy checks -p values against the descriptors while declaring: one line, not a traceback
            # the node is gone: `ros2 param describe` could not reach it; the package's own table says the same
            rclpy.logging.get_logger("perception_node").fatal(
                f"cannot start: {err}; each parameter's range: `ros2 launch mtl_perception jetson.launch.py "
                "--show-args`, or the README's parameter table")
            return 1
        except Exception as err:  # noqa: BLE001 - a bad namespace or node name, remap: rcl says which
            rclpy.logging.get_logger("perception_node").fatal(f"cannot start: {_first_line(err)}")
            return 1
        if node.autostart:
            if node.trigger_configure() != SUCCESS:
                node.get_logger().fatal("cannot start: configuration failed (above); fix it and restart")
                return 1
            node.trigger_activate()
        else:
            node.get_logger().info("unconfigured (autostart false): waiting for `ros2 lifecycle set`")
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C in a terminal reaches both `ros2 launch` and this process, and launch then sends its own
        # SIGINT: a second one must not interrupt the cleanup below
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.stop_input()  # the worker finishes its frame before the node goes
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _first_line(err: BaseException) -> str:
    """rcl's messages run over several lines (with the C file and line): the first says what is wrong."""
    text = str(err).strip().splitlines()
    # rcl appends ", at FILE.c:LINE" for every frame it passed: where in C, not what to fix
    return re.sub(r",? at /\S+:\d+", "", text[0]) if text else type(err).__name__

