"""rosbag2 files without ROS: image folders to bags, and bags through the runtime to output bags.

Uses `rosbags` (pure Python; sqlite3 and mcap). Output bags carry the message
definitions of every topic, vision_msgs included, so rosbags, Foxglove and
`ros2 bag play` read them without this package. Bags are rosbag2 format 8
(the oldest that rosbags writes; ROS 2 Iron and later read it natively).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer
from rosbags.typesys.store import Typestore

from mtl_perception import message_layouts as layouts
from mtl_perception.rosbag_io import (
    CAMERA_INFO,
    COMPRESSED,
    GRID,
    IMAGE,
    POINTS,
    BagError,
    OfferedQos,
    offered_qos,
    reader_errors,
    typestore,
)
from mtl_perception.runtime.ground import CameraIntrinsics, GridSpec
from mtl_perception.runtime.image_encoding import ImageFormatError, compressed_to_bgr, raw_to_bgr
from mtl_perception.runtime.lane_markings import RoadView
from mtl_perception.runtime.perception import PerceptionResult
from mtl_perception.runtime.pipeline import FrameResult
from mtl_perception.stamps import from_ns, to_ns
from mtl_perception.topics import camera_info_beside

# the rosbag2 primitives live in rosbag_io; these names stay importable from here for the tools
__all__ = ["CAMERA_INFO", "COMPRESSED", "GRID", "IMAGE", "POINTS", "BagError", "OfferedQos", "offered_qos",
           "reader_errors", "typestore"]

IMAGE_TOPIC = "/camera/image_raw"  # make-bag's default topic, as camera drivers name it
FRAMES_FILE = "frames.json"  # beside the bag: image name -> stamp, to join labels later
BAG_VERSION: Literal[8] = 8
START_NS = 1_700_000_000 * 1_000_000_000  # a fixed start, so the same folder gives the same bag


STORAGES = ("mcap", "sqlite3")  # rosbag2 storage formats written; mcap is the default


def staging_folder(out: Path) -> Path:
    """Where a bag is written until it is complete: a hidden sibling of out."""
    return out.with_name(f".{out.name}.partial")


def partial_path(out: Path) -> Path:
    """The bag folder inside staging_folder(out), under its final name: rosbags names the storage file after
    the folder, and a renamed folder keeps it, so the bag's file is out/NAME.mcap, not a hidden one."""
    return staging_folder(out) / out.name


def check_bag_out(out: Path) -> None:
    """Refuse an output bag path up front: one that exists, or one that ends in .bag (a ROS 1 bag to readers)."""
    if out.suffix == ".bag":
        raise ValueError(f"{out}: a rosbag2 folder must not end in .bag (readers take that for a ROS 1 bag); "
                         f"use e.g. {out.with_suffix('')}")
    if out.exists():
        raise FileExistsError(f"{out} exists; rosbag2 writes a new folder: remove it or pick another --out")


def _start_staging(out: Path) -> Path:
    staging = staging_folder(out)
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of an earlier crash
    staging.mkdir(parents=True)
    return partial_path(out)


def _publish_staged(out: Path) -> None:
    os.replace(partial_path(out), out)
    shutil.rmtree(staging_folder(out), ignore_errors=True)


@contextlib.contextmanager
def bag_in_progress(out: Path) -> Iterator[Path]:
    """Yields the partial path to write a bag into; renamed to out when the body completes, removed when it
    fails or is interrupted (Ctrl-C too): a bag with valid metadata is never a half-written one."""
    check_bag_out(out)
    partial = _start_staging(out)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(staging_folder(out), ignore_errors=True)
        raise
    _publish_staged(out)


# rosbags 0.10 gave the Writer a bag version and a storage plugin (mcap) and typed the offered QoS; 0.9.23, the
# last release for JetPack 5's Python 3.8, writes version-8 sqlite3 bags and takes the QoS as rosbag2's YAML
# text. Both read mcap and sqlite3. The two differences are handled here and nowhere else.
def _rosbags_writes_storages() -> bool:
    import inspect

    return "storage_plugin" in inspect.signature(Writer).parameters


def default_storage() -> str:
    """mcap where the installed rosbags writes it, sqlite3 before rosbags 0.10."""
    return STORAGES[0] if _rosbags_writes_storages() else "sqlite3"


