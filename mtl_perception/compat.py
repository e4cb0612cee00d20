"""What JetPack 5's Python 3.8 lacks, in one place: the code a Jetson runs next to the node (eval-bag,
make-bag, bench-node, trt-check, build-engine, check-data, eval, infer) keeps to 3.8, and `make test` runs
it there. Training needs torch, which needs 3.10, and uses the builtins directly."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from itertools import zip_longest
from typing import Any

_MISSING = object()


def zip_strict(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """zip(..., strict=True) (3.10+): ValueError when the iterables differ in length, rather than a silent
    truncation."""
    if sys.version_info >= (3, 10):
        yield from zip(*iterables, strict=True)
        return
    for values in zip_longest(*iterables, fillvalue=_MISSING):
        if any(v is _MISSING for v in values):
            raise ValueError("zip_strict: the iterables differ in length")
        yield values
