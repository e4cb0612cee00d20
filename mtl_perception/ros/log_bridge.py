"""The package's Python logging (the runtime's messages, TensorRT's own log, engine-build progress) into the
node's ROS logger, so that it reaches the console, /rosout and the launch log like the node's own."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

PACKAGE_LOGGER = "mtl_perception"


class RosLogHandler(logging.Handler):
    def __init__(self, ros_logger: Any, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"[{record.name.rsplit('.', 1)[-1]}] {record.getMessage()}"
            if record.levelno >= logging.ERROR:
                self.ros_logger.error(message)
            elif record.levelno >= logging.WARNING:
                self.ros_logger.warning(message)
            elif record.levelno >= logging.INFO:
                self.ros_logger.info(message)
            else:
                self.ros_logger.debug(message)
        except Exception:  # noqa: BLE001 - logging must never raise into the code that logs
            self.handleError(record)


def bridge_package_logging(ros_logger: Any) -> RosLogHandler:
    """Route the mtl_perception package's records at INFO and above to ros_logger; returns the handler
    (remove it with unbridge_package_logging)."""
    handler = RosLogHandler(ros_logger)
    package = logging.getLogger(PACKAGE_LOGGER)
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False  # the ROS logger prints it; a root handler would print it twice
    return handler


def unbridge_package_logging(handler: RosLogHandler) -> None:
    package = logging.getLogger(PACKAGE_LOGGER)
    package.removeHandler(handler)
    package.propagate = True


LOG_THROTTLE_S = 5.0  # per cause of a bad or failed frame


class OncePerCause:
    """Logs a message at most once per LOG_THROTTLE_S per cause (the message with its numbers taken out):
    rclpy's throttle is per call site, so one cause would silence every other. Nothing is logged once
    `alive()` says the node's context is down (rosout is gone, and the cause with it)."""

    def __init__(self, ros_logger: Any, alive: Callable[[], bool]) -> None:
        self.ros_logger, self.alive = ros_logger, alive
        self._last: dict[str, float] = {}

    def __call__(self, message: str, warning: bool) -> None:
        if not self.alive():
            return
        cause = re.sub(r"\d+", "#", message)
        now = time.monotonic()
        if now - self._last.get(cause, -LOG_THROTTLE_S) < LOG_THROTTLE_S:
            return
        self._last[cause] = now
        # two call sites: rclpy fixes a logging call site's severity on its first call and raises
        # "Logger severity cannot be changed between calls" if one line logs at two severities
        if warning:
            self.ros_logger.warning(message)
        else:
            self.ros_logger.error(message)
