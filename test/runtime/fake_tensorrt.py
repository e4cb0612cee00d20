"""A FAKE of the `tensorrt` and `pycuda.driver` modules, for driving the TensorRT backend where neither exists.

It is a fake. It proves the backend's call sequence and its error handling: which objects it asks for, in
which order, with the CUDA context current, what it does when a cache, a file or a calibration fails, and
that it frees what it allocated. It proves nothing about TensorRT itself: nothing is parsed, built or run
on a GPU, and its outputs are constants.

Its `tensorrt` exposes, for one TensorRT version, only the names that version's API table lists
(tensorrt_api/VERSION.json, read from NVIDIA's sources): a name outside the table raises AttributeError, as
the real module would; a name in the table that the fake does not implement raises NotImplementedError, so
a new call in the backend is noticed here rather than on a Jetson. Its `pycuda.driver` implements the pycuda
names the backend uses and no others (make_context among the missing: the backend must use the primary
context).
"""

from __future__ import annotations

import enum
import itertools
import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TABLES = Path(__file__).resolve().parent / "tensorrt_api"
ENGINE_MAGIC = b"FAKE-ENGINE\n"


@dataclass
class Call:
    """One call the code under test made on the fake: "Class.method" (or "Class.attribute=" for a set, or
    "Class" for a construction), with its arguments."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class World:
    """What the fake's TensorRT and GPU do, set by a test, and what the backend did to them."""

    io: dict[str, tuple[str, list[int], str]]  # tensor -> (numpy dtype, shape, "INPUT"/"OUTPUT") of built engines
    calls: list[Call] = field(default_factory=list)  # every call on the fake's TensorRT objects, in order
    context_stack: list[Any] = field(default_factory=list)
    contexts_made: int = 0
    contexts_detached: int = 0
    live_device: dict[int, Any] = field(default_factory=dict)
    live_host: set[int] = field(default_factory=set)
    refuse_timing_cache: bool = False  # set_timing_cache answers False whatever it is given
    timing_cache_from_other_device: bytes = b"TIMING other-device"
    no_timing_cache_after_build: bool = False  # get_timing_cache gives None, as after a refused set
    build_fails: bool = False
    build_seconds: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)  # what execute_async_v3 writes, by tensor
    # execute_async_v3 writes each batch row of "drivable" as that row's first input byte: rows stay in order
    echo_rows: bool = False
    build_error: str = ""  # why the last build failed, as TensorRT's log would say

    def record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append(Call(name, args, kwargs))

    def names(self, prefix: str = "") -> list[str]:
        """The calls' names in order (those starting with prefix)."""
        return [call.name for call in self.calls if call.name.startswith(prefix)]

    def args(self, name: str) -> list[tuple]:
        """Every call of that name's arguments (keyword arguments after the positional ones, by name)."""
        return [(*call.args, *call.kwargs.items()) for call in self.calls if call.name == name]

    def require_context(self, what: str) -> None:
        if not self.context_stack:
            raise RuntimeError(f"fake pycuda: {what} without a current CUDA context")


def engine_bytes(io: dict[str, tuple[str, list[int], str]], profiles: dict[str, list[list[int]]] | None = None) -> bytes:
    """A fake serialized engine: its tensors, and the [min, opt, max] shapes of profile 0 per dynamic input."""
    return ENGINE_MAGIC + json.dumps({"io": io, "profiles": profiles or {}}).encode()


def _dynamic_inputs(io: dict[str, tuple[str, list[int], str]]) -> list[str]:
    return [name for name, (_, shape, mode) in io.items() if mode == "INPUT" and -1 in shape]


class _Restricted:
    """Attribute access limited to the version's table for this class (public names only); every public method
    call and attribute set is recorded in the world (World.calls), with its arguments."""

    _api: str = ""
    _allowed: frozenset[str] = frozenset()
    _world: World

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            cls = type(self)
            allowed = object.__getattribute__(self, "_allowed")
            if name not in allowed:
                raise AttributeError(f"fake TensorRT: {cls._api} has no attribute {name!r} in this version")
            try:
                value = object.__getattribute__(self, name)
            except AttributeError:
                raise NotImplementedError(f"fake TensorRT: {cls._api}.{name} exists in this version but is "
                                          "not faked: extend test/runtime/fake_tensorrt.py") from None
            if callable(value) and not isinstance(value, type):
                world = object.__getattribute__(self, "_world")

                def recorded(*args: Any, **kwargs: Any) -> Any:
                    world.record(f"{cls._api}.{name}", *args, **kwargs)
                    return value(*args, **kwargs)
                return recorded
            return value
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            if name not in type(self)._allowed:
                raise AttributeError(f"fake TensorRT: {type(self)._api} has no attribute {name!r} in this version")
            type(self)._world.record(f"{type(self)._api}.{name}=", value)
        object.__setattr__(self, name, value)


