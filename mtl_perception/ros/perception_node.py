"""perception_node's executable (`ros2 run mtl_perception perception_node`, `python -m
mtl_perception.ros.perception_node`): start, autostart, spin, and a clean end. The node's imports (rclpy,
OpenCV, the model runtime) take a second or more; Ctrl-C during them ends the process with one line and exit
130, as it does once the node runs. Every start-up failure is one line and exit 1."""

from __future__ import annotations

import re
import signal
import sys


def main(args: list[str] | None = None) -> int:
    try:
        import rclpy
        from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
        from rclpy.executors import ExternalShutdownException

        from mtl_perception.ros.node import SUCCESS, PerceptionNode
        from mtl_perception.runtime.allocator import retain_large_buffers
    except KeyboardInterrupt:
        print("perception_node: interrupted while starting", file=sys.stderr)
        return 130
    retain_large_buffers()  # before any frame is allocated; see runtime/allocator.py
    try:
        rclpy.init(args=args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - rcl's argument errors (RCLError and kin): one line, not a traceback
        print(f"perception_node: cannot start: {_first_line(err)}; check the --ros-args (-p NAME:=VALUE, "
              "--params-file FILE, -r FROM:=TO)", file=sys.stderr)
        return 1
    node: PerceptionNode | None = None
    try:
        try:
            node = PerceptionNode()
        except (InvalidParameterValueException, InvalidParameterTypeException) as err:
            # rclpy checks -p values against the descriptors while declaring: one line, not a traceback; the
            # node is gone, so `ros2 param describe` could not reach it: the package's own table says the same
            rclpy.logging.get_logger("perception_node").fatal(
                f"cannot start: {err}; each parameter's range: `ros2 launch mtl_perception jetson.launch.py "
                "--show-args`, or the README's parameter table")
            return 1
        except Exception as err:  # noqa: BLE001 - a bad namespace or node name, remap: rcl says which
            rclpy.logging.get_logger("perception_node").fatal(f"cannot start: {_first_line(err)}")
            return 1
        if node.autostart:
            if node.trigger_configure() != SUCCESS:
                node.get_logger().fatal("cannot start: configuration failed (above); fix it and restart")
                return 1
            node.trigger_activate()
        else:
            node.get_logger().info("unconfigured (autostart false): waiting for `ros2 lifecycle set`")
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C in a terminal reaches both `ros2 launch` and this process, and launch then sends its own
        # SIGINT: a second one must not interrupt the cleanup below
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.stop_input()  # the worker finishes its frame before the node goes
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _first_line(err: BaseException) -> str:
    """rcl's messages run over several lines (with the C file and line): the first says what is wrong."""
    text = str(err).strip().splitlines()
    # rcl appends ", at FILE.c:LINE" for every frame it passed: where in C, not what to fix
    return re.sub(r",? at /\S+:\d+", "", text[0]) if text else type(err).__name__


if __name__ == "__main__":
    raise SystemExit(main())
