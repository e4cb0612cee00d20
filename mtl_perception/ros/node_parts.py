"""What perception_node holds while it is configured (between on_configure and on_cleanup), per camera and in
all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtl_perception.ros.camera_input import CameraInput
from mtl_perception.ros.frame_worker import FrameWorker
from mtl_perception.ros.ground_outputs import GroundOutputs, SurroundGrid
from mtl_perception.ros.image_outputs import ImageOutputs
from mtl_perception.ros.parameters import NodeSettings
from mtl_perception.runtime.pipeline import FramePipeline


@dataclass
class Camera:
    """One camera's part of the node: its subscriptions, its outputs, and when its frames came."""

    name: str  # "": the unnamed camera
    input: CameraInput
    outputs: ImageOutputs
    ground: GroundOutputs
    last_received: float | None = None  # time.monotonic(); None until its first frame since activation
    subscribed_at: float | None = None  # time.monotonic() of the last activation


@dataclass
class Configured:
    settings: NodeSettings
    pipeline: FramePipeline  # the model and every stage of a frame (runtime/pipeline.py)
    cameras: dict[str, Camera]
    surround: SurroundGrid | None  # drivable_grid fused from the named cameras' grids; None for one unnamed
    worker: FrameWorker
    diagnostics_timer: Any
