"""perception_node: camera images in; detections, drivable and lane masks out.

A managed (lifecycle) node: configure reads the parameters and loads the model (or
builds the TensorRT engine), activate subscribes and starts inferring, deactivate stops,
cleanup lets the model go. With `autostart` (the default) it configures and activates
itself, so `ros2 run` and the launch file just work.

Thin glue around runtime.Perception. The subscription callback only stores the
newest frame (latest wins, older pending frames are counted as dropped); a worker
thread converts, infers and publishes, so a slow model never queues stale frames.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from mtl_perception.ros.conversions import (
    bgr_to_image,
    compressed_image_to_bgr,
    detections_to_msg,
    image_to_bgr,
    label_info_msg,
    lane_markers_msg,
    marking_points_msg,
    mask_to_image,
    occupancy_grid_msg,
)
from mtl_perception.ros.parameters import (
    LIVE,
    PARAMETERS,
    NodeSettings,
    load_defaults,
    settings_from,
    updated_settings,
)
from mtl_perception.ros.tf_pose import TfCameraPose, tf_available
from mtl_perception.runtime.allocator import retain_large_buffers
from mtl_perception.runtime.backends import ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.ground import CameraIntrinsics, CameraPose, GeometryError
from mtl_perception.runtime.image_encoding import ImageFormatError, jpeg_damage
from mtl_perception.runtime.lane_markings import RoadProjection
from mtl_perception.runtime.overlay import detection_labels, draw_overlay
from mtl_perception.runtime.perception import Perception
from mtl_perception.runtime.postprocess import Detections
from mtl_perception.runtime.realtime import LatestSlot, RollingStats
from mtl_perception.stamps import to_ns
from mtl_perception.topics import diagnostics_name

OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
LOG_THROTTLE_S = 5.0  # per cause of a bad or failed frame
LOSS_WARNING = 0.1  # /diagnostics warns when more of the camera's frames than this never reach the node
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


def choose_reliability(offered: list[ReliabilityPolicy]) -> ReliabilityPolicy | None:
    """rosbag2's rule: reliable only if every publisher offers it (a reliable subscriber never hears a
    best-effort publisher); None while there is no publisher to match."""
    if not offered:
        return None
    return ReliabilityPolicy.RELIABLE if all(r == ReliabilityPolicy.RELIABLE for r in offered) \
        else ReliabilityPolicy.BEST_EFFORT


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("perception_node", **kwargs)
        self._log_bridge = bridge_package_logging(self.get_logger())  # the runtime's and TensorRT's messages
        defaults = load_defaults()
        for name, spec in PARAMETERS.items():
            self.declare_parameter(name, defaults[name], spec.descriptor())
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._warn_unknown_parameters()
        self._last_logged: dict[str, float] = {}  # cause of a bad frame -> when it was last logged
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.stats = RollingStats()
        self.slot: LatestSlot[tuple[Any, float]] = LatestSlot()
        self.settings: NodeSettings | None = None
        self.perception: Perception | None = None
        self.class_names: tuple[str, ...] = ()
        self.subscription: Any = None
        self.reliability: ReliabilityPolicy | None = None
        self.worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._diagnostics_timer: Any = None  # while configured
        self._match_timer: Any = None  # while active, with input_reliability auto
        self._outputs: list[Any] = []
        self.camera_info_sub: Any = None  # while active
        self.intrinsics: CameraIntrinsics | None = None  # from the latest camera_info
        self._road: RoadProjection | None = None
        self._road_key: tuple | None = None
        self._tf: TfCameraPose | None = None  # where camera_pose is unset and tf2_ros is installed
        self._said_no_camera_info = False  # the ground outputs' wait for camera_info is logged once

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
            self.settings = settings_from({n: self.get_parameter(n).value for n in PARAMETERS})
            self.perception = Perception(self.settings.perception)
        except (ModelLoadError, ModelContractError, ValueError) as err:
            self.get_logger().error(f"cannot configure: {err}")
            return FAILURE
        except Exception as err:  # noqa: BLE001 - rclpy's lifecycle wrapper would swallow it without a word
            self.get_logger().error(f"cannot configure: unexpected {type(err).__name__}: {err}")
            return FAILURE
        info = self.perception.info
        self.class_names = info.class_names
        self.get_logger().info(f"model {self.settings.perception.model_path} ({info.backbone}, {info.input_height}x"
                               f"{info.input_width}, trained on {info.trained_on}) on {self.perception.backend.name}")
        self.detections_pub = self.create_lifecycle_publisher(Detection2DArray, "detections", OUTPUT_QOS)
        self.drivable_pub = self.create_lifecycle_publisher(Image, "drivable_mask", OUTPUT_QOS)
        self.lane_pub = self.create_lifecycle_publisher(Image, "lane_mask", OUTPUT_QOS)
        # always there (publish_overlay can be switched on while running); nothing is drawn while it is off
        self.overlay_pub = self.create_lifecycle_publisher(Image, "overlay", OUTPUT_QOS)
        self.label_pub = self.create_lifecycle_publisher(LabelInfo, "label_info", LATCHED_QOS)
        self.grid_pub = self.create_lifecycle_publisher(OccupancyGrid, "drivable_grid", OUTPUT_QOS)
        self.markers_pub = self.create_lifecycle_publisher(MarkerArray, "lane_markings", OUTPUT_QOS)
        self.marking_points_pub = self.create_lifecycle_publisher(PointCloud2, "lane_marking_points", OUTPUT_QOS)
        self._outputs = [p for p in (self.detections_pub, self.drivable_pub, self.lane_pub, self.overlay_pub,
                                     self.label_pub, self.grid_pub, self.markers_pub, self.marking_points_pub)
                         if p is not None]
        if self.settings.camera_pose is None and tf_available():
            self._tf = TfCameraPose(self, self.settings.target_frame)
            self.get_logger().info(f"camera pose from TF: {self.settings.target_frame} to the images' frame_id")
        elif self.settings.camera_pose is None:
            self.get_logger().info("drivable_grid and lane_markings off: set camera_pose (the camera's x, y, z, "
                                   f"roll, pitch, yaw in {self.settings.target_frame}; tf2_ros is not installed) "
                                   "and publish camera_info")
        self._diagnostics_timer = self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.settings is not None
        result = super().on_activate(state)  # lifecycle publishers publish from here on
        if result != SUCCESS:
            return result
        self.label_pub.publish(label_info_msg(Header(stamp=self.get_clock().now().to_msg()), self.class_names,
                                              self.settings.perception.score_threshold))
        self.slot = LatestSlot()
        self._stop.clear()
        self.worker = threading.Thread(target=self._work, name="perception", daemon=True)
        self.worker.start()
        self._subscribe(self._initial_reliability())
        # intrinsics for drivable_grid; best effort matches a camera_info publisher of either reliability
        self.camera_info_sub = self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info,
            QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT))
        if self.settings.input_reliability == "auto":
            self._match_timer = self.create_timer(0.5, self._match_publishers)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        return SUCCESS

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.intrinsics = CameraIntrinsics.from_camera_info(tuple(msg.k), msg.width, msg.height)
        except GeometryError as err:
            self._log_once_per_cause(f"camera_info unusable: {err}", warning=True)

    def _camera_pose(self, camera_frame: str) -> CameraPose | None:
        """The camera_pose parameter, or else TF's pose of the images' frame (logged once per cause when
        TF has none)."""
        if self.settings is None:
            return None
        if self.settings.camera_pose is not None or self._tf is None:
            return self.settings.camera_pose
        try:
            pose = self._tf.pose(camera_frame)
        except LookupError as err:
            self._log_once_per_cause(f"drivable_grid waits for TF: {err}", warning=True)
            return None
        # rounded so that a static transform re-read with float noise does not rebuild the lookups
        return CameraPose(*(round(v, 5) for v in (pose.x, pose.y, pose.z, pose.roll, pose.pitch, pose.yaw)))

    def _road_projection(self, camera_frame: str, mask_shape: tuple[int, ...]) -> RoadProjection | None:
        """The ground lookups for the current camera geometry, rebuilt when the geometry changes; None without
        a pose or intrinsics (or with a geometry that sees no ground: logged once)."""
        settings, intrinsics = self.settings, self.intrinsics
        pose = self._camera_pose(camera_frame)
        if intrinsics is None and pose is not None and not self._said_no_camera_info:
            self._said_no_camera_info = True
            self.get_logger().info("drivable_grid and lane_markings wait for camera_info: no camera intrinsics "
                                   "yet (remap camera_info to the camera's topic, or use the launch file's "
                                   "camera_info_topic)")
        if settings is None or pose is None or intrinsics is None:
            return None
        if (intrinsics.height, intrinsics.width) != tuple(mask_shape[:2]):
            # checked before any lookup is built: a camera_info of another camera must cost nothing
            self._log_once_per_cause(f"drivable_grid skipped: camera_info is {intrinsics.width}x{intrinsics.height}, "
                                     f"the frames {mask_shape[1]}x{mask_shape[0]}: remap camera_info to this camera's",
                                     warning=True)
            return None
        key = (intrinsics, pose, settings.grid)
        if self._road_key != key:
            self._road_key = key
            try:
                self._road = RoadProjection(intrinsics, pose, settings.grid)
            except GeometryError as err:
                self._road = None
                self.get_logger().error(f"drivable_grid and lane_markings off: {err}")
        return self._road

    def _publish_ground(self, header: Header, drivable: np.ndarray, lane: np.ndarray) -> None:
        """drivable_grid and the lane markings for this frame where the geometry is known; a camera_info that
        does not fit the frames is logged (once per cause) and costs the frame nothing else."""
        road = self._road_projection(header.frame_id, drivable.shape)
        if road is None or self.settings is None:
            return
        try:
            view = road.project(drivable, lane)
        except GeometryError as err:
            self._log_once_per_cause(f"drivable_grid skipped: {err}", warning=True)
            return
        ground_header = Header(stamp=header.stamp, frame_id=self.settings.target_frame)
        self.grid_pub.publish(occupancy_grid_msg(ground_header, view.occupancy, road.spec))
        self.markers_pub.publish(lane_markers_msg(ground_header, view.markings))
        self.marking_points_pub.publish(marking_points_msg(ground_header, view.markings))

    def _stop_input(self) -> None:
        """Unsubscribe, then let the worker finish its frame; configured state stays."""
        if self.subscription is not None:
            self.destroy_subscription(self.subscription)
            self.subscription = None
        if self.camera_info_sub is not None:
            self.destroy_subscription(self.camera_info_sub)
            self.camera_info_sub = None
        if self._match_timer is not None:
            self.destroy_timer(self._match_timer)
            self._match_timer = None
        self.close()

    def _release(self) -> None:
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = []
        if self.perception is not None:
            self.perception.close()  # TensorRT: the CUDA context and GPU buffers go now, not at exit
            self.perception = None
        if self._tf is not None:
            self._tf.close()
            self._tf = None
        self._road, self._road_key = None, None  # a new configuration may bring another geometry
        self.settings = None  # unconfigured: every parameter may be set again, and is read at configure

    # input -----------------------------------------------------------------------------------
    def _initial_reliability(self) -> ReliabilityPolicy:
        assert self.settings is not None
        fixed = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
        return fixed.get(self.settings.input_reliability, ReliabilityPolicy.RELIABLE)

    def _subscribe(self, reliability: ReliabilityPolicy) -> None:
        assert self.settings is not None
        if self.subscription is not None:
            self.destroy_subscription(self.subscription)
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        compressed = self.settings.input_transport == "compressed"
        msg_type, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.subscription = self.create_subscription(msg_type, topic, self._on_image, qos)
        self.reliability = reliability
        self.get_logger().info(f"subscribed to {self.subscription.topic_name} ({reliability.name.lower()})")

    def _match_publishers(self) -> None:
        if self.subscription is None:
            return
        offered = [info.qos_profile.reliability
                   for info in self.get_publishers_info_by_topic(self.subscription.topic_name)]
        wanted = choose_reliability(offered)
        if wanted is not None and wanted != self.reliability:
            self._subscribe(wanted)

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.on_received(self.slot.put((msg, time.monotonic())), stamp_ns=to_ns(msg.header.stamp))

    # processing ------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            item = self.slot.take(timeout=0.1)
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as err:  # noqa: BLE001 - the worker outlives any frame, even a fault in its handling
                self.stats.on_error()
                with contextlib.suppress(Exception):
                    self._log_once_per_cause(f"frame failed: {type(err).__name__}: {err}", warning=False)

    def _process(self, msg: Image | CompressedImage, received: float) -> None:
        perception = self.perception
        if perception is None:
            return
        max_pixels = self.settings.max_image_pixels if self.settings is not None else 0
        try:
            frame = compressed_image_to_bgr(msg, max_pixels) if isinstance(msg, CompressedImage) \
                else image_to_bgr(msg, max_pixels)
            damage = jpeg_damage(msg.data) if isinstance(msg, CompressedImage) else None
            if damage is not None:
                self.stats.on_damaged()
                kind = damage.split(":")[0]  # one cause per kind, not per byte offset
                self._log_once_per_cause(f"a damaged jpeg frame ({kind}; in transit?): answered, but its "
                                         "damaged part is grey or smeared", warning=True)
            raw = perception.infer(frame)
            detections = perception.detections(raw)
            # detections go out before the masks are even resized: they are what a planner waits for
            self.detections_pub.publish(detections_to_msg(msg.header, detections, self.class_names))
            drivable, lane = perception.masks(raw)
            self._publish_images(msg.header, frame, detections, drivable, lane)
            self._publish_ground(msg.header, drivable, lane)
        except ImageFormatError as err:
            self.stats.on_bad_frame()
            self._log_once_per_cause(f"skipping bad frame: {err}", warning=True)
            return
        except Exception as err:  # noqa: BLE001 - one failed frame must not stop the node
            if not self.context.ok():  # Ctrl-C: rclpy shut the context down under this frame; nothing failed
                self._stop.set()
                return
            self.stats.on_error()
            self._log_once_per_cause(f"frame failed: {type(err).__name__}: {err}", warning=False)
            return
        self.stats.on_processed(1e3 * (time.monotonic() - received), raw.timings["inference"])

    def _publish_images(self, header: Header, frame: np.ndarray, detections: Detections, drivable: np.ndarray,
                        lane: np.ndarray) -> None:
        self.drivable_pub.publish(mask_to_image(header, drivable))
        self.lane_pub.publish(mask_to_image(header, lane))
        settings = self.settings
        if settings is not None and settings.publish_overlay and self.overlay_pub.get_subscription_count() > 0:
            labels = detection_labels(self.class_names, detections.class_ids, detections.scores)
            overlay = draw_overlay(frame, detections.boxes, labels, drivable, lane)
            self.overlay_pub.publish(bgr_to_image(header, overlay))

    # diagnostics -----------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if self.perception is None or self.settings is None:
            return
        snap = self.stats.snapshot()
        status = DiagnosticStatus(name=diagnostics_name(self.get_fully_qualified_name()),
                                  hardware_id=self.perception.backend.name)
        if self.worker is not None and not self.worker.is_alive() and not self._stop.is_set():
            status.level, status.message = DiagnosticStatus.ERROR, "the processing thread has stopped: no frame is answered; restart the node"
        elif self.subscription is None:
            status.level, status.message = DiagnosticStatus.OK, "inactive: configured, not subscribed"
        elif snap["recent_loss_before_node"] > LOSS_WARNING:
            status.level = DiagnosticStatus.WARN
            status.message = (f"{100 * snap['recent_loss_before_node']:.0f}% of the camera's frames never arrived "
                              "(header stamp gaps): give the camera driver config/fastdds_large_frames.xml, or "
                              "publish reliable (README)")
        elif snap["recent_errors"] or snap["recent_bad_frames"]:  # last window
            status.level, status.message = DiagnosticStatus.WARN, "some frames could not be processed"
        elif snap["recent_damaged_frames"]:
            status.level = DiagnosticStatus.WARN
            status.message = "some jpeg frames came damaged (answered; damaged_frames counts them)"
        elif snap["recent_received"] and snap["recent_dropped"] > 0.1 * snap["recent_received"]:
            status.level, status.message = DiagnosticStatus.WARN, "dropping frames: the model is slower than the camera"
        else:
            status.level, status.message = DiagnosticStatus.OK, "ok"
        values = {**{k: f"{v:.2f}" if isinstance(v, float) else str(v) for k, v in snap.items()},
                  "backend": self.perception.backend.name, "model": str(self.settings.perception.model_path)}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                     status=[status]))

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
        if self.settings is None:
            return SetParametersResult(successful=True)  # unconfigured: read at the next configure
        fixed = sorted(set(changes) - LIVE)
        if fixed:
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(fixed)} is read-only while the node is configured: `ros2 lifecycle set "
                f"{self.get_fully_qualified_name()} cleanup`, set it, then configure (or restart the node)"))
        try:
            settings = updated_settings(self.settings, changes)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        self.settings = settings
        if self.perception is not None:
            self.perception.config = settings.perception  # read once per frame by the worker
        if "score_threshold" in changes and self.worker is not None:  # active: the latched label_info says it too
            self.label_pub.publish(label_info_msg(Header(stamp=self.get_clock().now().to_msg()), self.class_names,
                                                  settings.perception.score_threshold))
        self.get_logger().info("set " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    def close(self) -> None:
        """Stop the worker after the frame it is on."""
        self._stop.set()
        self.slot.close()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
            self.worker = None


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
            rclpy.logging.get_logger("perception_node").fatal(
                f"cannot start: {err}; see `ros2 param describe /perception_node <name>` for what it takes")
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
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _first_line(err: BaseException) -> str:
    """rcl's messages run over several lines (with the C file and line): the first says what is wrong."""
    text = str(err).strip().splitlines()
    # rcl appends ", at FILE.c:LINE" for every frame it passed: where in C, not what to fix
    return re.sub(r",? at /\S+:\d+", "", text[0]) if text else type(err).__name__

