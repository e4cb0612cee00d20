"""perception_node's executable (`ros2 run mtl_perception perception_node`, `python -m
mtl_perception.ros.perception_node`). The node's imports (rclpy, OpenCV, the model runtime) take a second or
more; Ctrl-C during them ends the process with one line and exit 130, as it does once the node runs."""

from __future__ import annotations

import sys


def main(args: list[str] | None = None) -> int:
    try:
        from mtl_perception.ros.node import main as node_main
    except KeyboardInterrupt:
        print("perception_node: interrupted while starting", file=sys.stderr)
        return 130
    return node_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