def open_writer(path: Path, storage: str | None = None) -> Writer:
    """An opened rosbags Writer of a version-8 bag in `storage` (one of STORAGES; None: default_storage())."""
    storage = storage or default_storage()
    if storage not in STORAGES:
        raise ValueError(f"storage {storage!r}: use one of {', '.join(STORAGES)}")
    if _rosbags_writes_storages():
        from rosbags.rosbag2 import StoragePlugin

        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
        writer = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
    elif storage != "sqlite3":
        raise ValueError(f"--storage {storage}: rosbags {_rosbags_version()} writes sqlite3 bags only (mcap needs "
                         "rosbags 0.10 or later, and Python 3.10): pass --storage sqlite3")
    else:
        writer = Writer(path)  # type: ignore[call-arg]  # rosbags < 0.10: always version 8, sqlite3
    writer.open()
    return writer


def _rosbags_version() -> str:
    from importlib.metadata import version

    return version("rosbags")


def offered_qos_argument(profiles: list[dict[str, Any]]) -> Any:
    """rosbag2 QoS profiles (its version-8 metadata layout, as CAMERA_QOS) as Writer.add_connection takes them."""
    if _rosbags_writes_storages():
        from rosbags.rosbag2.metadata import parse_qos

        return parse_qos(profiles)  # type: ignore[arg-type]  # CAMERA_QOS is rosbags' QosDict layout
    import yaml

    return yaml.safe_dump(profiles, sort_keys=False).strip()


def _header(store: Typestore, stamp_ns: int, frame_id: str) -> Any:
    time_type, header_type = store.types["builtin_interfaces/msg/Time"], store.types["std_msgs/msg/Header"]
    sec, nanosec = from_ns(stamp_ns)
    return header_type(stamp=time_type(sec=sec, nanosec=nanosec), frame_id=frame_id)


class RosbagsMessages:
    """message_layouts' factory for rosbags: the typestore's message classes, arrays as numpy."""

    def __init__(self, store: Typestore) -> None:
        self.store = store

    def make(self, type_name: str, **fields: Any) -> Any:
        return self.store.types[type_name](**fields)

    def uint8s(self, values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.uint8).reshape(-1)

    def int8s(self, values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.int8).reshape(-1)

    def float64s(self, values: Any) -> np.ndarray:
        return np.asarray(values, np.float64)


# What the bag says its publishers offered (rosbag2's offered_qos_profiles, its version-8 layout): a camera
# driver's reliable, volatile, keep-last publisher with no deadline; ros2 bag play and perception_node's `auto`
# match it. history 1 KEEP_LAST, reliability 1 RELIABLE, durability 2 VOLATILE, liveliness 1 AUTOMATIC.
_INFINITE = {"sec": 9223372036, "nsec": 854775807}  # rosbag2's "infinite" duration (copied: YAML has no aliases)
CAMERA_QOS: dict[str, Any] = {"history": 1, "depth": 1, "reliability": 1, "durability": 2,
                              "deadline": dict(_INFINITE), "lifespan": dict(_INFINITE), "liveliness": 1,
                              "liveliness_lease_duration": dict(_INFINITE), "avoid_ros_namespace_conventions": False}


