"""TensorRT on the Jetson (8.5 on JetPack 5.1, 8.6 on 6.0, 10.3 on 6.1/6.2): a cached engine loaded and run
with pycuda (NVIDIA's samples' infer.py and common_runtime.py). The engine is built by engine_builder.py, on
a cache miss here or ahead of time by `mtl-perception build-engine`.

This module cannot run on a machine without an NVIDIA GPU and TensorRT. What checks it here:
- test/runtime/test_tensorrt_backend.py drives it and the builder through a recording fake of tensorrt and
  pycuda that exposes only the names of 8.5.3's, 8.6.1's or 10.3.0's API table (read from NVIDIA's pybind
  sources at those tags): which calls are made, in which order, with which arguments, for each version (a
  fake: it proves call sequences and error handling, not TensorRT);
- mypy against the TensorRT 10 stubs; engine_cache.py and calibration.py are pure and unit-tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

from mtl_perception.runtime.backends.base import BackendOptions
from mtl_perception.runtime.backends.engine_builder import (
    TrtLogger,
    engine_target,
    gpu_identity,
    load_or_build,
    tensor_shape,
)
from mtl_perception.runtime.contract import INPUT_NAME, OUTPUT_NAMES


class TensorRTBackend:
    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        self.options = options
        self.logger = TrtLogger()
        self.host: dict[str, np.ndarray] = {}
        self.device_buffers: dict[str, Any] = {}
        cuda.init()
        device = cuda.Device(0)
        # the device's primary context, as NVIDIA's samples use it (pycuda.autoprimaryctx): one per process,
        # shared with any other CUDA user, instead of a new context per configure. Pushed around every call:
        # rclpy may call from any thread
        self.cuda_context: Any = device.retain_primary_context()
        self.cuda_context.push()
        try:
            gpu = gpu_identity(device)
            target = engine_target(model_path, options, gpu)
            self.info, self.engine_path = target.info, target.engine_path
            self.engine = load_or_build(target, options, self.logger)  # built by engine_builder on a cache miss
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            self.static_batch, self.max_batch = self._batch_range()
            for index in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(index)
                # buffers for the largest batch; a smaller one uses their first rows
                shape = (self.max_batch, *tensor_shape(self.engine.get_tensor_shape(name))[1:])
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
                self.host[name] = cuda.pagelocked_empty(shape, dtype)
                self.device_buffers[name] = cuda.mem_alloc(self.host[name].nbytes)
                self.context.set_tensor_address(name, int(self.device_buffers[name]))
        except BaseException:
            self._free_buffers()
            self.cuda_context.pop()
            self.cuda_context.detach()
            self.cuda_context = None
            raise
        self.cuda_context.pop()
        self.name = f"tensorrt {trt.__version__} {options.precision} ({gpu.name})"

    def _batch_range(self) -> tuple[int | None, int]:
        """(static batch or None, largest batch): a dynamic engine's from its optimisation profile 0."""
        batch = tensor_shape(self.engine.get_tensor_shape(INPUT_NAME))[0]
        if batch > 0:
            return batch, batch
        _, _, largest = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)
        return None, int(largest[0])

    def _free_buffers(self) -> None:
        """Everything allocated in the context, as NVIDIA's free_buffers does: device buffers, the page-locked
        host arrays and the stream (with the context current)."""
        for buffer in self.device_buffers.values():
            buffer.free()
        self.device_buffers = {}
        for array in self.host.values():
            allocation = getattr(array, "base", None)
            if allocation is not None and hasattr(allocation, "free"):
                allocation.free()
        self.host = {}
        self.stream = None

    def close(self) -> None:
        """Free the GPU and pinned buffers and release the CUDA context (a lifecycle cleanup, or the node's
        end)."""
        if getattr(self, "cuda_context", None) is None:
            return
        self.cuda_context.push()
        try:
            self._free_buffers()
            for attribute in ("context", "engine"):  # TensorRT's objects go while their context is current
                if hasattr(self, attribute):
                    delattr(self, attribute)
        finally:
            self.cuda_context.pop()
            self.cuda_context.detach()
            self.cuda_context = None

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        assert self.cuda_context is not None, "infer after close"
        batch = images.shape[0] if images.ndim == 4 else 0
        frame = self.host[INPUT_NAME].shape[1:]
        fits = 1 <= batch <= self.max_batch if self.static_batch is None else batch == self.static_batch
        if not fits or images.shape[1:] != frame or images.dtype != self.host[INPUT_NAME].dtype:
            batches = f"1..{self.max_batch}" if self.static_batch is None else str(self.static_batch)
            raise ValueError(f"input {images.dtype}{list(images.shape)} does not fit the engine's "
                             f"{self.host[INPUT_NAME].dtype}[{batches}, {', '.join(map(str, frame))}]")
        self.cuda_context.push()
        try:
            if self.static_batch is None and not self.context.set_input_shape(INPUT_NAME, images.shape):
                raise RuntimeError(f"TensorRT refused input shape {list(images.shape)}; see the log above")
            # the first `batch` rows of each buffer: contiguous, so one copy each way
            host_input = self.host[INPUT_NAME][:batch]
            np.copyto(host_input, images)
            cuda.memcpy_htod_async(self.device_buffers[INPUT_NAME], host_input, self.stream)
            if not self.context.execute_async_v3(self.stream.handle):
                raise RuntimeError("TensorRT execute_async_v3 failed; see the log above")
            for name in OUTPUT_NAMES:
                cuda.memcpy_dtoh_async(self.host[name][:batch], self.device_buffers[name], self.stream)
            self.stream.synchronize()
        finally:
            self.cuda_context.pop()
        # copies: the page-locked buffers are overwritten by the next batch
        return {name: self.host[name][:batch].copy() for name in OUTPUT_NAMES}
