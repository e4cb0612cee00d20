"""TensorRT on the Jetson (8.5 on JetPack 5.1, 8.6 on 6.0, 10.3 on 6.1/6.2): engine built from the ONNX
file on first use, cached, run with pycuda.

This module cannot run on a machine without an NVIDIA GPU and TensorRT. What checks it here:
- test/runtime/test_tensorrt_api.py holds every TensorRT name it uses to the API tables of 8.5.3, 8.6.1 and
  10.3.0 (read from NVIDIA's pybind sources at those tags), version branches included;
- test/runtime/test_tensorrt_backend.py drives its control flow through a recording fake of tensorrt and
  pycuda, limited to those tables (a fake: it proves call sequences and error handling, not TensorRT);
- mypy against the TensorRT 10 stubs; engine_cache.py and calibration.py are pure and unit-tested.
Only APIs that 8.5 already has are used (named I/O tensors, execute_async_v3, memory pools); the version
differences are in _network_flags and _progress_monitor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
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
    static_batch,
)
from mtl_perception.runtime.engine_cache import (
    GpuIdentity,
    calibration_cache_path,
    default_cache_dir,
    engine_file_name,
    file_digest,
    timing_cache_path,
)

log = logging.getLogger(__name__)
BUILD_PROGRESS_PERIOD_S = 30.0  # where TensorRT reports no progress (before 9.1), the elapsed time this often
MIN_CALIBRATION_SHARE = 0.5  # refuse an int8 build that saw fewer of the calibration images than this


class _TrtLogger(trt.ILogger):
    """TensorRT's messages into Python logging (and from there into the node's ROS log)."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        level = logging.ERROR if severity <= trt.ILogger.Severity.ERROR else (
            logging.WARNING if severity == trt.ILogger.Severity.WARNING else logging.DEBUG)
        log.log(level, "TensorRT: %s", msg)


def _calibrator(algorithm: str, batches: Iterator[np.ndarray], nbytes: int, cache: Path) -> Any:
    """An INT8 calibrator of the chosen algorithm that feeds letterboxed camera images, counts what it
    delivered and keeps the error that ended it: TensorRT's bindings print a get_batch exception to stderr and
    take it as the end of the data, so without this a broken calibration would pass unnoticed.

    IBuilderConfig.int8_calibrator is deprecated from TensorRT 10.1 on (explicit quantization replaces it); it
    is still there in 10.3, the newest JetPack's, and in 8.5 and 8.6."""
    base: Any = trt.IInt8MinMaxCalibrator if algorithm == "minmax" else trt.IInt8EntropyCalibrator2

    class Calibrator(base):
        def __init__(self) -> None:
            base.__init__(self)
            self.batches, self.cache = batches, cache
            self.delivered = 0
            self.failure: str | None = None
            self.read_cache = False
            self.device: Any = cuda.mem_alloc(nbytes)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                batch = next(self.batches, None)
                if batch is None:
                    return None  # TensorRT's documented end-of-data signal
                cuda.memcpy_htod(self.device, np.ascontiguousarray(batch))
            except Exception as err:  # noqa: BLE001 - it would end in TensorRT's stderr print, and the build go on
                self.failure = f"{type(err).__name__}: {err}"
                log.error("INT8 calibration batch %d failed: %s", self.delivered + 1, self.failure)
                return None
            self.delivered += 1
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            if self.cache.is_file():
                self.read_cache = True
                return self.cache.read_bytes()
            return None

        def write_calibration_cache(self, cache: memoryview) -> None:
            try:
                atomic_write_bytes(self.cache, bytes(cache))
            except OSError as err:  # the scales are in the engine already: only the next calibration repeats
                log.warning("INT8 calibration cache %s not written (%s)", self.cache, err)

        def free(self) -> None:
            if self.device is not None:
                self.device.free()
                self.device = None

    return Calibrator()


