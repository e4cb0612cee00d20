"""Perception: a camera frame in, detections and two masks in camera pixels out.

Built from plain values, knowing nothing of ROS: the node, `mtl-perception infer`,
the rosbag evaluation and the benchmarks all run this same object.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtl_perception.parameter_schema import load_schema, value_range
from mtl_perception.runtime.backends import Backend, BackendOptions, load_backend
from mtl_perception.runtime.contract import ModelInfo
from mtl_perception.runtime.letterbox import Letterbox, boxes_to_frame, letterbox_image, mask_to_frame
from mtl_perception.runtime.postprocess import Detections, select_detections
from mtl_perception.runtime.presets import DetectionSettings


@dataclass(frozen=True)
class PerceptionConfig:
    """Every setting given: the core reads no configuration (tools pass a preset: runtime/presets.py's
    deployed() and deployed_backend(), or PEER_EVALUATION, through with_settings)."""

    model_path: Path
    backend: BackendOptions
    score_threshold: float
    iou_threshold: float
    max_detections: int

    @classmethod
    def with_settings(cls, model_path: Path, backend: BackendOptions, settings: DetectionSettings) -> PerceptionConfig:
        return cls(model_path, backend, settings.score_threshold, settings.iou_threshold, settings.max_detections)

    def __post_init__(self) -> None:
        # the node's ranges (config/perception_node.schema.json): every caller is held to the same ones
        schema = load_schema()
        for name in ("score_threshold", "iou_threshold", "max_detections"):
            low, high = value_range(name, schema)
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name} must lie in [{low}, {high}], got {getattr(self, name)}")


@dataclass(frozen=True)
class PerceptionResult:
    """detections in camera pixels; drivable and lane uint8[H, W] at camera size, 0 or 255;
    timings in milliseconds per stage."""

    detections: Detections
    drivable: np.ndarray
    lane: np.ndarray
    timings: dict[str, float]


@dataclass
class RawOutput:
    """The model's outputs for one frame, with how the frame sat in the input; timings fill up per stage."""

    outputs: dict[str, np.ndarray]
    letterbox: Letterbox
    timings: dict[str, float]


class Perception:
    """process() runs every stage; a caller that wants detections out before the masks (the node)
    calls infer(), detections() and masks() in turn."""

    def __init__(self, config: PerceptionConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.backend = backend or load_backend(config.model_path, config.backend)
        self._inputs: dict[int, np.ndarray] = {}  # one input buffer per batch size met, reused

    @property
    def info(self) -> ModelInfo:
        return self.backend.info

    def class_name(self, class_id: int) -> str:
        return self.info.class_names[class_id]

    def close(self) -> None:
        """Release the backend (TensorRT's CUDA context); the object is unusable after it."""
        self.backend.close()

    def infer(self, frame: np.ndarray) -> RawOutput:
        """frame uint8[H, W, 3] BGR, any size."""
        return self.infer_batch([frame])[0]

    def infer_batch(self, frames: Sequence[np.ndarray]) -> list[RawOutput]:
        """Several frames (one per camera), each uint8[H, W, 3] BGR of any size, through the model in as few
        runs as it allows: one, for a dynamic-batch model up to its largest batch; batch-1 files one frame at a
        time. Each frame's "inference" timing is its run's: it waited for the whole batch."""
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"expected a uint8 BGR frame (H, W, 3), got {frame.dtype} {frame.shape}")
        step = self.backend.static_batch or self.backend.max_batch or len(frames)
        results: list[RawOutput] = []
        for start in range(0, len(frames), step):
            results += self._run(frames[start:start + step])
        return results

    def _run(self, frames: Sequence[np.ndarray]) -> list[RawOutput]:
        images = self._input_buffer(self.backend.static_batch or len(frames))
        letterboxes, preprocess = [], []
        for row, frame in enumerate(frames):
            t0 = time.perf_counter()
            letterboxes.append(letterbox_image(frame, self.info.input_height, self.info.input_width,
                                               self.info.pad_value, out=images[row])[1])
            preprocess.append(1e3 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        outputs = self.backend.infer(images)  # a static batch's spare rows hold padding: their outputs are dropped
        inference = 1e3 * (time.perf_counter() - t0)
        return [RawOutput({name: value[row:row + 1] for name, value in outputs.items()}, letterbox,
                          {"preprocess": preprocess[row], "inference": inference})
                for row, letterbox in enumerate(letterboxes)]

    def _input_buffer(self, rows: int) -> np.ndarray:
        if rows not in self._inputs:
            self._inputs[rows] = np.full((rows, self.info.input_height, self.info.input_width, 3),
                                         self.info.pad_value, np.uint8)
        return self._inputs[rows]

    def detections(self, raw: RawOutput) -> Detections:
        t0 = time.perf_counter()
        found = select_detections(raw.outputs["boxes"][0], raw.outputs["scores"][0], self.config.score_threshold,
                                  self.config.iou_threshold, self.config.max_detections)
        detections = Detections(boxes_to_frame(found.boxes, raw.letterbox), found.scores, found.class_ids)
        raw.timings["detections"] = 1e3 * (time.perf_counter() - t0)
        return detections

    def masks(self, raw: RawOutput) -> tuple[np.ndarray, np.ndarray]:
        """(drivable, lane) at camera size, 0/255."""
        t0 = time.perf_counter()
        drivable = mask_to_frame(raw.outputs["drivable"][0], raw.letterbox)
        lane = mask_to_frame(raw.outputs["lane"][0], raw.letterbox)
        raw.timings["masks"] = 1e3 * (time.perf_counter() - t0)
        return drivable, lane

    def process(self, frame: np.ndarray) -> PerceptionResult:
        """frame uint8[H, W, 3] BGR, any size."""
        raw = self.infer(frame)
        detections = self.detections(raw)
        drivable, lane = self.masks(raw)
        raw.timings["total"] = sum(raw.timings.values())
        return PerceptionResult(detections, drivable, lane, raw.timings)
