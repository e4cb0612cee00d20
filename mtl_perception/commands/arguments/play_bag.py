"""The options of mtl-perception play-bag: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/play_bag.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.commands.common import rate_hz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="a rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("--rate", type=rate_hz, help="frames per second instead of the recorded timing")
    parser.add_argument("--speed", type=float, default=1.0, help="recorded timing scaled by this (default 1.0)")
    parser.add_argument("--remap", action="append", default=[], metavar="FROM:=TO",
                        help="publish a recorded topic on another, e.g. /camera/image_raw:=/cam_front/image")
    parser.add_argument("--wait", type=float, default=5.0,
                        help="seconds to wait for subscribers before the first frame (default 5)")
