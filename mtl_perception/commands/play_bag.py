"""mtl-perception play-bag: a bag's images and camera_info published as recorded (no `ros2 bag` needed)."""

from __future__ import annotations

import argparse
import sys

import rclpy

from mtl_perception.bags import BagError
from mtl_perception.ros.bag_player import BagPlayer


def run(args: argparse.Namespace) -> int:
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
