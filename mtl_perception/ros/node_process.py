"""perception_node in a process of its own, and camera frames for it: what the demo, bench-node and the
tests use to drive a real node from another process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from sensor_msgs.msg import Image

from mtl_perception.ros.conversions import as_uint8_array
from mtl_perception.stamps import from_ns

NODE_COMMAND = (sys.executable, "-m", "mtl_perception.ros.perception_node")


def node_arguments(params: Mapping[str, Any], namespace: str = "", extra_args: tuple[str, ...] = ()) -> list[str]:
    """perception_node's command line: `-p name:=value` per parameter (booleans as ROS spells them)."""
    args = [*NODE_COMMAND, "--ros-args", *extra_args]
    for key, value in params.items():
        args += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    return args


class NodeProcess:
    """perception_node with parameters, in its own process.

    capture=True collects its output (for `output` and `wait_for`); False lets it print to this
    process's console, or nowhere with quiet=True.
    """

    def __init__(self, params: Mapping[str, Any], namespace: str = "", extra_args: tuple[str, ...] = (),
                 capture: bool = True, quiet: bool = False, env: Mapping[str, str] | None = None) -> None:
        stdout = subprocess.PIPE if capture else (subprocess.DEVNULL if quiet else None)
        self.proc = subprocess.Popen(node_arguments(params, namespace, extra_args), stdout=stdout,
                                     stderr=subprocess.STDOUT if capture else stdout, text=True,
                                     env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None
        if capture:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        """True once `text` is in the captured output; False on timeout or when the node ends without it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=2)
                return text in self.output
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT (a clean shutdown), then SIGKILL after `timeout`; the exit code (-9 when killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        if self._reader is not None:
            self._reader.join(timeout=2)
        return self.proc.returncode


def until_answered(send: Callable[[], None], answered: Callable[[], bool], wait: Callable[[float], object],
                   timeout: float = 60.0, resend_every: float = 1.0) -> bool:
    """Send a frame again every `resend_every` s until one is answered: discovery and the model's warm-up
    happen here, before anything is timed. `wait(seconds)` spins or sleeps the caller's way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send()
        resend = min(time.monotonic() + resend_every, deadline)
        while time.monotonic() < resend:
            if answered():
                return True
            wait(0.05)
    return answered()


@contextlib.contextmanager
def spinning(node: Any) -> Iterator[None]:
    """node's callbacks served by an executor in a thread of their own while the body publishes and waits:
    a caller that polls spin_once between publishes would compete with them for the cores. Ctrl-C shuts
    rclpy's context down; the executor's thread then ends quietly and the main thread reports it."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    stopping = threading.Event()

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:
            # Shutting down destroys the executor's guard conditions (and Ctrl-C the context) while this
            # thread may be between a wait and a trigger; rclpy then raises InvalidHandle or RCLError
            # here. That is the end of spinning, not a fault; anything before the stop is one.
            if not (stopping.is_set() or not node.context.ok()):
                raise

    thread = threading.Thread(target=spin, name="spinning", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        executor.shutdown(timeout_sec=2.0)
        thread.join(timeout=2.0)


def image_message(frame: np.ndarray, stamp_ns: int, frame_id: str = "camera", encoding: str = "bgr8") -> Image:
    """A sensor_msgs/Image of a uint8 frame, as a camera driver publishes it."""
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding=encoding,
                step=frame.shape[1] * (frame.shape[2] if frame.ndim == 3 else 1))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = from_ns(stamp_ns)
    msg.data = as_uint8_array(frame)
    return msg
