"""rosbag2 files as both sides of the package read them, without ROS: the message type names, a typestore that
knows vision_msgs and mtl_perception_msgs, the QoS a recording says its publishers offered, and rosbags' errors as one-line BagErrors.
The bag tools (bags.py) and the bag player (ros/bag_player.py) both build on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from mtl_perception import message_layouts as layouts
from mtl_perception.errors import UserFacingError
from mtl_perception.package_paths import INTERFACE_PACKAGES, interface_definitions

# the message type names the bag tools use, from their one home (message_layouts)
CAMERA_INFO, IMAGE, COMPRESSED, GRID, POINTS = (layouts.CAMERA_INFO, layouts.IMAGE, layouts.COMPRESSED_IMAGE,
                                                layouts.OCCUPANCY_GRID, layouts.POINT_CLOUD)


class BagError(RuntimeError, UserFacingError):
    """A bag that cannot be used as asked; the message says what the bag holds instead."""


def typestore() -> Typestore:
    """ROS 2 Humble's message types plus vision_msgs and mtl_perception_msgs from this package's .msg
    definitions."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for package in INTERFACE_PACKAGES:
        for path in sorted(interface_definitions(package).glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    store.register(types)
    return store


@dataclass(frozen=True)
class OfferedQos:
    """What a recorded publisher offered, in rosbag2's terms (KEEP_LAST history is assumed)."""

    reliability: str  # RELIABLE | BEST_EFFORT
    durability: str  # VOLATILE | TRANSIENT_LOCAL
    depth: int


_RELIABILITY = {1: "RELIABLE", 2: "BEST_EFFORT"}
_DURABILITY = {1: "TRANSIENT_LOCAL", 2: "VOLATILE"}


def offered_qos(connection: Any) -> OfferedQos | None:
    """The first QoS profile a bag records for a connection's publisher, or None where it records none. rosbags
    gives typed profiles from 0.10 on, the YAML text before; recorders write numbers or names."""
    offered = getattr(getattr(connection, "ext", None), "offered_qos_profiles", None)
    if isinstance(offered, str):
        import yaml

        offered = yaml.safe_load(offered) if offered.strip() else []
    if not offered:
        return None
    first = offered[0]

    def name(value: Any, table: dict[int, str]) -> str:
        value = getattr(value, "name", value)  # an Enum of rosbags' typed profiles
        return table.get(value, "UNKNOWN") if isinstance(value, int) else str(value).upper()

    if isinstance(first, dict):
        return OfferedQos(name(first.get("reliability"), _RELIABILITY), name(first.get("durability"), _DURABILITY),
                          int(first.get("depth", 0)))
    return OfferedQos(name(first.reliability, _RELIABILITY), name(first.durability, _DURABILITY), int(first.depth))


@contextlib.contextmanager
def reader_errors(bag: Path) -> Iterator[None]:
    """rosbags' and the file system's errors about a bag, as BagError: one line with the fix."""
    try:
        yield
    except BagError:
        raise
    except FileNotFoundError as err:
        if (bag / "metadata.yaml").exists() or not bag.is_dir():
            raise BagError(f"bag {bag} cannot be read: {err}") from err
        raise BagError(f"bag {bag} has no metadata.yaml; if its .mcap or .db3 file is intact, "
                       f"`ros2 bag reindex {bag}` writes it again") from err
    except Exception as err:
        if type(err).__module__.startswith("rosbags"):
            raise BagError(f"bag {bag} cannot be read ({type(err).__name__}: {err}); it is corrupt or "
                           f"truncated: `ros2 bag reindex {bag}` if its storage file is intact, else re-record "
                           "it") from err
        raise
