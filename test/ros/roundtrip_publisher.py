"""Publishes one known Image and Detection2DArray at 10 Hz until killed (run as a separate process)."""

from __future__ import annotations

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

WIDTH, HEIGHT = 1280, 720


def pattern() -> np.ndarray:
    """A frame whose every pixel is predictable: B = x % 256, G = y % 256, R = (x + y) % 256."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def main() -> None:
    rclpy.init()
    node = Node("roundtrip_publisher")
    image_pub = node.create_publisher(Image, "image", 1)
    det_pub = node.create_publisher(Detection2DArray, "detections", 5)
    frame = pattern()

    def tick() -> None:
        img = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", step=WIDTH * 3)
        img.header.frame_id = "camera"
        img.data = frame.tobytes()
        image_pub.publish(img)
        det = Detection2D()
        det.bbox.center.position.x, det.bbox.center.position.y = 640.5, 360.25
        det.bbox.size_x, det.bbox.size_y = 100.0, 50.0
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = "car", 0.875
        det.results.append(hyp)
        arr = Detection2DArray(detections=[det])
        arr.header.frame_id = "camera"
        det_pub.publish(arr)

    node.create_timer(0.1, tick)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
