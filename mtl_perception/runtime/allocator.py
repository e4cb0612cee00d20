"""Keep the C allocator from returning camera-sized buffers to the kernel after every frame.

glibc serves large allocations with fresh mmap()s and trims the heap whenever more than
twice its (adaptive, few-MB) threshold lies free at the top. A 1280x720 bgr8 frame passes
through several buffers of 2.7 MB on its way into Python (DDS sample, C message, Python
array), all freed together, so every frame's pages were faulted in anew: measured on this
project's machine, 4 of the 7 ms between publish and callback. Fixing both thresholds keeps
freed pages mapped for the next frame, as real-time ROS 2 guides advise; resident memory
stays at the peak the node really used. Linux with glibc only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's ceiling on 64-bit; a 4K bgr8 frame (24.9 MB) fits under it
TRIM_THRESHOLD_BYTES = 256 << 20


def retain_large_buffers() -> bool:
    """True when the thresholds were set; False where the C library has no glibc mallopt()."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                TRIM_THRESHOLD_BYTES))
