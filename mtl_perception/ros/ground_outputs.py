"""What a planner uses, on the ground in target_frame: drivable_grid, lane_markings, lane_marking_points,
objects (the tracked road users placed on the ground) with objects/motion (their velocities), and the ego lane
(ego_lane/left and ego_lane/right as paths, ego_lane as its typed state).

objects/motion and ego_lane are mtl_perception_msgs messages (resource/mtl_perception_msgs): where that package
is not built, the node says so once and publishes everything else.

They need the camera's intrinsics (its camera_info) and its pose in target_frame (the camera_pose
parameter, or TF where it is unset and tf2_ros is installed): GroundOutputs gathers both for the frame
pipeline (runtime/pipeline.py), which puts the masks on the ground, and publishes what it made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
from nav_msgs.msg import OccupancyGrid, Path
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from mtl_perception import message_layouts as layouts
from mtl_perception.ros.conversions import (
    RclpyMessages,
    lane_markers_msg,
    marking_points_msg,
    object_markers_msg,
    occupancy_grid_msg,
)
from mtl_perception.ros.tf_pose import TfCameraPose, tf_available
from mtl_perception.runtime.ground import (
    CameraIntrinsics,
    CameraPose,
    GeometryError,
    GridSpec,
    fuse_occupancy,
)
from mtl_perception.runtime.health import SKEW_WARNING_S
from mtl_perception.runtime.pipeline import CameraGeometry, FrameResult
from mtl_perception.stamps import NS_PER_S, from_ns
from mtl_perception.topics import camera_topic

# a bad frame or geometry is logged once per cause (and not again for LOG_THROTTLE_S): (message, warning)
LogOnce = Callable[[str, bool], None]
# the surround grid fuses the cameras' grids whose stamps lie this close to the newest: a rig's cameras are
# triggered together at 10-30 Hz, so one frame of each falls inside; an older grid would place the road where
# the car was (0.15 s is 2 m at 50 km/h), and a camera that stopped drops out of it
SURROUND_WINDOW_S = 0.15


class GroundOutputs:
    """Created in on_configure (its lifecycle publishers, and the TF listener where the pose comes from TF),
    closed in on_cleanup. on_camera_info takes the latest intrinsics; geometry() gives the pipeline the
    camera's geometry for a frame, and publish() what the pipeline put on the ground."""

    def __init__(self, node: LifecycleNode, qos: QoSProfile, camera_pose: CameraPose | None, target_frame: str,
                 grid: GridSpec, log_once: LogOnce, prefix: str = "") -> None:
        self.node, self.camera_pose, self.target_frame, self.grid = node, camera_pose, target_frame, grid
        # with several cameras every line says which camera it is about
        self._log_once: LogOnce = (lambda message, warning: log_once(f"camera {prefix}: {message}", warning)) \
            if prefix else log_once
        # why this camera's ground outputs are off now (a geometry fault /diagnostics warns about); None while
        # they are published, or off by configuration (no camera_pose and no TF)
        self.off_reason: str | None = None
        # the camera's name (parameters.cameras): its topics go under it
        self._grid_pub = node.create_lifecycle_publisher(OccupancyGrid, camera_topic(prefix, "drivable_grid"), qos)
        self._markers_pub = node.create_lifecycle_publisher(MarkerArray, camera_topic(prefix, "lane_markings"), qos)
        self._points_pub = node.create_lifecycle_publisher(PointCloud2, camera_topic(prefix, "lane_marking_points"),
                                                           qos)
        self._objects_pub = node.create_lifecycle_publisher(Detection3DArray, camera_topic(prefix, "objects"), qos)
        self._object_markers_pub = node.create_lifecycle_publisher(MarkerArray, camera_topic(prefix, "objects/markers"),
                                                                   qos)
        self._lane_pubs = [node.create_lifecycle_publisher(Path, camera_topic(prefix, f"ego_lane/{side}"), qos)
                           for side in ("left", "right")]
        self._typed_pubs = _typed_publishers(node, qos, prefix)
        self.objects_left_out = {"above the horizon": 0, "beyond grid_range": 0}  # road users not placed, in all
        self._messages = RclpyMessages()
        self.intrinsics: CameraIntrinsics | None = None  # from the latest camera_info
        self._said_no_camera_info = False  # the wait for camera_info is logged once
        self._tf: TfCameraPose | None = None
        if camera_pose is None and tf_available():
            self._tf = TfCameraPose(node, target_frame)
            node.get_logger().info(f"camera pose from TF: {target_frame} to the images' frame_id")
        elif camera_pose is None:
            node.get_logger().info("drivable_grid and lane_markings off: set camera_pose (the camera's x, y, z, "
                                   f"roll, pitch, yaw in {target_frame}; tf2_ros is not installed) and publish "
                                   "camera_info")

    def close(self) -> None:
        for publisher in (self._grid_pub, self._markers_pub, self._points_pub, self._objects_pub,
                          self._object_markers_pub, *self._lane_pubs,
                          *self._typed_pubs.values()):
            self.node.destroy_lifecycle_publisher(publisher)
        if self._tf is not None:
            self._tf.close()
            self._tf = None

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.intrinsics = CameraIntrinsics.from_camera_info(tuple(msg.k), msg.width, msg.height)
        except GeometryError as err:
            # the last good intrinsics would place this camera's frames wrong: none, until a usable one comes
            self.intrinsics = None
            self._off(f"camera_info unusable: {err}")

    def geometry(self, camera_frame: str) -> CameraGeometry | None:
        """The camera's geometry for a frame of camera_frame (its images' frame_id), or None while the pose
        or the intrinsics are unknown (the wait for camera_info is logged once)."""
        pose = self._pose(camera_frame)
        if self.intrinsics is None and pose is not None and not self._said_no_camera_info:
            self._said_no_camera_info = True
            self.node.get_logger().info("drivable_grid and lane_markings wait for camera_info: no camera "
                                        "intrinsics yet (remap camera_info to the camera's topic, or use the "
                                        "launch file's camera_info_topic)")
        if pose is None or self.intrinsics is None:
            return None
        return CameraGeometry(self.intrinsics, pose)

    def publish(self, header: Header, result: FrameResult, class_names: tuple[str, ...]) -> None:
        """The frame's grid, markings and objects, with its stamp, where the pipeline placed them; a geometry
        fault is logged (once per cause) and kept for /diagnostics."""
        if result.ground_off is not None:
            self._off(result.ground_off)
        view = result.ground
        if view is None:
            return
        self.off_reason = None
        ground_header = Header(stamp=header.stamp, frame_id=self.target_frame)
        self._grid_pub.publish(occupancy_grid_msg(ground_header, view.occupancy, self.grid, self._messages))
        self._markers_pub.publish(lane_markers_msg(ground_header, view.markings))
        self._points_pub.publish(marking_points_msg(ground_header, view.markings, self._messages))
        if result.objects is not None and result.detections is not None:
            ids = result.tracks.track_ids.tolist() if result.tracks is not None else None
            self._objects_pub.publish(layouts.object_array(self._messages, ground_header, result.objects,
                                                           result.detections, class_names, ids))
            if self._object_markers_pub.get_subscription_count() > 0:  # for RViz: drawn only while it is watched
                self._object_markers_pub.publish(object_markers_msg(ground_header, result.objects, result.detections,
                                                                    class_names, ids))
            self.objects_left_out["above the horizon"] += result.objects.above_horizon
            self.objects_left_out["beyond grid_range"] += result.objects.beyond_range
            if "motion" in self._typed_pubs:
                self._typed_pubs["motion"].publish(layouts.object_motion_array(self._messages, ground_header,
                                                                               result.objects, ids))
        if result.ego_lane is not None:
            for publisher, boundary in zip(self._lane_pubs, (result.ego_lane.left, result.ego_lane.right)):
                publisher.publish(layouts.lane_path(self._messages, ground_header, boundary))
            if "ego_lane" in self._typed_pubs:
                self._typed_pubs["ego_lane"].publish(layouts.ego_lane_state(self._messages, ground_header,
                                                                            result.ego_lane))

    def _off(self, reason: str) -> None:
        self.off_reason = reason
        self._log_once(reason, True)

    def _pose(self, camera_frame: str) -> CameraPose | None:
        """The camera_pose parameter, or else TF's pose of the images' frame (logged once per cause when TF
        has none)."""
        if self.camera_pose is not None or self._tf is None:
            return self.camera_pose
        try:
            pose = self._tf.pose(camera_frame)
        except LookupError as err:
            self._log_once(f"drivable_grid waits for TF: {err}", True)
            return None
        # rounded so that a static transform re-read with float noise does not rebuild the lookups
        return CameraPose(*(round(v, 5) for v in (pose.x, pose.y, pose.z, pose.roll, pose.pitch, pose.yaw)))


