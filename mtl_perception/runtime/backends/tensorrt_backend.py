"""TensorRT on the Jetson (8.5 on JetPack 5.1, 8.6 on 6.0, 10.x on 6.1+): engine built from the ONNX
file on first use, cached, run with pycuda.

This module cannot run on a machine without an NVIDIA GPU. `make test` checks it with
mypy against the TensorRT 10 type stubs; its pure parts live in engine_cache.py and
calibration.py, which are unit-tested, and the ONNX graph is checked against each version's
parser rules by trt_readiness.py. Only APIs that 8.5 already has are used (named I/O tensors,
execute_async_v3, memory pools); the differences are in _network_flags and _progress_monitor.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

from mtl_perception.atomic_io import atomic_write_bytes
from mtl_perception.runtime.backends.base import BackendOptions, ModelLoadError
from mtl_perception.runtime.calibration import calibration_batches, calibration_digest, calibration_images
from mtl_perception.runtime.contract import (
    INPUT_NAME,
    ONNX_TYPE_NAMES,
    OUTPUT_NAMES,
    ModelContractError,
    ModelInfo,
    check_io,
)
from mtl_perception.runtime.engine_cache import (
    calibration_cache_path,
    default_cache_dir,
    engine_file_name,
    file_digest,
    timing_cache_path,
)

log = logging.getLogger(__name__)


class _TrtLogger(trt.ILogger):
    """TensorRT's messages into Python logging."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        level = logging.ERROR if severity <= trt.ILogger.Severity.ERROR else (
            logging.WARNING if severity == trt.ILogger.Severity.WARNING else logging.DEBUG)
        log.log(level, "TensorRT: %s", msg)


class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """Feeds letterboxed camera images to the INT8 calibration, caching the result beside the engine."""

    def __init__(self, batches: Iterator[np.ndarray], nbytes: int, cache: Path) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self.batches = batches
        self.cache = cache
        self.device = cuda.mem_alloc(nbytes)

    def get_batch_size(self) -> int:
        return 1

    def get_batch(self, names: list[str]) -> list[int]:
        batch = next(self.batches, None)
        if batch is None:
            return None  # type: ignore[return-value]  # TensorRT's documented end-of-data signal
        cuda.memcpy_htod(self.device, np.ascontiguousarray(batch))
        return [int(self.device)]

    def read_calibration_cache(self) -> bytes:
        return self.cache.read_bytes() if self.cache.is_file() else None  # type: ignore[return-value]

    def write_calibration_cache(self, cache: memoryview) -> None:
        atomic_write_bytes(self.cache, bytes(cache))


