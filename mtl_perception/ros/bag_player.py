"""A rosbag2 player for machines without `ros2 bag`: a bag's camera topics published as recorded. The one camera
player of the package: play-bag, the demo, bench-node and the tests use it.

Images (raw or compressed) and camera_info go out as the bag holds them (their CDR bytes, no decoding), each
topic with the QoS its recording says the publisher offered, at the recorded timing (scaled by `speed`) or
at a fixed rate. rosbags reads the bag; rclpy publishes. A program that plays a short bag as a camera for a
while (bench-node) sends its frames again under new header stamps (`restamped`), and can send them as rclpy
message objects, as a camera driver written in Python does (`as_objects`).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mtl_perception.rosbag_io import (
    CAMERA_INFO,
    COMPRESSED,
    IMAGE,
    BagError,
    offered_qos,
    reader_errors,
    typestore,
)
from mtl_perception.stamps import from_ns

MESSAGE_TYPES: dict[str, type] = {IMAGE: Image, COMPRESSED: CompressedImage, CAMERA_INFO: CameraInfo}
DEFAULT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # where the bag lists none
SETTLE_S = 0.5


@dataclass(frozen=True)
class PlayResult:
    messages: dict[str, int]  # topic -> messages published
    seconds: float


def qos_of(connection: Any) -> QoSProfile:
    """The QoS the recording says the topic's publisher offered (rosbag2's offered_qos_profiles)."""
    qos = offered_qos(connection)
    if qos is None:
        return DEFAULT_QOS
    reliability = ReliabilityPolicy.BEST_EFFORT if qos.reliability == "BEST_EFFORT" else ReliabilityPolicy.RELIABLE
    durability = DurabilityPolicy.TRANSIENT_LOCAL if qos.durability == "TRANSIENT_LOCAL" else \
        DurabilityPolicy.VOLATILE
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(qos.depth, 1), reliability=reliability,
                      durability=durability)


@dataclass(frozen=True)
class RecordedFrame:
    """One recorded image and the camera_info recorded at its stamp: what a camera driver sends together."""

    stamp_ns: int  # the bag's time of the image (make-bag: its header stamp)
    # (connection id, message): camera_info first, then the image; each message its CDR bytes as recorded, or
    # the rclpy message object (BagPlayer.as_objects)
    messages: tuple[tuple[int, Any], ...]


# CDR lays out a message that starts with a std_msgs/Header (Image, CompressedImage, CameraInfo) as the 4-byte
# encapsulation header (its second byte 1 for little endian), then the stamp's int32 sec and uint32 nanosec
_STAMP_OFFSET = 4
_STAMP_END = _STAMP_OFFSET + struct.calcsize("<iI")


def restamp_cdr(raw: bytes, stamp_ns: int) -> bytes:
    """The serialised message (a camera message: header first) with its header stamp replaced."""
    order = "<" if raw[1] == 1 else ">"
    return raw[:_STAMP_OFFSET] + struct.pack(f"{order}iI", *from_ns(stamp_ns)) + raw[_STAMP_END:]


def restamped(frame: RecordedFrame, stamp_ns: int) -> RecordedFrame:
    """The frame with every message's header stamp set to stamp_ns: a short bag played for longer than it lasts
    still gives each frame a stamp of its own, as a camera does (the node's answers are told apart by it).
    Message objects are stamped in place (publishing copies them)."""
    messages = []
    for cid, message in frame.messages:
        if isinstance(message, bytes):
            message = restamp_cdr(message, stamp_ns)
        else:
            message.header.stamp.sec, message.header.stamp.nanosec = from_ns(stamp_ns)
        messages.append((cid, message))
    return RecordedFrame(stamp_ns, tuple(messages))


class BagPlayer:
    """Publishes a bag's camera topics from `node`; remap maps a recorded topic to the one to publish on.

    play() streams any bag at its recorded timing or a set rate. A program that drives a node frame by frame
    (the demo: warm-up, probes, then a timed replay) takes frames() once and hands them to publish() or
    play(frames=...), with on_publish called just before each image goes out."""

    def __init__(self, node: Node, bag: Path, rate_hz: float | None = None, speed: float = 1.0,
                 remap: Mapping[str, str] | None = None) -> None:
        from rosbags.highlevel import AnyReader

        if not bag.exists():
            raise BagError(f"bag {bag} does not exist")
        if speed <= 0:
            raise ValueError(f"--speed must be > 0, got {speed}")
        self.node, self.bag, self.rate_hz, self.speed = node, bag, rate_hz, speed
        self.remap = dict(remap or {})
        with reader_errors(bag), AnyReader([bag], default_typestore=typestore()) as reader:
            connections = [c for c in reader.connections if c.msgtype in MESSAGE_TYPES]
            if not connections:
                listed = ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections) or "none"
                raise BagError(f"{bag} has no image or camera_info topics to play; its topics: {listed}")
            self._topics = {c.id: self.remap.get(c.topic, c.topic) for c in connections}
            self._is_info = {c.id: c.msgtype == CAMERA_INFO for c in connections}
            self._types = {c.id: MESSAGE_TYPES[c.msgtype] for c in connections}
            self._publishers: dict[int, Any] = {
                c.id: node.create_publisher(MESSAGE_TYPES[c.msgtype], self._topics[c.id], qos_of(c))
                for c in connections}

    def _messages(self) -> Iterator[tuple[int, int, bytes]]:
        """(connection id, bag time, CDR bytes) of every camera message, in time order, read as played."""
        from rosbags.highlevel import AnyReader

        with reader_errors(self.bag), AnyReader([self.bag], default_typestore=typestore()) as reader:
            connections = [c for c in reader.connections if c.id in self._publishers]
            for connection, stamp, raw in reader.messages(connections=connections):
                yield connection.id, stamp, bytes(raw)

    def _grouped(self) -> Iterator[RecordedFrame]:
        """The messages as frames, every one published once: a camera_info goes with the image of its own stamp
        (make-bag records it just after), else with the next image (a recorder logs the two at slightly
        different times), and one after the last image with the last."""
        held: list[tuple[int, bytes]] = []  # camera_info waiting for its image
        pending: tuple[int, int, bytes, list[tuple[int, bytes]]] | None = None  # an image, and its camera_info
        for cid, stamp, raw in self._messages():
            if self._is_info[cid]:
                (pending[3] if pending is not None and stamp == pending[1] else held).append((cid, raw))
                continue
            if pending is not None:
                yield RecordedFrame(pending[1], (*pending[3], (pending[0], pending[2])))
            pending, held = (cid, stamp, raw, held), []
        if pending is not None:
            yield RecordedFrame(pending[1], (*pending[3], *held, (pending[0], pending[2])))

    def frames(self) -> list[RecordedFrame]:
        """Every frame of the bag, held in memory (for short drives that are sent more than once)."""
        return list(self._grouped())

    def as_objects(self, frames: Sequence[RecordedFrame]) -> list[RecordedFrame]:
        """The frames with their messages deserialised into rclpy message objects: published so, rclpy converts
        each from Python to C as it goes out, which a Python camera driver pays and a C++ one does not."""
        from rclpy.serialization import deserialize_message

        def decoded(cid: int, message: Any) -> Any:
            return deserialize_message(message, self._types[cid]) if isinstance(message, bytes) else message

        return [RecordedFrame(f.stamp_ns, tuple((cid, decoded(cid, m)) for cid, m in f.messages)) for f in frames]

    def publish(self, frame: RecordedFrame) -> None:
        """One frame now: its camera_info, then its image (the recorded CDR bytes: no decoding)."""
        for cid, message in frame.messages:
            self._publishers[cid].publish(message)

    def wait_for_subscribers(self, timeout: float) -> bool:
        """Wait up to timeout seconds for every topic to be matched; True when all are."""
        publishers = self._publishers.values()
        if self._wait_for(publishers, timeout):
            # the publisher sees the subscriber before the subscriber has taken the publisher in: a moment
            # for discovery to finish on its side too (ros2 bag play's --delay serves the same end)
            time.sleep(SETTLE_S)
            return True
        return False

    def play(self, wait_for_subscribers: float = 0.0, frames: Sequence[RecordedFrame] | None = None,
             rate_hz: float | None = None, on_publish: Callable[[RecordedFrame], None] | None = None) -> PlayResult:
        """Publish every frame (or those given) at the recorded timing scaled by `speed`, or at rate_hz (this
        call's, else the player's); with wait_for_subscribers > 0, first wait up to that many seconds for
        every topic to be matched (a replay into a node that is still starting loses nothing)."""
        rate = rate_hz or self.rate_hz
        if wait_for_subscribers > 0:
            self.wait_for_subscribers(wait_for_subscribers)
        counts: dict[str, int] = {}
        started = time.monotonic()
        first_stamp: int | None = None
        for index, frame in enumerate(self._grouped() if frames is None else frames):
            first_stamp = frame.stamp_ns if first_stamp is None else first_stamp
            due = index / rate if rate else (frame.stamp_ns - first_stamp) / 1e9 / self.speed
            delay = started + due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if on_publish is not None:
                on_publish(frame)
            self.publish(frame)
            for cid, _ in frame.messages:
                counts[self._topics[cid]] = counts.get(self._topics[cid], 0) + 1
        for publisher in self._publishers.values():  # reliable subscribers have what was sent before the end
            publisher.wait_for_all_acked(Duration(seconds=5))
        return PlayResult(counts, time.monotonic() - started)

    @staticmethod
    def _wait_for(publishers: Any, timeout: float) -> bool:
        """True when every publisher has a subscriber (within timeout)."""
        deadline = time.monotonic() + timeout
        for publisher in publishers:
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        return all(p.get_subscription_count() > 0 for p in publishers)