def _shape(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(dims[i] for i in range(len(dims)))


def read_onnx_info(model_path: Path) -> tuple[ModelInfo, int | None]:
    """The model's metadata, and its input's batch: a number, or None where it is dynamic."""
    try:
        import onnx
    except ImportError as err:  # JetPack does not ship it
        raise ModelLoadError("the TensorRT backend reads the model's metadata with the onnx package, which is "
                             "not installed: pip3 install onnx") from err
    model = onnx.load(str(model_path), load_external_data=False)
    info = ModelInfo.from_metadata({p.key: p.value for p in model.metadata_props}, str(model_path))
    batch = [static_batch([d.dim_value if d.HasField("dim_value") else d.dim_param
                           for d in tensor.type.tensor_type.shape.dim])
             for tensor in model.graph.input if tensor.name == INPUT_NAME]
    return info, batch[0] if batch else 1


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
    (IProgressMonitor, from 9.1 on: so 10.3 on JetPack 6.1, not 8.5 or 8.6); None otherwise."""
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


@contextlib.contextmanager
def _elapsed_ticker(period_s: float) -> Iterator[None]:
    """Logs the build's elapsed time every period_s while the body runs: TensorRT before 9.1 says nothing for
    the minutes an engine build takes on a Jetson."""
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(period_s):
            log.info("engine build: %.0f s so far (TensorRT %s reports no progress; a Jetson build takes minutes)",
                     time.monotonic() - started, trt.__version__)

    thread = threading.Thread(target=tick, name="engine-build-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1.0)


def gpu_identity(device: Any) -> GpuIdentity:
    """The engine-cache identity of a pycuda Device."""
    major, minor = device.compute_capability()
    return GpuIdentity(device.name(), (int(major), int(minor)),
                       int(device.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)),
                       int(device.total_memory()))


class TensorRTBackend:
    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        self.options = options
        self.info, onnx_batch = read_onnx_info(model_path)
        # a dynamic batch gets an optimisation profile for 1..max_batch; a static one runs as exported
        self.profile_max = options.max_batch if onnx_batch is None else None
        self.logger = _TrtLogger()
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
            cache_dir = _writable(options.engine_cache_dir or default_cache_dir())
            self.calibration_files = self._calibration_files()
            self.engine_path = cache_dir / engine_file_name(
                model_path, file_digest(model_path), options.precision, trt.__version__, gpu,
                calibration_digest(self.calibration_files) if self.calibration_files else "",
                options.calibration_algorithm if self.calibration_files else "", self.profile_max)
            self.engine = self._load_or_build(model_path, cache_dir, gpu)
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            self.static_batch, self.max_batch = self._batch_range()
            for index in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(index)
                # buffers for the largest batch; a smaller one uses their first rows
                shape = (self.max_batch, *_shape(self.engine.get_tensor_shape(name))[1:])
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
        batch = _shape(self.engine.get_tensor_shape(INPUT_NAME))[0]
        if batch > 0:
            return batch, batch
        _, _, largest = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)
        return None, int(largest[0])

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

    def _load_or_build(self, model_path: Path, cache_dir: Path, gpu: GpuIdentity) -> trt.ICudaEngine:
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
                    model_path, gpu.name)
        started = time.monotonic()
        serialized, timing = self._build(model_path, cache_dir, gpu)
        # the engine first: whatever happens to the caches after it, a finished build is kept
        try:
            atomic_write_bytes(self.engine_path, serialized)
            log.info("engine built in %.0f s and written to %s", time.monotonic() - started, self.engine_path)
        except OSError as err:
            log.error("engine built in %.0f s but not cached at %s (%s): the next start builds it again",
                      time.monotonic() - started, self.engine_path, err)
        self._save_timing_cache(timing, timing_cache_path(cache_dir, trt.__version__, gpu))
        engine = runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise ModelLoadError(f"TensorRT built an engine for {model_path} but cannot load it; see the log above")
        problem = self._contract_problem(engine)
        if problem is not None:
            raise ModelContractError(f"{model_path}: {problem}")
        return engine

    @staticmethod
    def _save_timing_cache(timing: bytes | None, path: Path) -> None:
        if timing is None:
            log.warning("TensorRT returned no timing cache after the build; %s is left as it was", path)
            return
        try:
            atomic_write_bytes(path, timing)
        except OSError as err:
            log.warning("timing cache %s not written (%s): the next build times every layer again", path, err)

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

    def _timing_cache(self, config: trt.IBuilderConfig, path: Path) -> Any:
        """The timing cache attached to config: the saved one where it fits this device, else a new one.

        NVIDIA's own loaders pass ignore_mismatch=True (Polygraphy); with False, TensorRT refuses a cache from
        a device with other properties, set_timing_cache returns False, and get_timing_cache gives None after
        the build, so a finished build would meet no cache to save."""
        saved = b""
        if path.is_file():
            try:
                saved = path.read_bytes()
            except OSError as err:
                log.warning("timing cache %s unreadable (%s): building without it", path, err)
        timing = config.create_timing_cache(saved)
        if timing is None or not config.set_timing_cache(timing, ignore_mismatch=True):
            log.warning("timing cache %s does not fit this device or TensorRT: building with a new one", path)
            timing = config.create_timing_cache(b"")
            if timing is None or not config.set_timing_cache(timing, ignore_mismatch=True):
                log.warning("TensorRT refused a new timing cache too: building without one")
                return None
        return timing

    def _build(self, model_path: Path, cache_dir: Path, gpu: GpuIdentity) -> tuple[bytes, bytes | None]:
        """The serialized engine, and the timing cache to save (None where TensorRT has none to give)."""
        builder = trt.Builder(self.logger)
        network = builder.create_network(_network_flags())
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(model_path.read_bytes(), str(model_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelLoadError(f"TensorRT cannot parse {model_path}: {errors}; re-export it with "
                                 "`mtl-perception export`")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.options.workspace_mb << 20)
        self._timing_cache(config, timing_cache_path(cache_dir, trt.__version__, gpu))
        monitor = _progress_monitor()
        if monitor is not None:
            config.progress_monitor = monitor
        if self.profile_max is not None:
            # TensorRT builds a dynamic input only within an optimisation profile; tuned for the full batch,
            # which the node sends whenever every camera has a frame
            profile = builder.create_optimization_profile()
            profile.set_shape(INPUT_NAME, self._input_shape(1), self._input_shape(self.profile_max),
                              self._input_shape(self.profile_max))
            config.add_optimization_profile(profile)
        if self.options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
        calibrator = None
        if self.options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            batches = calibration_batches(self.calibration_files, self.info.input_height, self.info.input_width,
                                          self.info.pad_value)
            nbytes = self.info.input_height * self.info.input_width * 3
            calibrator = _calibrator(self.options.calibration_algorithm, batches, nbytes,
                                     calibration_cache_path(self.engine_path))
            config.int8_calibrator = calibrator
            if self.profile_max is not None:
                # with a dynamic input TensorRT calibrates at a calibration profile's shape: the calibrator's
                # one image at a time
                calibration_profile = builder.create_optimization_profile()
                one = self._input_shape(1)
                calibration_profile.set_shape(INPUT_NAME, one, one, one)
                config.set_calibration_profile(calibration_profile)
        try:
            with contextlib.nullcontext() if monitor is not None else _elapsed_ticker(BUILD_PROGRESS_PERIOD_S):
                serialized = builder.build_serialized_network(network, config)
        finally:
            if calibrator is not None:
                calibrator.free()
        if calibrator is not None:
            self._check_calibration(calibrator)
        if serialized is None:
            raise ModelLoadError(f"TensorRT could not build an engine for {model_path}; see the log above")
        cache = config.get_timing_cache()
        return bytes(serialized), None if cache is None else bytes(cache.serialize())

    def _input_shape(self, batch: int) -> trt.Dims:
        return trt.Dims([batch, self.info.input_height, self.info.input_width, 3])

    def _check_calibration(self, calibrator: Any) -> None:
        """Refuse an int8 engine calibrated on too little: a get_batch that failed, or too few images."""
        if calibrator.read_cache:
            return  # scales from the calibration cache of the same images and algorithm: no batch was asked for
        wanted = len(self.calibration_files)
        if calibrator.failure is not None or calibrator.delivered < MIN_CALIBRATION_SHARE * wanted:
            why = f"; it ended with {calibrator.failure}" if calibrator.failure else ""
            raise ModelLoadError(f"INT8 calibration saw {calibrator.delivered} of the {wanted} images in "
                                 f"{self.options.calibration_dir}{why}: the engine is refused; fix the images "
                                 "(they must be readable camera frames) or use fp16")
        log.info("INT8 calibration (%s) used %d of %d images", self.options.calibration_algorithm,
                 calibrator.delivered, wanted)

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
