"""SurroundGrid, with a recording stand-in for the lifecycle node (a fake: it records what would be
published): one fused grid per batch that brought a camera's grid, none for a batch that brought none, only
the cameras' grids that arrived within SURROUND_WINDOW_S of the newest, and cameras whose clocks are off
fused all the same and named."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from mtl_perception.ros.ground_outputs import SURROUND_WINDOW_S, SurroundGrid
from mtl_perception.runtime.ground import GRID_FREE, GRID_OCCUPIED, GRID_UNKNOWN, GridSpec
from mtl_perception.stamps import NS_PER_S, to_ns

SPEC = GridSpec(resolution=1.0, x_min=0.0, x_max=3.0, y_half=0.5, max_range=10.0)  # one row of three cells


class _RecordingNode:
    """Stands in for the LifecycleNode (a fake): its publishers record the messages."""

    def __init__(self) -> None:
        self.published: list[Any] = []

    def create_lifecycle_publisher(self, kind: type, topic: str, qos: object) -> SimpleNamespace:
        return SimpleNamespace(publish=self.published.append, topic=topic)


def _row(*values: int) -> np.ndarray:
    return np.array([values], np.int8)


def test_one_fused_grid_per_update_and_none_without() -> None:
    node = _RecordingNode()
    surround = SurroundGrid(node, None, "base_link", SPEC)  # type: ignore[arg-type]
    surround.publish()
    assert node.published == []  # no camera has a grid yet
    surround.update("front", 5 * NS_PER_S, _row(GRID_FREE, GRID_FREE, GRID_UNKNOWN), arrived=100.0)
    surround.update("left", 5 * NS_PER_S + 1, _row(GRID_UNKNOWN, GRID_OCCUPIED, GRID_FREE), arrived=100.001)
    surround.publish()
    surround.publish()  # a batch that brought no grid (its cameras have no geometry yet): nothing new
    assert len(node.published) == 1
    fused = node.published[0]
    assert list(fused.data) == [GRID_FREE, GRID_OCCUPIED, GRID_FREE]
    assert to_ns(fused.header.stamp) == 5 * NS_PER_S + 1 and fused.header.frame_id == "base_link"


def test_a_camera_older_than_the_window_drops_out() -> None:
    node = _RecordingNode()
    surround = SurroundGrid(node, None, "base_link", SPEC)  # type: ignore[arg-type]
    surround.update("rear", 5 * NS_PER_S, _row(GRID_OCCUPIED, GRID_OCCUPIED, GRID_OCCUPIED), arrived=100.0)
    surround.update("front", 5 * NS_PER_S + int(2 * SURROUND_WINDOW_S * NS_PER_S), _row(GRID_FREE, GRID_UNKNOWN,
                                                                                          GRID_UNKNOWN),
                    arrived=100.0 + 2 * SURROUND_WINDOW_S)
    surround.publish()
    assert list(node.published[-1].data) == [GRID_FREE, GRID_UNKNOWN, GRID_UNKNOWN]  # rear's grid is too old


def test_a_camera_whose_clock_is_off_is_fused_and_named() -> None:
    """Issue 34 item 5: one camera stamped 100 s ahead made the fused grid its own (and froze it when it
    stopped); a camera stamping 0 was never fused. Both are fused by arrival, and their skew is reported."""
    node = _RecordingNode()
    surround = SurroundGrid(node, None, "base_link", SPEC)  # type: ignore[arg-type]
    for tick in range(3):
        now, stamp = 100.0 + 0.1 * tick, (5 + tick) * NS_PER_S // 10 * 10
        surround.update("front", stamp, _row(GRID_FREE, GRID_UNKNOWN, GRID_UNKNOWN), arrived=now)
        surround.update("ahead", stamp + 100 * NS_PER_S, _row(GRID_UNKNOWN, GRID_OCCUPIED, GRID_UNKNOWN), arrived=now)
        surround.update("zero", 0, _row(GRID_UNKNOWN, GRID_UNKNOWN, GRID_FREE), arrived=now + 0.001)
        surround.publish()
        assert list(node.published[-1].data) == [GRID_FREE, GRID_OCCUPIED, GRID_FREE]
    skews = surround.stamp_skews()
    assert abs(skews["front"]) < 0.01 and skews["ahead"] > 99 and skews["zero"] < -4
    # the skewed camera stops: the others' grids go on without it
    surround.update("front", 8 * NS_PER_S, _row(GRID_FREE, GRID_FREE, GRID_FREE), arrived=101.0)
    surround.publish()
    assert list(node.published[-1].data) == [GRID_FREE, GRID_FREE, GRID_FREE]
    assert to_ns(node.published[-1].header.stamp) == 8 * NS_PER_S
