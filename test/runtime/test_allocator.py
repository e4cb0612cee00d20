"""retain_large_buffers: frame-sized buffers freed together no longer cost page faults on reuse."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.jetson_python

# Three 3 MB buffers allocated and freed together, as a DDS sample, a C message and a Python
# array are per frame; prints the page faults of 20 such frames after a warm-up.
_FRAMES = """
import resource, sys
from mtl_perception.runtime.allocator import retain_large_buffers

if sys.argv[1] == "retain":
    assert retain_large_buffers()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    frame = [bytearray(3 << 20) for _ in range(3)]
    del frame
before = faults()
for _ in range(20):
    frame = [bytearray(3 << 20) for _ in range(3)]
    del frame
print(faults() - before)
"""


def _faults(mode: str) -> int:
    # a fresh interpreter each: the thresholds are process-wide and cannot be unset
    out = subprocess.run([sys.executable, "-c", _FRAMES, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_freed_frames_are_reused_without_page_faults() -> None:
    pages_per_round = 3 * (3 << 20) // 4096
    assert _faults("default") > 10 * pages_per_round  # glibc hands them back and faults them in again
    assert _faults("retain") < pages_per_round  # kept mapped: at most a few stray faults