def _typed_publishers(node: LifecycleNode, qos: QoSProfile, prefix: str) -> dict[str, LifecyclePublisher]:
    """The publishers of mtl_perception_msgs' messages, or none where that package is not built (said once)."""
    try:
        messages = importlib.import_module("mtl_perception_msgs.msg")
    except ImportError:
        node.get_logger().warning(
            "ego_lane and objects/motion off: the interface package mtl_perception_msgs is not built (colcon build "
            "--base-paths src src/mtl_perception/resource, see the README); ego_lane/left, ego_lane/right and "
            "objects are published", once=True)
        return {}
    return {"ego_lane": node.create_lifecycle_publisher(messages.EgoLane, camera_topic(prefix, "ego_lane"), qos),
            "motion": node.create_lifecycle_publisher(messages.ObjectMotionArray, camera_topic(prefix, "objects/motion"),
                                                      qos)}


class SurroundGrid:
    """drivable_grid for a node with named cameras: every camera's latest grid within SURROUND_WINDOW_S of the
    newest one, fused (runtime.ground.fuse_occupancy: unknown until a camera sees a cell, not drivable where
    cameras disagree), stamped with the newest one's stamp. Each camera's own grid stays under its name.

    Grids are matched by their stamps, as a triggered rig's are; a camera whose stamps disagree with the
    others' by more than SKEW_WARNING_S (a clock 100 s ahead, or stamping 0) is matched by when its frames
    arrived instead, so that it neither pushes the others out of the window nor stays out of it, and drops out
    when it stops. stamp_skews() says by how much each camera is off, for /diagnostics."""

    def __init__(self, node: LifecycleNode, qos: QoSProfile, target_frame: str, grid: GridSpec) -> None:
        self.node, self.target_frame, self.grid = node, target_frame, grid
        self._pub = node.create_lifecycle_publisher(OccupancyGrid, "drivable_grid", qos)
        self._messages = RclpyMessages()
        # camera -> (stamp ns, arrival s on the monotonic clock, grid values)
        self._latest: dict[str, tuple[int, float, np.ndarray]] = {}
        self._updated = False  # a camera's grid came since the last publish

    def update(self, camera: str, stamp_ns: int, occupancy: np.ndarray, arrived: float) -> None:
        self._latest[camera] = (stamp_ns, arrived, occupancy)
        self._updated = True

    def publish(self) -> None:
        """The fused grid of the grids updated since the last call (with those of the other cameras that are
        recent enough); nothing when no camera's grid came since (a batch of cameras without geometry)."""
        if not self._updated:
            return
        self._updated = False
        skews = self.stamp_skews()
        skewed = {camera for camera, skew in skews.items() if abs(skew) > SKEW_WARNING_S}
        # seconds on the rig's common clock: the stamp, or for a skewed camera its stamp less its skew (the
        # time its frame arrived, on the others' clock)
        times = {camera: stamp / NS_PER_S - (skews[camera] if camera in skewed else 0.0)
                 for camera, (stamp, _, _) in self._latest.items()}
        newest = max(times.values())
        recent = [grid for camera, (_, _, grid) in self._latest.items() if newest - times[camera] <= SURROUND_WINDOW_S]
        trusted = [camera for camera in self._latest if camera not in skewed] or list(self._latest)
        stamp = self._latest[max(trusted, key=lambda camera: times[camera])][0]
        header = Header(frame_id=self.target_frame)
        header.stamp.sec, header.stamp.nanosec = from_ns(stamp)
        self._pub.publish(occupancy_grid_msg(header, fuse_occupancy(recent), self.grid, self._messages))

    def stamp_skews(self) -> dict[str, float]:
        """Per camera, seconds by which its latest stamp runs ahead (+) of the cameras' median, once the
        difference in arrival is taken out; empty with fewer than two cameras' grids (with two, each is half
        their disagreement: which one is wrong cannot be told)."""
        return stamp_skews({camera: (stamp, arrived) for camera, (stamp, arrived, _) in self._latest.items()})

    def close(self) -> None:
        self.node.destroy_lifecycle_publisher(self._pub)
        self._latest.clear()


def stamp_skews(latest: dict[str, tuple[int, float]]) -> dict[str, float]:
    """{camera: (stamp ns, arrival s)} -> {camera: its stamp's offset from the cameras' median offset, s}."""
    if len(latest) < 2:
        return {}
    offsets = {camera: stamp / NS_PER_S - arrived for camera, (stamp, arrived) in latest.items()}
    median = float(np.median(list(offsets.values())))
    return {camera: offset - median for camera, offset in offsets.items()}
