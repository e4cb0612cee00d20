"""node_process.spinning: a stop that races the executor's thread ends it quietly (CI once printed rclpy's
InvalidHandle traceback after demo's Ctrl-C); a fault before the stop still surfaces."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
import rclpy.executors
from rclpy.exceptions import InvalidHandle

from mtl_perception.ros.node_process import spinning


class _RacingExecutor:
    """Stands in for SingleThreadedExecutor (a fake): spin() waits for shutdown() or for `fail_now`, then
    raises what rclpy raises when a guard condition is destroyed under it."""

    fail_now = threading.Event()

    def __init__(self, context: Any) -> None:
        self.stopped = threading.Event()

    def add_node(self, node: Any) -> None:
        pass

    def spin(self) -> None:
        while not (self.stopped.is_set() or self.fail_now.is_set()):
            self.stopped.wait(0.01)
        raise InvalidHandle("cannot use Destroyable because destruction was requested")

    def shutdown(self, timeout_sec: float) -> bool:
        self.stopped.set()
        return True


def _node(context_ok: bool) -> SimpleNamespace:
    return SimpleNamespace(context=SimpleNamespace(ok=lambda: context_ok))


@pytest.fixture()
def thread_faults(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    monkeypatch.setattr(rclpy.executors, "SingleThreadedExecutor", _RacingExecutor)
    _RacingExecutor.fail_now.clear()
    faults: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: faults.append(args.exc_value))
    return faults


def test_an_executor_destroyed_by_the_stop_ends_quietly(thread_faults: list[BaseException]) -> None:
    with spinning(_node(context_ok=True)):
        pass
    assert thread_faults == []


def test_a_context_shut_down_by_ctrl_c_ends_quietly(thread_faults: list[BaseException]) -> None:
    with spinning(_node(context_ok=False)):
        _RacingExecutor.fail_now.set()  # rclpy's signal handler shut the context down before the body ended
        threading.Event().wait(0.1)
    assert thread_faults == []


def test_a_fault_while_running_still_surfaces(thread_faults: list[BaseException]) -> None:
    with spinning(_node(context_ok=True)):
        _RacingExecutor.fail_now.set()
        threading.Event().wait(0.1)
    assert len(thread_faults) == 1 and isinstance(thread_faults[0], InvalidHandle)