def _shape(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(dims[i] for i in range(len(dims)))


def read_onnx_info(model_path: Path) -> ModelInfo:
    try:
        import onnx
    except ImportError as err:  # JetPack does not ship it
        raise ModelLoadError("the TensorRT backend reads the model's metadata with the onnx package, which is "
                             "not installed: pip3 install onnx") from err
    model = onnx.load(str(model_path), load_external_data=False)
    return ModelInfo.from_metadata({p.key: p.value for p in model.metadata_props}, str(model_path))


def _writable(folder: Path) -> Path:
    """The engine cache folder, created; ModelLoadError naming the folder and the fix if it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelLoadError(f"engine cache folder {folder} cannot be created ({err.strerror}); set "
                             "engine_cache_dir to a writable folder") from err
    if not os.access(folder, os.W_OK):
        raise ModelLoadError(f"engine cache folder {folder} is not writable; set engine_cache_dir to a "
                             "writable folder")
    return folder


def trt_major() -> int:
    return int(trt.__version__.split(".")[0])


def _network_flags() -> int:
    """TensorRT 8.x's ONNX parser takes only explicit-batch networks, which 8.x must be asked for;
    10 has no other kind and deprecates the flag."""
    if trt_major() >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def _progress_monitor() -> Any:
    """A builder progress monitor that logs each top-level phase, where this TensorRT has the interface
    (IProgressMonitor, from 8.6 on); None otherwise."""
    base: Any = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class BuildProgress(base):
        def __init__(self) -> None:
            base.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.started[phase_name] = time.monotonic()
            if parent_phase is None:
                log.info("engine build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            started = self.started.pop(phase_name, None)
            if started is not None and not self.started:
                log.info("engine build: %s done in %.0f s", phase_name, time.monotonic() - started)

    return BuildProgress()


class TensorRTBackend:
    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        self.options = options
        self.info = read_onnx_info(model_path)
        self.logger = _TrtLogger()
        cuda.init()
        device = cuda.Device(0)
        self.cuda_context = device.make_context()  # pushed around every call: rclpy may call from any thread
        try:
            gpu = device.name()
            cache_dir = _writable(options.engine_cache_dir or default_cache_dir())
            self.calibration_files = self._calibration_files()
            self.engine_path = cache_dir / engine_file_name(
                model_path, file_digest(model_path), options.precision, trt.__version__, gpu,
                calibration_digest(self.calibration_files) if self.calibration_files else "")
            self.engine = self._load_or_build(model_path, cache_dir, gpu)
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            self.host: dict[str, np.ndarray] = {}
            self.device_buffers: dict[str, cuda.DeviceAllocation] = {}
            for index in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(index)
                shape = _shape(self.engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
                self.host[name] = cuda.pagelocked_empty(shape, dtype)
                self.device_buffers[name] = cuda.mem_alloc(self.host[name].nbytes)
                self.context.set_tensor_address(name, int(self.device_buffers[name]))
        except BaseException:
            self.cuda_context.pop()
            self.cuda_context.detach()
            raise
        self.cuda_context.pop()
        self.name = f"tensorrt {trt.__version__} {options.precision} ({gpu})"

    def _calibration_files(self) -> list[Path]:
        if self.options.precision != "int8":
            return []
        if self.options.calibration_dir is None:
            raise ModelLoadError("precision int8 needs calibration images: set calibration_dir "
                                 "(a folder of camera frames) or use fp16")
        try:
            return calibration_images(self.options.calibration_dir)
        except FileNotFoundError as err:
            raise ModelLoadError(str(err)) from err

    def close(self) -> None:
        """Free the GPU buffers and release the CUDA context (a lifecycle cleanup, or the node's end)."""
        if getattr(self, "cuda_context", None) is None:
            return
        self.cuda_context.push()
        try:
            for buffer in self.device_buffers.values():
                buffer.free()
            self.device_buffers = {}
            del self.context, self.engine
        finally:
            self.cuda_context.pop()
            self.cuda_context.detach()
            self.cuda_context = None

    def _load_or_build(self, model_path: Path, cache_dir: Path, gpu: str) -> trt.ICudaEngine:
        runtime = trt.Runtime(self.logger)
        if self.engine_path.is_file():
            engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            reason = "it does not deserialise (corrupt, or built by another TensorRT)" if engine is None else \
                self._contract_problem(engine)
            if engine is not None and reason is None:
                log.info("loaded cached engine %s", self.engine_path)
                return engine
            log.warning("rebuilding engine %s: %s", self.engine_path, reason)
        log.warning("building a %s TensorRT %s engine for %s on %s; on a Jetson this takes minutes "
                    "(`mtl-perception build-engine` does it ahead of time)", self.options.precision, trt.__version__,
                    model_path, gpu)
        started = time.monotonic()
        serialized = self._build(model_path, cache_dir, gpu)
        atomic_write_bytes(self.engine_path, serialized)
        log.info("engine built in %.0f s and written to %s", time.monotonic() - started, self.engine_path)
        engine = runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise ModelLoadError(f"TensorRT built an engine for {model_path} but cannot load it; see the log above")
        problem = self._contract_problem(engine)
        if problem is not None:
            raise ModelContractError(f"{model_path}: {problem}")
        return engine

    def _contract_problem(self, engine: trt.ICudaEngine) -> str | None:
        inputs: dict[str, tuple[str, list[int]]] = {}
        outputs: dict[str, tuple[str, list[int]]] = {}
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            dtype = ONNX_TYPE_NAMES.get(np.dtype(trt.nptype(engine.get_tensor_dtype(name))), "other")
            entry = (dtype, list(_shape(engine.get_tensor_shape(name))))
            target = inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs
            target[name] = entry
        try:
            check_io(inputs, outputs, self.info, str(self.engine_path))
        except ModelContractError as err:
            return str(err)
        return None

    def _build(self, model_path: Path, cache_dir: Path, gpu: str) -> bytes:
        builder = trt.Builder(self.logger)
        network = builder.create_network(_network_flags())
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(model_path.read_bytes(), str(model_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelLoadError(f"TensorRT cannot parse {model_path}: {errors}; re-export it with "
                                 "`mtl-perception export`")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.options.workspace_mb << 20)
        timing_path = timing_cache_path(cache_dir, trt.__version__, gpu)
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        monitor = _progress_monitor()
        if monitor is not None:
            config.progress_monitor = monitor
        if self.options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
        if self.options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            batches = calibration_batches(self.calibration_files, self.info.input_height, self.info.input_width,
                                          self.info.pad_value)
            nbytes = self.info.input_height * self.info.input_width * 3
            config.int8_calibrator = _EntropyCalibrator(batches, nbytes, calibration_cache_path(self.engine_path))
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelLoadError(f"TensorRT could not build an engine for {model_path}; see the log above")
        atomic_write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        assert self.cuda_context is not None, "infer after close"
        self.cuda_context.push()
        try:
            np.copyto(self.host[INPUT_NAME], images)
            cuda.memcpy_htod_async(self.device_buffers[INPUT_NAME], self.host[INPUT_NAME], self.stream)
            if not self.context.execute_async_v3(self.stream.handle):
                raise RuntimeError("TensorRT execute_async_v3 failed; see the log above")
            for name in OUTPUT_NAMES:
                cuda.memcpy_dtoh_async(self.host[name], self.device_buffers[name], self.stream)
            self.stream.synchronize()
        finally:
            self.cuda_context.pop()
        # copies: the page-locked buffers are overwritten by the next frame
        return {name: self.host[name].copy() for name in OUTPUT_NAMES}
