"""ROS time stamps (sec, nanosec) as one integer of nanoseconds and back: how frames are matched to
their answers, with rclpy's messages and rosbags' alike."""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (anything with sec and nanosec) -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def from_ns(ns: int) -> tuple[int, int]:
    """nanoseconds -> (sec, nanosec)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return sec, nanosec
