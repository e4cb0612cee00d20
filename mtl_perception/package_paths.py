"""Where the package's data files are: the source tree in a checkout, else the install's share folder."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "mtl_perception"
_SOURCE = Path(__file__).resolve().parents[1]


def package_share() -> Path:
    """The source tree when run from a checkout (so edits to config/ and models/ count at once),
    else share/mtl_perception of the install (colcon: ament index; pip: the environment's prefix)."""
    if (_SOURCE / "config" / "jetson.yaml").is_file():
        return _SOURCE
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, PackageNotFoundError, OSError):  # OSError: no AMENT_PREFIX_PATH (pip installs)
        return Path(sys.prefix) / "share" / PACKAGE


def vision_msgs_definitions() -> Path:
    """The folder of vision_msgs .msg files (for writing self-describing rosbags without ROS)."""
    source = _SOURCE / "resource" / "vision_msgs" / "msg"
    return source if source.is_dir() else package_share() / "vision_msgs" / "msg"
