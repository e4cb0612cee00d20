"""ROS topic naming conventions the package follows, with no ROS import (the launch file and the bag tools
both use them)."""

from __future__ import annotations


def camera_info_beside(image_topic: str) -> str:
    """The camera_info topic a driver publishes beside an image topic, as image_transport pairs them:
    /camera/image_raw -> /camera/camera_info."""
    parent = image_topic.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/camera_info"
