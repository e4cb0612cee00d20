"""One camera's image-plane outputs: detections, both masks, the overlay and the latched label_info."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rclpy.lifecycle import LifecycleNode
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, LabelInfo

from mtl_perception.ros.conversions import RclpyMessages, bgr_to_image, detections_to_msg, mask_to_image
from mtl_perception.runtime.overlay import draw_frame
from mtl_perception.runtime.pipeline import FrameResult
from mtl_perception.topics import camera_topic

OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class ImageOutputs:
    """Lifecycle publishers, made in on_configure and destroyed in on_cleanup."""

    detections: Any
    drivable: Any
    lane: Any
    overlay: Any  # always there (publish_overlay can be switched on while running); drawn only while wanted
    labels: Any
    messages: RclpyMessages  # message classes looked up once

    @classmethod
    def create(cls, node: LifecycleNode, camera: str = "") -> ImageOutputs:
        def publisher(kind: Any, topic: str, qos: QoSProfile = OUTPUT_QOS) -> Any:
            return node.create_lifecycle_publisher(kind, camera_topic(camera, topic), qos)

        return cls(publisher(Detection2DArray, "detections"), publisher(Image, "drivable_mask"),
                   publisher(Image, "lane_mask"), publisher(Image, "overlay"),
                   publisher(LabelInfo, "label_info", LATCHED_QOS), RclpyMessages())

    def close(self, node: LifecycleNode) -> None:
        for publisher in (self.detections, self.drivable, self.lane, self.overlay, self.labels):
            node.destroy_lifecycle_publisher(publisher)

    def publish_detections(self, header: Header, result: FrameResult, class_names: tuple[str, ...]) -> None:
        assert result.detections is not None
        ids = result.tracks.track_ids.tolist() if result.tracks is not None else None
        self.detections.publish(detections_to_msg(header, result.detections, class_names, self.messages, ids))

    def publish_images(self, header: Header, result: FrameResult, class_names: tuple[str, ...],
                       overlay: bool) -> None:
        assert result.image is not None and result.detections is not None
        assert result.drivable is not None and result.lane is not None
        self.drivable.publish(mask_to_image(header, result.drivable, self.messages))
        self.lane.publish(mask_to_image(header, result.lane, self.messages))
        if overlay and self.overlay.get_subscription_count() > 0:
            drawn = draw_frame(result, class_names)
            self.overlay.publish(bgr_to_image(header, drawn, self.messages))
