"""The thread that answers camera frames, apart from the callbacks that receive them.

The subscription callbacks only put a message into its camera's one-item slot (runtime/realtime.py): a frame
that arrives while its camera's previous one is pending replaces it and counts as dropped, so a slow model
never queues stale frames. The worker takes the newest frame of every camera that has one and hands them to
the node's `process` together, as one batch: a slow or silent camera never holds up the others. Nothing a
batch does can end the thread: an exception is passed to `on_error` (the node counts and logs it) and the
next batch is answered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from mtl_perception.runtime.realtime import LatestPerKey

TAKE_TIMEOUT_S = 0.1  # how often an idle worker looks whether it was stopped


class Arrival(NamedTuple):
    """A frame as the worker hands it on: its camera's name, the message, and when it was received."""

    camera: str
    message: Any
    received: float


class FrameWorker:
    """Created in on_configure and dropped in on_cleanup; its thread runs from start() (on_activate) to
    stop() (on_deactivate), so frames are answered exactly while the node is active."""

    def __init__(self, process: Callable[[list[Arrival]], None], on_error: Callable[[BaseException], None],
                 name: str = "perception") -> None:
        self._process, self._on_error, self._name = process, on_error, name
        self._slots: LatestPerKey[str, Arrival] = LatestPerKey()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._slots = LatestPerKey()  # fresh slots: frames of an earlier activation are not answered late
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def put(self, message: Any, camera: str = "") -> bool:
        """Hand the worker a camera's frame, received now; True when it replaced one of that camera's still
        waiting (a dropped frame)."""
        return self._slots.put(camera, Arrival(camera, message, time.monotonic()))

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def died(self) -> bool:
        """The thread has ended without being stopped: no frame is answered any more."""
        return self._thread is not None and not self._thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch it is on (waiting up to timeout seconds for it)."""
        self._stop.set()
        self._slots.close()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        slots = self._slots
        while not self._stop.is_set():
            batch = [arrival for _, arrival in slots.take_all(timeout=TAKE_TIMEOUT_S)]
            if not batch:
                continue
            try:
                self._process(batch)
            except Exception as err:  # noqa: BLE001 - the worker outlives any batch, even a fault in its handling
                with contextlib.suppress(Exception):
                    self._on_error(err)
