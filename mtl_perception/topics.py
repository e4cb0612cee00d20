"""ROS topic naming conventions the package follows, with no ROS import (the launch file and the bag tools
both use them)."""

from __future__ import annotations


def camera_info_beside(image_topic: str) -> str:
    """The camera_info topic a driver publishes beside an image topic, as image_transport pairs them:
    /camera/image_raw -> /camera/camera_info."""
    parent = image_topic.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/camera_info"


def camera_topic(camera: str, topic: str) -> str:
    """A camera's topic: under its name, or as is for the unnamed camera (relative: namespaces and remapping
    apply)."""
    return f"{camera}/{topic}" if camera else topic


# perception_node's /diagnostics status is named "<node's fully qualified name>: perception"; a reader of
# /diagnostics (the demo, bench-node, a test) tells it from other nodes' statuses by this suffix
DIAGNOSTICS_SUFFIX = ": perception"


def diagnostics_name(node_name: str) -> str:
    """The /diagnostics status name of the perception node whose fully qualified name is node_name."""
    return f"{node_name}{DIAGNOSTICS_SUFFIX}"


def is_perception_diagnostics(status_name: str, node_name: str | None = None) -> bool:
    """Whether a /diagnostics status is a perception node's (the node named node_name's, when given)."""
    return status_name == diagnostics_name(node_name) if node_name else status_name.endswith(DIAGNOSTICS_SUFFIX)
