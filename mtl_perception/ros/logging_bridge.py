"""The package's Python logging (the runtime's messages, TensorRT's own log, engine-build progress) into a
node's ROS logger, so that it reaches the console, /rosout and the launch log like the node's own lines."""

from __future__ import annotations

import logging
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
