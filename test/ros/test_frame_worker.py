"""FrameWorker: the latest frame wins, no frame's fault ends the thread, and a stopped worker is not a dead one."""

from __future__ import annotations

import threading
import time

import pytest

from mtl_perception.ros.frame_worker import Arrival, FrameWorker


def _wait(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_frame_that_raises_is_reported_and_the_next_is_answered() -> None:
    answered: list[int] = []
    errors: list[BaseException] = []

    def process(batch: list[Arrival]) -> None:
        (arrival,) = batch
        frame = arrival.message
        if frame % 2:
            raise ValueError(f"frame {frame} is bad")
        answered.append(frame)

    worker = FrameWorker(process, errors.append)
    worker.start()
    try:
        for frame in range(6):
            worker.put(frame)
            assert _wait(lambda f=frame: f in answered or any(str(f) in str(e) for e in errors))
        assert answered == [0, 2, 4] and [str(e) for e in errors] == ["frame 1 is bad", "frame 3 is bad",
                                                                      "frame 5 is bad"]
        assert not worker.died and worker.running
    finally:
        worker.stop()
    assert not worker.running and not worker.died  # stopped, not dead


def test_latest_frame_wins_while_the_worker_is_busy() -> None:
    release = threading.Event()
    seen: list[str] = []

    def process(batch: list[Arrival]) -> None:
        seen.extend(arrival.message for arrival in batch)
        release.wait(5)

    worker = FrameWorker(process, lambda err: None)
    worker.start()
    try:
        worker.put("first")
        assert _wait(lambda: seen == ["first"])
        assert worker.put("stale") is False  # waits in the slot
        assert worker.put("newest") is True  # replaced the stale one: a dropped frame
        release.set()
        assert _wait(lambda: seen == ["first", "newest"])
    finally:
        release.set()
        worker.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_thread_that_ends_unstopped_is_reported_dead() -> None:
    """What no handler catches (a BaseException such as SystemExit raised in a frame) ends the thread: died
    says so, which /diagnostics reports as ERROR, where a stopped worker is not dead."""
    def process(batch: list[Arrival]) -> None:
        raise SystemExit("a fault beyond Exception")

    worker = FrameWorker(process, lambda err: None)
    worker.start()
    try:
        assert not worker.died
        worker.put("fatal")
        assert _wait(lambda: worker.died)
    finally:
        worker.stop()
    assert not worker.died


def test_the_newest_frame_of_every_camera_goes_as_one_batch() -> None:
    release = threading.Event()
    batches: list[list[tuple[str, str]]] = []

    def process(batch: list[Arrival]) -> None:
        batches.append([(a.camera, a.message) for a in batch])
        release.wait(5)

    worker = FrameWorker(process, lambda err: None)
    worker.start()
    try:
        worker.put("f0", "front")
        assert _wait(lambda: batches == [[("front", "f0")]])  # a camera alone does not wait for the others
        # while the model is busy: left twice (the first dropped), right once, front once
        assert worker.put("l1", "left") is False and worker.put("l2", "left") is True
        worker.put("r1", "right")
        worker.put("f1", "front")
        release.set()
        # cameras in the order they first appeared; each camera's newest frame only
        assert _wait(lambda: len(batches) == 2)
        assert batches[1] == [("front", "f1"), ("left", "l2"), ("right", "r1")]
    finally:
        release.set()
        worker.stop()
