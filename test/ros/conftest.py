"""rclpy is initialised once per test session in this process; nodes under test run in their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rclpy


@pytest.fixture(scope="session", autouse=True)
def ros_context() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()
