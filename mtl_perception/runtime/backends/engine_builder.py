"""Building a TensorRT engine from an ONNX file of the model contract, apart from running one (NVIDIA's samples'
build_engine.py beside infer.py): the parser, the precision, the INT8 calibrator, the timing cache, the
optimisation profiles, progress, and the engine written atomically into its cache. `mtl-perception
build-engine` builds with it ahead of time; the runtime backend (tensorrt_backend.py) loads a cached engine
and builds through it on a miss.

Only APIs that 8.5 already has are used (memory pools, named I/O tensors); the version differences are in
_network_flags (explicit batch: a flag on 8.x, the only kind on 10) and _progress_monitor (IProgressMonitor
from 9.1 on). test/runtime/test_tensorrt_backend.py drives every path through a fake limited to each
version's API table (a fake: it proves the calls and their order, not TensorRT).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


class TrtLogger(trt.ILogger):
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


def tensor_shape(dims: trt.Dims) -> tuple[int, ...]:
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


@dataclass(frozen=True)
class EngineTarget:
    """What one engine is built from and cached as: the model, its contract metadata, the batch range of its
    optimisation profile (None: a static batch), the INT8 calibration images, the GPU, and the cache file."""

    model_path: Path
    info: ModelInfo
    profile_max: int | None
    calibration_files: tuple[Path, ...]
    gpu: GpuIdentity
    cache_dir: Path
    engine_path: Path


def engine_target(model_path: Path, options: BackendOptions, gpu: GpuIdentity) -> EngineTarget:
    """The engine options ask for on this GPU, and where it is cached (keyed by everything it depends on)."""
    info, onnx_batch = read_onnx_info(model_path)
    # a dynamic batch gets an optimisation profile for 1..max_batch; a static one runs as exported
    profile_max = options.max_batch if onnx_batch is None else None
    cache_dir = _writable(options.engine_cache_dir or default_cache_dir())
    calibration = tuple(_calibration_files(options))
    path = cache_dir / engine_file_name(
        model_path, file_digest(model_path), options.precision, trt.__version__, gpu,
        calibration_digest(list(calibration)) if calibration else "",
        options.calibration_algorithm if calibration else "", profile_max)
    return EngineTarget(model_path, info, profile_max, calibration, gpu, cache_dir, path)


def _calibration_files(options: BackendOptions) -> list[Path]:
    if options.precision != "int8":
        return []
    if options.calibration_dir is None:
        raise ModelLoadError("precision int8 needs calibration images: set calibration_dir "
                             "(a folder of camera frames) or use fp16")
    try:
        return calibration_images(options.calibration_dir)
    except FileNotFoundError as err:
        raise ModelLoadError(str(err)) from err


def engine_contract_problem(engine: trt.ICudaEngine, target: EngineTarget) -> str | None:
    """Why an engine does not serve the model contract (another model's, or an older export's), or None."""
    inputs: dict[str, tuple[str, list[int]]] = {}
    outputs: dict[str, tuple[str, list[int]]] = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        dtype = ONNX_TYPE_NAMES.get(np.dtype(trt.nptype(engine.get_tensor_dtype(name))), "other")
        entry = (dtype, list(tensor_shape(engine.get_tensor_shape(name))))
        target_io = inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs
        target_io[name] = entry
    try:
        check_io(inputs, outputs, target.info, str(target.engine_path))
    except ModelContractError as err:
        return str(err)
    return None


def load_or_build(target: EngineTarget, options: BackendOptions, logger: trt.ILogger) -> trt.ICudaEngine:
    """The cached engine where it deserialises and serves the contract; else a new one, built and cached.
    The caller holds the CUDA context current."""
    runtime = trt.Runtime(logger)
    if target.engine_path.is_file():
        engine = runtime.deserialize_cuda_engine(target.engine_path.read_bytes())
        reason = "it does not deserialise (corrupt, or built by another TensorRT)" if engine is None else \
            engine_contract_problem(engine, target)
        if engine is not None and reason is None:
            log.info("loaded cached engine %s", target.engine_path)
            return engine
        log.warning("rebuilding engine %s: %s", target.engine_path, reason)
    serialized = EngineBuilder(target, options, logger).create_engine()
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None:
        raise ModelLoadError(f"TensorRT built an engine for {target.model_path} but cannot load it; see the log above")
    problem = engine_contract_problem(engine, target)
    if problem is not None:
        raise ModelContractError(f"{target.model_path}: {problem}")
    return engine


class EngineBuilder:
    """Builds one target's engine, as NVIDIA's samples' EngineBuilder does: create_network() parses the ONNX
    file, create_engine() configures the build (precision, calibration, timing cache, profiles, progress),
    builds, and writes the engine and the timing cache."""

    def __init__(self, target: EngineTarget, options: BackendOptions, logger: trt.ILogger) -> None:
        self.target, self.options, self.logger = target, options, logger
        self._parser: Any = None  # the parser holds the network's weights: it lives as long as the build

    def create_network(self) -> tuple[trt.Builder, trt.INetworkDefinition]:
        """The builder and the parsed network; ModelLoadError with the parser's errors."""
        builder = trt.Builder(self.logger)
        network = builder.create_network(_network_flags())
        parser = trt.OnnxParser(network, self.logger)
        model_path = self.target.model_path
        if not parser.parse(model_path.read_bytes(), str(model_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelLoadError(f"TensorRT cannot parse {model_path}: {errors}; re-export it with "
                                 "`mtl-perception export`")
        self._parser = parser
        return builder, network

    def create_engine(self) -> bytes:
        """The serialized engine, written to the target's cache file (atomically; a finished build is kept
        whatever happens to the timing cache after it)."""
        target = self.target
        log.warning("building a %s TensorRT %s engine for %s on %s; on a Jetson this takes minutes "
                    "(`mtl-perception build-engine` does it ahead of time)", self.options.precision,
                    trt.__version__, target.model_path, target.gpu.name)
        started = time.monotonic()
        builder, network = self.create_network()
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.options.workspace_mb << 20)
        timing_path = timing_cache_path(target.cache_dir, trt.__version__, target.gpu)
        _timing_cache(config, timing_path)
        monitor = _progress_monitor()
        if monitor is not None:
            config.progress_monitor = monitor
        if target.profile_max is not None:
            # TensorRT builds a dynamic input only within an optimisation profile; tuned for the full batch,
            # which the node sends whenever every camera has a frame
            profile = builder.create_optimization_profile()
            profile.set_shape(INPUT_NAME, self._input_shape(1), self._input_shape(target.profile_max),
                              self._input_shape(target.profile_max))
            config.add_optimization_profile(profile)
        if self.options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8 layers fall back to fp16, not fp32
        calibrator = self._int8(builder, config) if self.options.precision == "int8" else None
        try:
            with contextlib.nullcontext() if monitor is not None else _elapsed_ticker(BUILD_PROGRESS_PERIOD_S):
                serialized = builder.build_serialized_network(network, config)
        finally:
            if calibrator is not None:
                calibrator.free()
        if calibrator is not None:
            self._check_calibration(calibrator)
        if serialized is None:
            raise ModelLoadError(f"TensorRT could not build an engine for {target.model_path}; see the log above")
        engine = bytes(serialized)
        try:
            atomic_write_bytes(target.engine_path, engine)
            log.info("engine built in %.0f s and written to %s", time.monotonic() - started, target.engine_path)
        except OSError as err:
            log.error("engine built in %.0f s but not cached at %s (%s): the next start builds it again",
                      time.monotonic() - started, target.engine_path, err)
        cache = config.get_timing_cache()
        _save_timing_cache(None if cache is None else bytes(cache.serialize()), timing_path)
        return engine

    def _int8(self, builder: trt.Builder, config: trt.IBuilderConfig) -> Any:
        info, target = self.target.info, self.target
        config.set_flag(trt.BuilderFlag.INT8)
        batches = calibration_batches(list(target.calibration_files), info.input_height, info.input_width,
                                      info.pad_value)
        calibrator = _calibrator(self.options.calibration_algorithm, batches,
                                 info.input_height * info.input_width * 3, calibration_cache_path(target.engine_path))
        config.int8_calibrator = calibrator
        if target.profile_max is not None:
            # with a dynamic input TensorRT calibrates at a calibration profile's shape: the calibrator's one
            # image at a time
            calibration_profile = builder.create_optimization_profile()
            one = self._input_shape(1)
            calibration_profile.set_shape(INPUT_NAME, one, one, one)
            config.set_calibration_profile(calibration_profile)
        return calibrator

    def _input_shape(self, batch: int) -> trt.Dims:
        info = self.target.info
        return trt.Dims([batch, info.input_height, info.input_width, 3])

    def _check_calibration(self, calibrator: Any) -> None:
        """Refuse an int8 engine calibrated on too little: a get_batch that failed, or too few images."""
        if calibrator.read_cache:
            return  # scales from the calibration cache of the same images and algorithm: no batch was asked for
        wanted = len(self.target.calibration_files)
        if calibrator.failure is not None or calibrator.delivered < MIN_CALIBRATION_SHARE * wanted:
            why = f"; it ended with {calibrator.failure}" if calibrator.failure else ""
            raise ModelLoadError(f"INT8 calibration saw {calibrator.delivered} of the {wanted} images in "
                                 f"{self.options.calibration_dir}{why}: the engine is refused; fix the images "
                                 "(they must be readable camera frames) or use fp16")
        log.info("INT8 calibration (%s) used %d of %d images", self.options.calibration_algorithm,
                 calibrator.delivered, wanted)


def build_engine(model_path: Path, options: BackendOptions) -> Path:
    """`mtl-perception build-engine`: the engine for this model and these options on GPU 0, built unless a
    valid one is cached; its path. The device's primary context is current only for the build."""
    cuda.init()
    device = cuda.Device(0)
    context = device.retain_primary_context()
    context.push()
    try:
        target = engine_target(model_path, options, gpu_identity(device))
        load_or_build(target, options, TrtLogger())
    finally:
        context.pop()
        context.detach()
    return target.engine_path


def _save_timing_cache(timing: bytes | None, path: Path) -> None:
    if timing is None:
        log.warning("TensorRT returned no timing cache after the build; %s is left as it was", path)
        return
    try:
        atomic_write_bytes(path, timing)
    except OSError as err:
        log.warning("timing cache %s not written (%s): the next build times every layer again", path, err)


def _timing_cache(config: trt.IBuilderConfig, path: Path) -> Any:
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


