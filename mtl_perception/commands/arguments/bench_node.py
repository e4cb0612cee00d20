"""The options of mtl-perception bench-node: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/bench_node.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import (
    at_least_one,
    camera_size,
    comma_separated,
    positive_seconds,
    rate_hz,
    thread_count,
)
from mtl_perception.defaults import node_default
from mtl_perception.runtime.realtime import STATS_WINDOW_S

SETTLE_S = 1.5  # after the last frame: time for its answer, then the next diagnostics


def max_seconds() -> float:
    """The longest play whose frames, and only those, fit the node's statistics window when its next
    /diagnostics message is read."""
    return STATS_WINDOW_S - SETTLE_S - float(node_default("diagnostics_period"))


def play_seconds(text: str) -> float:
    value = positive_seconds(text)
    if value > max_seconds():
        raise argparse.ArgumentTypeError(f"{value:g}: at most {max_seconds():g} s, so that the node's "
                                         f"{STATS_WINDOW_S:g} s statistics window holds every played frame")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="ONNX model (default: a random-weights 384x640 export)")
    parser.add_argument("--threads", type=thread_count, default=2, help="ONNX Runtime threads in the node")
    parser.add_argument("--rates", type=comma_separated(rate_hz), default="2,10,30", help="camera rates in Hz; the slowest gives the latency")
    parser.add_argument("--seconds", type=play_seconds, default=7.0,
                        help=f"how long each rate plays; at most {max_seconds():g} s, so the node's "
                             f"{STATS_WINDOW_S:g} s statistics window holds the played frames and no others")
    parser.add_argument("--repeats", type=int, default=3,
                        help="plays of the slowest rate per frame size; the overhead is their median")
    parser.add_argument("--frames", type=comma_separated(camera_size), default="720x1280,480x640", help="camera frame sizes HxW, comma-separated")
    parser.add_argument("--publish-objects", action="store_true",
                        help="publish the bag's frames as rclpy message objects, as a Python camera driver does: its Python -> C "
                             "conversion of the pixels then counts too (about 0.6 ms at 1280x720 here)")
    parser.add_argument("--dds-defaults", action="store_true",
                        help="leave Fast DDS at its defaults instead of the shipped config/fastdds_large_frames.xml")
    parser.add_argument("--cameras", type=comma_separated(at_least_one), metavar="N,...",
                        help="instead: throughput with N cameras (e.g. 1,2,3), one node serving all N (the "
                             "cameras parameter: one batch per run) against N nodes of one camera each, every "
                             "camera at the first of --rates, frames of the first --frames size")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
