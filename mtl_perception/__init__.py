"""mtl_perception: one network for detection, drivable area and lanes, served over ROS 2.

Sub-packages, by what they may import (see docs/architecture.md):
- ``data``: BDD100K's layout and label encodings, and the synthetic scene generator (numpy, OpenCV).
- ``runtime``: pre-processing, inference backends, post-processing (numpy, OpenCV; no torch, no ROS).
- ``ros``: the rclpy node, conversions only.
- ``training``: the network, losses, training loop and ONNX export (torch).
- ``evaluation``: metrics, dataset and rosbag evaluation, benchmarks (runtime results).
"""

__version__ = "0.1.0"
