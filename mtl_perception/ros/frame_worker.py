"""The thread that answers camera frames, apart from the callbacks that receive them.

The subscription callback only puts the message into a one-item slot (runtime/realtime.py): a frame that
arrives while one is pending replaces it and counts as dropped, so a slow model never queues stale frames.
The worker takes the newest frame and hands it to the node's `process`. Nothing a frame does can end the
thread: an exception is passed to `on_error` (the node counts and logs it) and the next frame is answered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from mtl_perception.runtime.realtime import LatestSlot

TAKE_TIMEOUT_S = 0.1  # how often an idle worker looks whether it was stopped


class FrameWorker:
    """Created in on_configure and dropped in on_cleanup; its thread runs from start() (on_activate) to
    stop() (on_deactivate), so frames are answered exactly while the node is active."""

    def __init__(self, process: Callable[[Any, float], None], on_error: Callable[[BaseException], None],
                 name: str = "perception") -> None:
        self._process, self._on_error, self._name = process, on_error, name
        self._slot: LatestSlot[tuple[Any, float]] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._slot = LatestSlot()  # a fresh slot: frames of an earlier activation are not answered late
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def put(self, message: Any) -> bool:
        """Hand the worker a frame, received now; True when it replaced one still waiting (a dropped frame)."""
        return self._slot.put((message, time.monotonic()))

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def died(self) -> bool:
        """The thread has ended without being stopped: no frame is answered any more."""
        return self._thread is not None and not self._thread.is_alive() and not self._stop.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the frame it is on (waiting up to timeout seconds for it)."""
        self._stop.set()
        self._slot.close()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        slot = self._slot
        while not self._stop.is_set():
            item = slot.take(timeout=TAKE_TIMEOUT_S)
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as err:  # noqa: BLE001 - the worker outlives any frame, even a fault in its handling
                with contextlib.suppress(Exception):
                    self._on_error(err)
