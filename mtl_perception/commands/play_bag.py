"""mtl-perception play-bag: a bag's images and camera_info published as recorded (no `ros2 bag` needed)."""

from __future__ import annotations

import argparse
import sys
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


def run(args: argparse.Namespace) -> int:
    import rclpy

    from mtl_perception.evaluation.bags import BagError
    from mtl_perception.ros.bag_player import BagPlayer

    remap = {}
    for rule in args.remap:
        source, sep, target = rule.partition(":=")
        if not sep or not source or not target:
            print(f"error: --remap {rule!r}: expected FROM:=TO", file=sys.stderr)
            return 2
        remap[source] = target
    rclpy.init()
    try:
        node = rclpy.create_node("bag_player")
        result = BagPlayer(node, args.bag, args.rate, args.speed, remap).play(wait_for_subscribers=args.wait)
    except (BagError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        rclpy.try_shutdown()
    listed = ", ".join(f"{topic} {count}" for topic, count in sorted(result.messages.items()))
    print(f"played {args.bag} in {result.seconds:.1f} s: {listed}")
    return 0