def load_camera_info_yaml(path: Path) -> dict[str, Any]:
    """A camera calibration in camera_info_manager's YAML (what camera_calibration writes): image_width,
    image_height, camera_matrix, distortion_model, distortion_coefficients, rectification_matrix and
    projection_matrix, each matrix as {rows, cols, data}. ValueError naming the file and the key."""
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"--camera-info {path}: cannot be read as YAML ({err})") from None
    if not isinstance(values, dict):
        raise ValueError(f"--camera-info {path}: expected camera_info_manager's YAML mapping")

    def matrix(key: str, size: int, required: bool = True) -> list[float]:
        entry = values.get(key)
        if entry is None and not required:
            return []
        data = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(data, list) or (size and len(data) != size):
            raise ValueError(f"--camera-info {path}: {key}.data must hold {size or 'the'} numbers")
        return [float(v) for v in data]

    try:
        width, height = int(values["image_width"]), int(values["image_height"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"--camera-info {path}: image_width and image_height are needed") from None
    return {"width": width, "height": height, "k": matrix("camera_matrix", 9),
            "distortion_model": str(values.get("distortion_model", "plumb_bob")),
            "d": matrix("distortion_coefficients", 0, required=False),
            "r": matrix("rectification_matrix", 9, required=False) or [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
            "p": matrix("projection_matrix", 12, required=False)}


def calibration_of(intrinsics: CameraIntrinsics) -> dict[str, Any]:
    """A rectified pinhole camera (no distortion) as load_camera_info_yaml gives it: what a synthetic drive's
    bag records beside its frames."""
    i = intrinsics
    return {"width": i.width, "height": i.height, "k": [i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0],
            "distortion_model": "plumb_bob", "d": [0.0] * 5, "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "p": [i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0]}


def _camera_info_message(store: Typestore, header: Any, calibration: dict[str, Any]) -> Any:
    c = calibration
    return layouts.camera_info(RosbagsMessages(store), header, c["width"], c["height"], c["k"],
                               c["distortion_model"], c["d"], c["r"], c["p"])


def write_image_bag(images: list[Path], out: Path, topic: str = IMAGE_TOPIC, storage: str | None = None,
                    compressed: bool = False, rate_hz: float = 10.0, frame_id: str = "camera",
                    progress: Callable[[Iterator[Path]], Iterator[Path]] = iter,
                    camera_info: dict[str, Any] | None = None) -> dict[str, int]:
    """A bag of the images at rate_hz, and with camera_info (load_camera_info_yaml's) a CameraInfo beside each
    frame on the topic beside `topic`; returns (and writes to out/frames.json) image name -> stamp in ns."""
    if not images:
        raise ValueError("no images to write")
    if not 1e-3 <= rate_hz <= 1e3:  # NaN fails this too
        raise ValueError(f"--rate must lie in [0.001, 1000] Hz, got {rate_hz}")
    store = typestore()
    stamps: dict[str, int] = {}
    with bag_in_progress(out) as partial:
        writer = open_writer(partial, storage)
        try:
            connection = writer.add_connection(topic + ("/compressed" if compressed else ""),
                                               COMPRESSED if compressed else IMAGE, typestore=store,
                                               offered_qos_profiles=offered_qos_argument([CAMERA_QOS]))
            info = writer.add_connection(camera_info_beside(topic), CAMERA_INFO, typestore=store,
                                         offered_qos_profiles=offered_qos_argument([CAMERA_QOS])) if camera_info else None
            for index, path in enumerate(progress(iter(images))):
                stamp = START_NS + round(index * 1e9 / rate_hz)
                header = _header(store, stamp, frame_id)
                if compressed:
                    data = path.read_bytes() if path.suffix.lower() in (".jpg", ".jpeg") else \
                        cv2.imencode(".jpg", _read(path))[1].tobytes()
                    msg = store.types[COMPRESSED](header=header, format="jpeg", data=np.frombuffer(data, np.uint8))
                else:
                    image = _read(path)
                    if camera_info and image.shape[:2] != (camera_info["height"], camera_info["width"]):
                        raise ValueError(f"{path.name} is {image.shape[1]}x{image.shape[0]}, the camera_info "
                                         f"{camera_info['width']}x{camera_info['height']}: is it this camera's?")
                    msg = layouts.image(RosbagsMessages(store), header, image, "bgr8")
                writer.write(connection, stamp, store.serialize_cdr(msg, connection.msgtype))
                if info is not None and camera_info is not None:
                    writer.write(info, stamp, store.serialize_cdr(_camera_info_message(store, header, camera_info),
                                                                  CAMERA_INFO))
                stamps[path.name] = stamp
        finally:
            writer.close()
        (partial / FRAMES_FILE).write_text(json.dumps(stamps, indent=1))
    return stamps


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"image {path} is unreadable or corrupt")
    return image


@dataclass(frozen=True)
class BagFrame:
    """One image message: image is BGR, or None with `problem` saying why it could not be decoded."""

    topic: str
    stamp_ns: int
    header: Any
    image: np.ndarray | None
    problem: str | None = None


def _image_connections(reader: AnyReader, bag: Path, topic: str | None) -> list[Any]:
    images = [c for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)]
    listed = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "none"
    if not images:
        raise BagError(f"{bag} has no sensor_msgs/Image or CompressedImage topics; its topics: {listed}")
    if topic is not None:
        images = [c for c in images if c.topic in (topic, topic + "/compressed")]
        if not images:
            raise BagError(f"topic {topic} is not an image topic of {bag}; its topics: {listed}")
    return images


def count_image_messages(bag: Path, topic: str | None = None) -> int:
    """The image messages read_image_frames would give, counted without decoding: the check a tool makes
    before it creates any output. BagError (one line, with the fix) for a bag that cannot be read."""
    if not bag.exists():
        raise BagError(f"bag {bag} does not exist")
    with reader_errors(bag), AnyReader([bag], default_typestore=typestore()) as reader:
        return sum(c.msgcount for c in _image_connections(reader, bag, topic))


def read_image_frames(bag: Path, topic: str | None = None) -> Iterator[BagFrame]:
    """Every image message of a bag (raw or compressed), decoded to BGR, in time order. A message that
    cannot be decoded comes as a BagFrame without image, with the problem: one bad frame must not end
    the replay of a whole drive."""
    if not bag.exists():
        raise BagError(f"bag {bag} does not exist")
    with reader_errors(bag), AnyReader([bag], default_typestore=typestore()) as reader:
        for connection, stamp, raw in reader.messages(connections=_image_connections(reader, bag, topic)):
            try:
                msg: Any = reader.deserialize(raw, connection.msgtype)
            except Exception as err:  # noqa: BLE001 - rosbags' CDR errors have no common type; one message is bad
                yield BagFrame(connection.topic, stamp, None, None, f"undecodable message ({err})")
                continue
            try:
                if connection.msgtype == COMPRESSED:
                    frame = compressed_to_bgr(msg.data, msg.format)
                else:
                    frame = raw_to_bgr(msg.data, msg.height, msg.width, msg.encoding, msg.step)
            except ImageFormatError as err:
                yield BagFrame(connection.topic, stamp, msg.header, None, str(err))
                continue
            yield BagFrame(connection.topic, stamp, msg.header, frame)


def read_camera_info(bag: Path) -> CameraIntrinsics | None:
    """The intrinsics of the bag's first sensor_msgs/CameraInfo message, or None if it has none."""
    with reader_errors(bag), AnyReader([bag], default_typestore=typestore()) as reader:
        connections = [c for c in reader.connections if c.msgtype == CAMERA_INFO]
        if not connections:  # (an empty selection would read every message)
            return None
        for connection, _, raw in reader.messages(connections=connections):
            msg: Any = reader.deserialize(raw, connection.msgtype)
            return CameraIntrinsics.from_camera_info(tuple(msg.k), msg.width, msg.height)
    return None


class ResultBagWriter:
    """Writes one Detection2DArray and two mono8 masks (and overlays on request) per processed frame, and
    with ground=True the node's drivable_grid, lane_marking_points, objects, objects/motion and ego lane where
    the frame's camera is known. rosbags embeds every type's definition in the bag, so any reader can decode
    them; files beside the bag's own (add_file) go into its folder with it."""

    def __init__(self, out: Path, namespace: str = "", storage: str | None = None,
                 overlays: bool = False, ground: bool = False) -> None:
        """Topics as perception_node names them in `namespace` (its launch namespace; "" the root):
        /detections, /drivable_mask, ..., so a replay of the result bag reads as the node's output."""
        check_bag_out(out)
        self.out, self.partial = out, _start_staging(out)
        self.store = typestore()
        self.messages = RosbagsMessages(self.store)
        # written under the partial name: close() renames it to out, abort() removes it
        self.writer = open_writer(self.partial, storage)
        add = self.writer.add_connection
        namespace = namespace.rstrip("/")
        self.detections = add(f"{namespace}/detections", layouts.DETECTION_ARRAY, typestore=self.store)
        self.drivable = add(f"{namespace}/drivable_mask", IMAGE, typestore=self.store)
        self.lane = add(f"{namespace}/lane_mask", IMAGE, typestore=self.store)
        self.overlay = add(f"{namespace}/overlay", IMAGE, typestore=self.store) if overlays else None
        self.grid = add(f"{namespace}/drivable_grid", GRID, typestore=self.store) if ground else None
        self.points = add(f"{namespace}/lane_marking_points", POINTS, typestore=self.store) if ground else None
        self.scene = {topic: add(f"{namespace}/{topic}", kind, typestore=self.store) for topic, kind in (
            ("objects", layouts.DETECTION_3D_ARRAY), ("objects/motion", layouts.OBJECT_MOTION_ARRAY),
            ("ego_lane/left", layouts.PATH), ("ego_lane/right", layouts.PATH), ("ego_lane", layouts.EGO_LANE))
        } if ground else {}
        self.count = 0

    @property
    def topics(self) -> list[str]:
        """The output bag's topics, in the order they were opened."""
        return [c.topic for c in (self.detections, self.drivable, self.lane, self.overlay, self.grid, self.points,
                                   *self.scene.values()) if c is not None]

    def write_ground(self, stamp_ns: int, frame_id: str, view: RoadView, spec: GridSpec) -> None:
        """The frame's grid and marking points in frame_id (the vehicle frame), at the image's stamp."""
        assert self.grid is not None and self.points is not None, "opened without ground=True"
        header = _header(self.store, stamp_ns, frame_id)
        self._write(self.grid, stamp_ns, layouts.occupancy_grid(self.messages, header, view.occupancy, spec))
        self._write(self.points, stamp_ns, layouts.marking_cloud(self.messages, header, view.markings))

    def write_scene(self, stamp_ns: int, frame_id: str, result: FrameResult, class_names: tuple[str, ...]) -> None:
        """The frame's road users on the ground with their velocities, and its ego lane, as the node publishes
        them (where the pipeline made them: the camera's geometry was known)."""
        assert self.scene, "opened without ground=True"
        header = _header(self.store, stamp_ns, frame_id)
        if result.objects is not None and result.detections is not None:
            ids = result.tracks.track_ids.tolist() if result.tracks is not None else None
            self._write(self.scene["objects"], stamp_ns, layouts.object_array(
                self.messages, header, result.objects, result.detections, class_names, ids))
            self._write(self.scene["objects/motion"], stamp_ns,
                        layouts.object_motion_array(self.messages, header, result.objects, ids))
        if result.ego_lane is not None:
            for side, boundary in (("left", result.ego_lane.left), ("right", result.ego_lane.right)):
                self._write(self.scene[f"ego_lane/{side}"], stamp_ns, layouts.lane_path(self.messages, header,
                                                                                       boundary))
            self._write(self.scene["ego_lane"], stamp_ns, layouts.ego_lane_state(self.messages, header,
                                                                                 result.ego_lane))

    def add_file(self, name: str, text: str) -> None:
        """A file in the bag's folder (tracks.json), published with the bag at close()."""
        (self.partial / name).write_text(text)

    def write(self, frame: BagFrame, result: PerceptionResult, class_names: tuple[str, ...],
              overlay: np.ndarray | None = None, track_ids: Sequence[int] | None = None) -> None:
        stamp = frame.stamp_ns
        header = _header(self.store, to_ns(frame.header.stamp), frame.header.frame_id)
        self._write(self.detections, stamp, layouts.detection_array(self.messages, header, result.detections,
                                                                     class_names, track_ids))
        for connection, mask in ((self.drivable, result.drivable), (self.lane, result.lane)):
            self._write(connection, stamp, layouts.image(self.messages, header, mask, "mono8"))
        if self.overlay is not None and overlay is not None:
            self._write(self.overlay, stamp, layouts.image(self.messages, header, overlay, "bgr8"))
        self.count += 1

    def _write(self, connection: Any, stamp_ns: int, message: Any) -> None:
        self.writer.write(connection, stamp_ns, self.store.serialize_cdr(message, connection.msgtype))

    def close(self) -> None:
        """The bag is complete: closed and renamed to its name."""
        self.writer.close()
        _publish_staged(self.out)

    def abort(self) -> None:
        """The run failed or was interrupted: nothing that looks like a result is left."""
        with contextlib.suppress(Exception):
            self.writer.close()
        shutil.rmtree(staging_folder(self.out), ignore_errors=True)
