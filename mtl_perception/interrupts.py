"""Ctrl-C that Python swallowed, delivered again.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. If that is a
finaliser or a weak-reference callback (the garbage collector runs them at any moment, torch's and tqdm's
included), Python cannot raise it further: it prints "Exception ignored in ..." with a traceback and carries on,
and a long run (a training) goes on to the end as if Ctrl-C had never been pressed.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# How long the re-delivery waits: long enough for the main thread to leave the hook and the finaliser
# (microseconds), short against a person's wait for Ctrl-C to act.
_REDELIVERY_DELAY_S = 0.05


class _Redelivery:
    """One pending re-delivery at a time, and none once the block has ended: a Ctrl-C reported as unraisable
    twice (finalisers in a chain) is one Ctrl-C, and one that wakes after the command has answered it would
    kill the exiting interpreter by SIGINT (exit -2, after its "interrupted:" line)."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._pending = False
        self.open = True

    def request(self) -> None:
        with self._lock:
            if self._pending or not self.open:
                return
            self._pending = True
        # from another thread, started without waiting on it (threading.Thread.start waits, and the
        # interrupt would land in that wait, inside the hook, and be swallowed again)
        _thread.start_new_thread(self._deliver, ())

    def _deliver(self) -> None:
        time.sleep(_REDELIVERY_DELAY_S)
        with self._lock:
            self._pending = False
            if self.open:
                _thread.interrupt_main()

    def close(self) -> None:
        with self._lock:
            self.open = False


@contextmanager
def redelivered_interrupts() -> Iterator[None]:
    """Within the block, a KeyboardInterrupt that Python could only report as unraisable is raised again in the
    main thread (without the traceback), once; every other unraisable exception is reported as before."""
    previous = sys.unraisablehook
    redelivery = _Redelivery()

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            redelivery.request()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        redelivery.close()
        sys.unraisablehook = previous


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within the block a Ctrl-C is held, and raised as KeyboardInterrupt when the block ends. For imports: a C
    extension's initialisation (onnx's, through nanobind) turns a KeyboardInterrupt raised inside it into
    std::terminate, a crash with a C++ message, where a held one stops the run cleanly a moment later. Only in
    the main thread, and only where Ctrl-C raises KeyboardInterrupt at all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and previous is signal.default_int_handler:
        raise KeyboardInterrupt
