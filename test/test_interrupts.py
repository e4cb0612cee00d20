"""A Ctrl-C that lands in a finaliser (CI saw one in a weakref callback during `train`) still stops the run.

The finaliser here raises KeyboardInterrupt itself, which is what Python does with a SIGINT that arrives while
one runs: it reports it as unraisable ("Exception ignored in ...") and goes on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import contextlib, sys, time
    from mtl_perception.interrupts import redelivered_interrupts

    class Finalised:
        def __del__(self):
            raise KeyboardInterrupt

    guard = redelivered_interrupts() if sys.argv[1] == "guarded" else contextlib.nullcontext()
    try:
        with guard:
            Finalised()  # its finaliser runs here and swallows the interrupt
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # a long run that should stop
                sum(range(1000))
        print("ran to the end")
    except KeyboardInterrupt:
        print("stopped")
""")


def _run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60)


def test_swallowed_interrupt_is_raised_again_without_a_traceback() -> None:
    result = _run("guarded")
    assert result.stdout.strip() == "stopped", result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr


def test_python_alone_swallows_it() -> None:
    # what the guard is for: unguarded, Python prints the traceback and the loop runs to its end
    result = _run("bare")
    assert result.stdout.strip() == "ran to the end"
    assert "Exception ignored" in result.stderr and "KeyboardInterrupt" in result.stderr


def test_other_unraisable_exceptions_are_reported_as_before() -> None:
    script = textwrap.dedent("""
        from mtl_perception.interrupts import redelivered_interrupts
        class Broken:
            def __del__(self):
                raise ValueError("finaliser failed")
        with redelivered_interrupts():
            Broken()
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "done"
    assert "ValueError: finaliser failed" in result.stderr


def test_a_ctrl_c_during_an_import_is_held_until_it_ends() -> None:
    """cli._load imports a command under deferred_interrupts: a SIGINT inside the block raises nothing there
    (a C extension's initialisation would turn it into std::terminate) and KeyboardInterrupt right after it."""
    import os
    import signal

    from mtl_perception.interrupts import deferred_interrupts

    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler has run by now
            reached_end = True
    assert reached_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with deferred_interrupts():  # nothing held: nothing raised
        pass


TWICE = textwrap.dedent("""
    import sys, time
    from mtl_perception.interrupts import redelivered_interrupts

    class Finalised:
        def __del__(self):
            raise KeyboardInterrupt

    stops = 0
    try:
        with redelivered_interrupts():
            Finalised()
            Finalised()  # one Ctrl-C that two finalisers report
            time.sleep(1)
    except KeyboardInterrupt:
        stops += 1
    if sys.argv[1] == "leave":  # the block left before its re-delivery was due
        with redelivered_interrupts():
            Finalised()
    try:
        time.sleep(1)  # an answered Ctrl-C, or one from a block already left, must not come again
    except KeyboardInterrupt:
        stops += 1
    print("stops", stops)
""")


@pytest.mark.parametrize("mode", ["twice", "leave"])
def test_one_ctrl_c_is_raised_again_once_and_never_after_the_block(mode: str) -> None:
    """CI saw `eval-bag` print its "interrupted:" line and then die by SIGINT (exit -2): a re-delivery that woke
    after the command had answered the Ctrl-C."""
    result = subprocess.run([sys.executable, "-c", TWICE, mode], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "stops 1"