def make_tensorrt(version: str, world: World) -> types.ModuleType:
    """The fake `tensorrt` module of one version (8.5.3, 8.6.1 or 10.3.0)."""
    table = json.loads((TABLES / f"{version}.json").read_text())

    def allowed(cls: str) -> frozenset[str]:
        entry = table["classes"][cls]
        names = set(entry["members"])
        for base in entry["bases"]:
            names |= allowed(base)
        return frozenset(names)

    def restricted(api: str, impl: type) -> type:
        def construct(self: Any, *args: Any, **kwargs: Any) -> None:
            world.record(api, *args, **kwargs)
            impl.__init__(self, *args, **kwargs)

        return type(api, (impl, _Restricted), {"_api": api, "_allowed": allowed(api), "_world": world,
                                                "__init__": construct})

    def enum_of(api: str) -> type:
        return enum.IntEnum(api.rsplit(".", 1)[-1], {name: i for i, name in enumerate(table["classes"][api]["members"])
                                                     if name.isupper() or name[:1].isupper()})

    module = types.ModuleType("tensorrt")
    module.__doc__ = f"FAKE tensorrt {version} (test/runtime/fake_tensorrt.py): names of that version only"
    DataType = enum_of("DataType")
    TensorIOMode = enum_of("TensorIOMode")
    dtypes = {"uint8": "UINT8", "float32": "FLOAT", "int32": "INT32", "float16": "HALF", "int8": "INT8", "bool": "BOOL"}

    class ITimingCache:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def serialize(self) -> bytes:
            return b"TIMING " + version.encode()

    class IBuilderConfig:
        def __init__(self) -> None:
            self._timing: Any = None
            self._flags: set[str] = set()
            self._calibrator: Any = None
            self._monitor: Any = None
            self._pool: dict[Any, int] = {}
            self._profiles: list[Any] = []
            self._calibration_profile: Any = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self._pool[pool] = size

        def create_timing_cache(self, data: bytes) -> Any:
            return restricted("ITimingCache", ITimingCache)(bytes(data))

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            if world.refuse_timing_cache:
                return False
            if cache._data == world.timing_cache_from_other_device and not ignore_mismatch:
                return False  # TensorRT's strict check: another device's properties
            self._timing = cache
            return True

        def get_timing_cache(self) -> Any:
            return None if world.no_timing_cache_after_build else self._timing

        def set_flag(self, flag: Any) -> None:
            self._flags.add(flag.name)

        def add_optimization_profile(self, profile: Any) -> int:
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def set_calibration_profile(self, profile: Any) -> bool:
            self._calibration_profile = profile
            return True

        @property
        def int8_calibrator(self) -> Any:
            return self._calibrator

        @int8_calibrator.setter
        def int8_calibrator(self, calibrator: Any) -> None:
            self._calibrator = calibrator

        @property
        def progress_monitor(self) -> Any:
            return self._monitor

        @progress_monitor.setter
        def progress_monitor(self, monitor: Any) -> None:
            self._monitor = monitor

    class INetworkDefinition:
        pass

    class IOptimizationProfile:
        def __init__(self) -> None:
            self._shapes: dict[str, list[list[int]]] = {}

        def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
            shapes = [list(min), list(opt), list(max)]
            _, declared, _ = world.io[input]
            for shape in shapes:  # TensorRT's checks: the declared rank, fixed dimensions as declared
                if len(shape) != len(declared) or any(d != -1 and d != v for d, v in zip(declared, shape)):
                    raise ValueError(f"fake TensorRT: profile shape {shape} does not fit {input} {declared}")
            if not all(a <= b <= c for a, b, c in zip(*shapes)):
                raise ValueError(f"fake TensorRT: profile for {input} is not min <= opt <= max: {shapes}")
            self._shapes[input] = shapes

    class Builder:
        def __init__(self, logger: Any) -> None:
            pass

        def create_network(self, flags: int) -> Any:
            return restricted("INetworkDefinition", INetworkDefinition)()

        def create_builder_config(self) -> Any:
            return restricted("IBuilderConfig", IBuilderConfig)()

        def create_optimization_profile(self) -> Any:
            return restricted("IOptimizationProfile", IOptimizationProfile)()

        def build_serialized_network(self, network: Any, config: Any) -> Any:
            world.require_context("build_serialized_network")
            if config._monitor is not None:
                config._monitor.phase_start("Building engine", None, 1)
            dynamic = _dynamic_inputs(world.io)
            profiles = config._profiles[0]._shapes if config._profiles else {}
            missing = [name for name in dynamic if name not in profiles]
            if missing:  # TensorRT: "Network has dynamic or shape inputs, but no optimization profile"
                world.build_error = f"no optimization profile for dynamic input(s) {missing}"
                return None
            if dynamic and config._calibrator is not None and config._calibration_profile is None:
                world.build_error = "int8 calibration of a dynamic network without a calibration profile"
                return None
            if config._calibrator is not None:
                _calibrate(config._calibrator)
            if world.build_seconds:
                import time

                time.sleep(world.build_seconds)
            if config._monitor is not None:
                config._monitor.phase_finish("Building engine")
            return None if world.build_fails else bytearray(engine_bytes(world.io, profiles))

    def _calibrate(calibrator: Any) -> None:
        """As TensorRT does: the cache if there is one, else batches until None; an exception in get_batch
        ends the data (pyInt8.cpp prints it to stderr and returns no batch)."""
        cached = calibrator.read_calibration_cache()
        if cached:
            return
        while True:
            try:
                batch = calibrator.get_batch(["images"])
            except Exception:  # noqa: BLE001 - what the bindings do with it
                batch = None
            if batch is None:
                break
        calibrator.write_calibration_cache(memoryview(b"CALIBRATION"))

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            self.num_errors = 0

        def parse(self, data: bytes, path: str) -> bool:
            return data[:4] != b"BAD!"

        def get_error(self, index: int) -> str:
            return "fake parse error"

    class IExecutionContext:
        def __init__(self, engine: Any) -> None:
            self._engine = engine
            self._addresses: dict[str, int] = {}
            self._input_shapes: dict[str, list[int]] = {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            low, _, high = self._engine._profiles[name]
            if len(shape) != len(low) or not all(a <= v <= b for a, v, b in zip(low, shape, high)):
                return False  # TensorRT logs the error and answers False
            self._input_shapes[name] = list(shape)
            return True

        def set_tensor_address(self, name: str, address: int) -> bool:
            world.require_context("set_tensor_address")
            self._addresses[name] = address
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            world.require_context("execute_async_v3")
            unset = [name for name in _dynamic_inputs(self._engine._io) if name not in self._input_shapes]
            if unset:
                return False  # TensorRT: input dimensions not specified
            for name, (_, _, mode) in self._engine._io.items():
                if mode == "OUTPUT":
                    buffer = world.live_device[self._addresses[name]]
                    buffer[...] = world.outputs.get(name, 0)
            if world.echo_rows:
                self._echo_rows()
            return True

        def _echo_rows(self) -> None:
            _, shape, _ = self._engine._io["images"]
            batch = self._input_shapes.get("images", shape)[0]
            row_in = int(np.prod(shape[1:]))
            row_out = int(np.prod(self._engine._io["drivable"][1][1:]))
            images = world.live_device[self._addresses["images"]]
            drivable = world.live_device[self._addresses["drivable"]]
            for row in range(batch):
                drivable[row * row_out:(row + 1) * row_out] = images[row * row_in]

    class ICudaEngine:
        def __init__(self, serialized: dict[str, Any]) -> None:
            self._io = serialized["io"]
            self._profiles = serialized["profiles"]
            self._names = list(self._io)

        @property
        def num_io_tensors(self) -> int:
            return len(self._names)

        def get_tensor_name(self, index: int) -> str:
            return self._names[index]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(self._io[name][1])

        def get_tensor_dtype(self, name: str) -> Any:
            return DataType[dtypes[self._io[name][0]]]

        def get_tensor_mode(self, name: str) -> Any:
            return TensorIOMode[self._io[name][2]]

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
            if profile_index != 0 or name not in self._profiles:
                raise RuntimeError(f"fake TensorRT: no profile {profile_index} for {name}")
            return [tuple(shape) for shape in self._profiles[name]]

        def create_execution_context(self) -> Any:
            return restricted("IExecutionContext", IExecutionContext)(self)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Any:
            data = bytes(data)
            if not data.startswith(ENGINE_MAGIC):
                return None  # what TensorRT gives for a corrupt file (and logs an error)
            return restricted("ICudaEngine", ICudaEngine)(json.loads(data[len(ENGINE_MAGIC):]))

    class ILogger:
        Severity = enum_of("ILogger.Severity")

        def __init__(self) -> None:
            pass

    class _Calibrator:
        def __init__(self) -> None:
            pass

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    def Dims(shape: list[int]) -> tuple[int, ...]:
        return tuple(int(d) for d in shape)

    def nptype(trt_type: Any) -> Any:
        return {v: np.dtype(k).type for k, v in dtypes.items()}[trt_type.name]

    implemented: dict[str, Any] = {
        "__version__": version, "nptype": nptype, "Dims": Dims, "DataType": DataType, "TensorIOMode": TensorIOMode,
        "Builder": restricted("Builder", Builder), "Runtime": restricted("Runtime", Runtime),
        "OnnxParser": restricted("OnnxParser", OnnxParser), "ILogger": ILogger,
        "IInt8EntropyCalibrator2": _Calibrator, "IInt8MinMaxCalibrator": _Calibrator,
        "IProgressMonitor": IProgressMonitor,
        "NetworkDefinitionCreationFlag": enum_of("NetworkDefinitionCreationFlag"),
        "MemoryPoolType": enum_of("MemoryPoolType"), "BuilderFlag": enum_of("BuilderFlag"),
    }
    for name, value in implemented.items():
        if name in table["module"] or name in table["classes"]:  # this version has it: the fake has it
            setattr(module, name, value)
    return module


class _DeviceAllocation:
    def __init__(self, world: World, nbytes: int) -> None:
        self.world, self.ptr = world, next(_pointers)
        world.live_device[self.ptr] = np.zeros(nbytes, np.uint8)

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        self.world.require_context("DeviceAllocation.free")
        del self.world.live_device[self.ptr]


class _HostAllocation(bytearray):
    world: World

    def free(self) -> None:
        self.world.live_host.discard(id(self))


_pointers = itertools.count(0x1000, 0x1000)


def make_pycuda(world: World) -> types.ModuleType:
    """The fake `pycuda.driver`: the names the backend uses, with a CUDA context stack that must be right."""
    driver = types.ModuleType("pycuda.driver")
    driver.__doc__ = "FAKE pycuda.driver (test/runtime/fake_tensorrt.py)"

    class Context:
        def push(self) -> None:
            world.context_stack.append(self)

        def pop(self) -> None:
            if not world.context_stack or world.context_stack[-1] is not self:
                raise RuntimeError("fake pycuda: pop of a context that is not current")
            world.context_stack.pop()

        def detach(self) -> None:
            world.contexts_detached += 1

    class Device:
        def __init__(self, ordinal: int) -> None:
            self.ordinal = ordinal

        def name(self) -> str:
            return "Orin (fake)"

        def compute_capability(self) -> tuple[int, int]:
            return (8, 7)

        def get_attribute(self, attribute: Any) -> int:
            assert attribute == "MULTIPROCESSOR_COUNT"
            return 16

        def total_memory(self) -> int:
            return 15_389 << 20

        def retain_primary_context(self) -> Any:
            world.contexts_made += 1
            return Context()

    class Stream:
        handle = 0xBEEF

        def synchronize(self) -> None:
            world.require_context("Stream.synchronize")

    def mem_alloc(nbytes: int) -> Any:
        world.require_context("mem_alloc")
        return _DeviceAllocation(world, nbytes)

    def pagelocked_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        world.require_context("pagelocked_empty")
        allocation = _HostAllocation(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        allocation.world = world
        world.live_host.add(id(allocation))
        return np.ndarray(shape, dtype, buffer=allocation)

    def memcpy_htod(device: Any, host: np.ndarray) -> None:
        world.require_context("memcpy_htod")
        world.live_device[int(device)][: host.nbytes] = np.frombuffer(host.tobytes(), np.uint8)

    def memcpy_htod_async(device: Any, host: np.ndarray, stream: Any) -> None:
        memcpy_htod(device, host)

    def memcpy_dtoh_async(host: np.ndarray, device: Any, stream: Any) -> None:
        world.require_context("memcpy_dtoh_async")
        host.reshape(-1).view(np.uint8)[:] = world.live_device[int(device)][: host.nbytes]

    def init() -> None:
        world.record("cuda.init")

    for name, value in {"init": init, "Device": Device, "Context": Context, "Stream": Stream,
                        "mem_alloc": mem_alloc, "pagelocked_empty": pagelocked_empty, "memcpy_htod": memcpy_htod,
                        "memcpy_htod_async": memcpy_htod_async, "memcpy_dtoh_async": memcpy_dtoh_async,
                        "device_attribute": types.SimpleNamespace(MULTIPROCESSOR_COUNT="MULTIPROCESSOR_COUNT")
                        }.items():
        setattr(driver, name, value)
    return driver
