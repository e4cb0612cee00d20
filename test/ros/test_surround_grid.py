"""SurroundGrid, with a recording stand-in for the lifecycle node (a fake: it records what would be
published): one fused grid per batch that brought a camera's grid, none for a batch that brought none, and
only the cameras' grids within SURROUND_WINDOW_S of the newest."""

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
    surround.update("front", 5 * NS_PER_S, _row(GRID_FREE, GRID_FREE, GRID_UNKNOWN))
    surround.update("left", 5 * NS_PER_S + 1, _row(GRID_UNKNOWN, GRID_OCCUPIED, GRID_FREE))
    surround.publish()
    surround.publish()  # a batch that brought no grid (its cameras have no geometry yet): nothing new
    assert len(node.published) == 1
    fused = node.published[0]
    assert list(fused.data) == [GRID_FREE, GRID_OCCUPIED, GRID_FREE]
    assert to_ns(fused.header.stamp) == 5 * NS_PER_S + 1 and fused.header.frame_id == "base_link"


def test_a_camera_older_than_the_window_drops_out() -> None:
    node = _RecordingNode()
    surround = SurroundGrid(node, None, "base_link", SPEC)  # type: ignore[arg-type]
    surround.update("rear", 5 * NS_PER_S, _row(GRID_OCCUPIED, GRID_OCCUPIED, GRID_OCCUPIED))
    surround.update("front", 5 * NS_PER_S + int(2 * SURROUND_WINDOW_S * NS_PER_S), _row(GRID_FREE, GRID_UNKNOWN,
                                                                                          GRID_UNKNOWN))
    surround.publish()
    assert list(node.published[-1].data) == [GRID_FREE, GRID_UNKNOWN, GRID_UNKNOWN]  # rear's grid is too old
