"""The backend interface: a batch of uint8 [B, H, W, 3] frames in, the contract's four outputs out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mtl_perception.errors import UserFacingError
from mtl_perception.runtime.contract import ModelInfo

PRECISIONS = ("fp32", "fp16", "int8")
# INT8 calibration: TensorRT's entropy calibrator 2 (its default for CNNs) or min-max, which Autoware chose
# for YOLOX after entropy calibration lost accuracy there (autoware_universe PR 3430)
CALIBRATION_ALGORITHMS = ("entropy2", "minmax")
MAX_THREADS = 64  # ONNX Runtime intra-op threads at most: the node's range and every tool's


class ModelLoadError(RuntimeError, UserFacingError):
    """A model that cannot be loaded; the message names the path and the fix."""


@dataclass(frozen=True)
class BackendOptions:
    """How a model is run. The core reads no configuration: a caller passes every setting, usually through a
    preset (runtime/presets.py's deployed_backend: perception_node's own, with the changes a tool makes)."""

    backend: str  # one of BACKENDS
    precision: str  # TensorRT only; ONNX Runtime runs the file as exported
    threads: int  # ONNX Runtime intra-op threads; 0 lets it choose
    calibration_algorithm: str  # one of CALIBRATION_ALGORITHMS (int8)
    engine_cache_dir: Path | None = None  # TensorRT engines; None: engine_cache.default_cache_dir()
    calibration_dir: Path | None = None  # images for int8 calibration
    workspace_mb: int = 1024
    # TensorRT: the largest batch the engine's optimisation profile takes (a dynamic-batch model; the node's
    # camera count). ONNX Runtime runs any batch a dynamic-batch file is given.
    max_batch: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.calibration_algorithm not in CALIBRATION_ALGORITHMS:
            raise ValueError(f"unknown calibration algorithm {self.calibration_algorithm!r}; use one of "
                             f"{', '.join(CALIBRATION_ALGORITHMS)}")


class Backend(Protocol):
    """What Perception needs from an inference runtime."""

    name: str
    info: ModelInfo

    @property
    def static_batch(self) -> int | None:
        """The one batch size it runs, or None: any from 1 to max_batch."""
        ...

    @property
    def max_batch(self) -> int | None:
        """The largest batch it runs (None: no limit)."""
        ...

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """images uint8[B, H, W, 3] -> {"boxes", "scores", "drivable", "lane"} as in the contract, each [B, ...]."""
        ...

    def close(self) -> None:
        """Release what the runtime holds (the CUDA context, GPU buffers); no call to infer after it."""
        ...
