"""Where the package's data files are: the source tree in a checkout, else the install's share folder."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "mtl_perception"
_SOURCE = Path(__file__).resolve().parents[1]
# Fast DDS's XML profile variable: FASTDDS_... from Kilted on (Fast DDS 3; its rmw warns that the old name
# is deprecated), FASTRTPS_... on Humble, Iron and Jazzy (Fast DDS 2.x reads only that one:
# ros2/ros2_documentation#6098)
FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


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


BUNDLED_BACKBONES = ("mobilenetv2", "resnet50")  # models/ holds (or `make model-<backbone>` makes) one of each
BUNDLED_SIZE = "384x640"


def bundled_model(backbone: str = "mobilenetv2", share: Path | None = None) -> Path:
    """models/mtl_<backbone>_384x640.onnx of the package (it may not exist: resnet50 is not bundled)."""
    if backbone not in BUNDLED_BACKBONES:
        raise ValueError(f"backbone {backbone!r}: use one of {', '.join(BUNDLED_BACKBONES)}")
    return (share or package_share()) / "models" / f"mtl_{backbone}_{BUNDLED_SIZE}.onnx"


def real_clip() -> Path:
    """The real clip the demo runs the pipeline on (demo/real_clip/, with its licence)."""
    return package_share() / "demo" / "real_clip" / "udacity_test_video.mp4"


INTERFACE_PACKAGES = ("vision_msgs", "mtl_perception_msgs")  # resource/'s, whose .msg files the package ships


def interface_definitions(package: str) -> Path:
    """The folder of one of resource/'s interface packages' .msg files (for writing self-describing rosbags
    without ROS)."""
    source = _SOURCE / "resource" / package / "msg"
    return source if source.is_dir() else package_share() / package / "msg"


def fastdds_profile_environment(environ: Mapping[str, str], share: Path | None = None) -> dict[str, str]:
    """The variable that gives a process config/fastdds_large_frames.xml (camera-sized frames over shared
    memory), named as this ROS distribution's Fast DDS reads it ($ROS_DISTRO; unset: the newest name);
    nothing when `environ` already names a profile: the user's wins."""
    if any(environ.get(name) for name in FASTDDS_PROFILE_VARIABLES):
        return {}
    profile = (share or package_share()) / "config" / "fastdds_large_frames.xml"
    legacy = environ.get("ROS_DISTRO", "").lower() in FAST_DDS_2_DISTROS
    return {FASTDDS_PROFILE_VARIABLES[1] if legacy else FASTDDS_PROFILE_VARIABLES[0]: str(profile)}
