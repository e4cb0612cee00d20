"""The TensorRT backend's control flow, driven through a FAKE tensorrt and pycuda (test/runtime/fake_tensorrt.py).

This is a fake: it proves the call sequence and the error handling (caches, contracts, calibration, the CUDA
context, what is freed), not TensorRT itself. The fake of each version exposes only the names of that
version's API table, read from NVIDIA's sources, so a call outside JetPack's TensorRT fails here.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_tensorrt import Call, World, engine_bytes, make_pycuda, make_tensorrt

from mtl_perception.runtime.backends.base import BackendOptions, ModelLoadError
from mtl_perception.runtime.contract import ModelContractError
from mtl_perception.runtime.presets import deployed_backend

pytest.importorskip("onnx", reason="the backend reads the model's metadata with onnx")

VERSIONS = ("8.5.3", "8.6.1", "10.3.0")
MODULES = ("mtl_perception.runtime.backends.tensorrt_backend", "mtl_perception.runtime.backends.engine_builder")


def contract_io(model: Path) -> dict[str, tuple[str, list[int], str]]:
    """The bundled model's tensors as a built engine would report them (read with ONNX Runtime)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    types = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}
    def shape(tensor: Any) -> list[int]:  # TensorRT reports a dynamic dimension as -1
        return [d if isinstance(d, int) else -1 for d in tensor.shape]

    io = {t.name: (types[t.type], shape(t), "INPUT") for t in session.get_inputs()}
    io.update({t.name: (types[t.type], shape(t), "OUTPUT") for t in session.get_outputs()})
    return io


def profile(largest: int) -> dict[str, list[list[int]]]:
    """The optimisation profile the backend builds for the bundled (dynamic-batch) model."""
    return {"images": [[1, 384, 640, 3], [largest, 384, 640, 3], [largest, 384, 640, 3]]}


class Fake:
    """One version's fake installed as `tensorrt` and `pycuda.driver`, and the backend and the engine builder
    imported against it."""

    def __init__(self, version: str, world: World, backend: Any, builder: Any) -> None:
        self.version, self.world, self.module, self.builder = version, world, backend, builder

    def options(self, tmp_path: Path, **changes: Any) -> BackendOptions:
        return deployed_backend(backend="tensorrt", engine_cache_dir=tmp_path / "engines", **changes)

    def start(self, model: Path, options: BackendOptions) -> Any:
        return self.module.TensorRTBackend(model, options)


@pytest.fixture(params=VERSIONS)
def fake(request: pytest.FixtureRequest, bundled_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    world = World(io=contract_io(bundled_model), outputs={"drivable": 1, "lane": 0})
    pycuda = type(sys)("pycuda")
    driver = make_pycuda(world)
    pycuda.driver = driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt(request.param, world))
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    for name in MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    backend, builder = (importlib.import_module(name) for name in MODULES)
    yield Fake(request.param, world, backend, builder)
    for name in MODULES:
        sys.modules.pop(name, None)  # no fake-bound module left


def test_first_start_builds_caches_runs_and_frees_everything(fake: Fake, bundled_model: Path,
                                                               tmp_path: Path) -> None:
    world = fake.world
    backend = fake.start(bundled_model, fake.options(tmp_path))
    assert backend.engine_path.is_file() and "sm87-16sm-15389mib" in backend.engine_path.name
    assert list((tmp_path / "engines").glob("timing-*.cache"))
    assert world.context_stack == [] and world.contexts_made == 1  # the primary context, pushed and popped
    frame = np.zeros((1, 384, 640, 3), np.uint8)
    outputs = backend.infer(frame)
    assert set(outputs) == {"boxes", "scores", "drivable", "lane"}
    assert (outputs["drivable"] == 1).all() and (outputs["lane"] == 0).all()  # what the fake engine wrote
    assert world.context_stack == []
    backend.close()
    assert world.live_device == {} and world.live_host == set()  # device buffers and pinned host buffers
    assert world.contexts_detached == 1 and world.context_stack == []
    backend.close()  # twice is harmless (lifecycle cleanup, then shutdown)


def test_a_cached_engine_is_loaded_without_a_build(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    fake.start(bundled_model, fake.options(tmp_path)).close()
    fake.world.calls.clear()
    backend = fake.start(bundled_model, fake.options(tmp_path))
    assert "Builder" not in fake.world.names() and "Runtime.deserialize_cuda_engine" in fake.world.names()
    backend.close()


def test_a_corrupt_engine_file_is_rebuilt(fake: Fake, bundled_model: Path, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    first = fake.start(bundled_model, fake.options(tmp_path))
    first.close()
    first.engine_path.write_bytes(b"half an engine")
    with caplog.at_level(logging.WARNING):
        again = fake.start(bundled_model, fake.options(tmp_path))
    assert "does not deserialise" in caplog.text
    assert again.engine_path.read_bytes() == engine_bytes(fake.world.io, profile(1))
    again.close()


def test_an_engine_of_another_contract(fake: Fake, bundled_model: Path, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    first = fake.start(bundled_model, fake.options(tmp_path))
    first.close()
    other = dict(fake.world.io)
    other["scores"] = ("float32", [-1, other["scores"][1][1], 3], "OUTPUT")  # 3 classes, the metadata says 10
    first.engine_path.write_bytes(engine_bytes(other, profile(1)))
    with caplog.at_level(logging.WARNING):
        fake.start(bundled_model, fake.options(tmp_path)).close()  # cached: rebuilt
    assert "rebuilding engine" in caplog.text and "classes" in caplog.text
    first.engine_path.unlink()
    fake.world.io = other  # and a build that gives it: refused
    with pytest.raises(ModelContractError, match="scores have 3 classes"):
        fake.start(bundled_model, fake.options(tmp_path))
    assert fake.world.context_stack == [] and fake.world.contexts_detached == fake.world.contexts_made


def test_a_timing_cache_from_another_device_is_taken_as_nvidia_does(fake: Fake, bundled_model: Path,
                                                                   tmp_path: Path) -> None:
    backend = fake.start(bundled_model, fake.options(tmp_path))
    backend.close()
    timing = next((tmp_path / "engines").glob("timing-*.cache"))
    timing.write_bytes(fake.world.timing_cache_from_other_device)
    backend.engine_path.unlink()
    fake.start(bundled_model, fake.options(tmp_path)).close()  # ignore_mismatch=True: accepted, build goes on
    assert timing.read_bytes() == b"TIMING " + fake.version.encode()


def test_a_refused_or_absent_timing_cache_never_costs_the_engine(fake: Fake, bundled_model: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    fake.world.refuse_timing_cache = True
    fake.world.no_timing_cache_after_build = True
    with caplog.at_level(logging.WARNING):
        backend = fake.start(bundled_model, fake.options(tmp_path))
    assert backend.engine_path.read_bytes() == engine_bytes(fake.world.io, profile(1))  # the build is kept
    assert "building without one" in caplog.text and "returned no timing cache" in caplog.text
    assert not list((tmp_path / "engines").glob("timing-*.cache"))
    backend.close()


def _frames(folder: Path, count: int) -> Path:
    import cv2

    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((72, 128, 3), 30 * i, np.uint8))
    return folder


def test_int8_calibration_that_breaks_off_is_refused(fake: Fake, bundled_model: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    frames = _frames(tmp_path / "frames", 4)

    def one_then_broken(*args: Any, **kwargs: Any) -> Iterator[np.ndarray]:
        yield np.zeros((1, 384, 640, 3), np.uint8)
        raise OSError("camera frames on a network share went away")

    monkeypatch.setattr(fake.builder, "calibration_batches", one_then_broken)
    options = fake.options(tmp_path, precision="int8", calibration_dir=frames)
    with caplog.at_level(logging.ERROR), pytest.raises(ModelLoadError, match="saw 1 of the 4 images") as raised:
        fake.start(bundled_model, options)
    assert "went away" in str(raised.value) and "went away" in caplog.text  # in the ROS log, not only stderr
    assert not list((tmp_path / "engines").glob("*.engine"))  # no engine calibrated on one image
    assert fake.world.live_device == {}  # the calibrator's buffer too


def test_int8_with_min_max_calibration(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    frames = _frames(tmp_path / "frames", 3)
    backend = fake.start(bundled_model, fake.options(tmp_path, precision="int8", calibration_dir=frames,
                                                     calibration_algorithm="minmax"))
    assert "-minmax-" in backend.engine_path.name
    assert backend.engine_path.with_suffix(".calib").read_bytes() == b"CALIBRATION"
    backend.close()
    assert fake.world.live_device == {}


def test_an_unwritable_engine_folder_is_one_error(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelLoadError, match=r"cannot be created.*set engine_cache_dir"):
        fake.start(bundled_model, deployed_backend(backend="tensorrt", engine_cache_dir=blocker / "engines"))
    if os.geteuid() != 0:  # root writes anywhere: the mode check means something to other users only
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ModelLoadError, match="not writable"):
            fake.start(bundled_model, deployed_backend(backend="tensorrt", engine_cache_dir=locked))
    assert fake.world.context_stack == [] and fake.world.contexts_detached == fake.world.contexts_made


def test_a_frame_of_the_wrong_shape_is_refused_before_the_gpu(fake: Fake, bundled_model: Path,
                                                              tmp_path: Path) -> None:
    backend = fake.start(bundled_model, fake.options(tmp_path))
    fake.world.calls.clear()
    with pytest.raises(ValueError, match=r"does not fit the engine's uint8\[1..1, 384, 640, 3\]"):
        backend.infer(np.zeros((1, 360, 640, 3), np.uint8))
    with pytest.raises(ValueError, match=r"uint8\[2, 384, 640, 3\] does not fit"):  # beyond the profile
        backend.infer(np.zeros((2, 384, 640, 3), np.uint8))
    assert "IExecutionContext.execute_async_v3" not in fake.world.names() and fake.world.context_stack == []
    backend.close()


def test_build_progress_where_tensorrt_gives_none(fake: Fake, bundled_model: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(fake.builder, "BUILD_PROGRESS_PERIOD_S", 0.05)
    fake.world.build_seconds = 0.3
    with caplog.at_level(logging.INFO):
        fake.start(bundled_model, fake.options(tmp_path)).close()
    if fake.version.startswith("10"):  # IProgressMonitor (9.1 and later): TensorRT's own phases
        assert "engine build: Building engine" in caplog.text and "so far" not in caplog.text
    else:  # 8.5 and 8.6: the elapsed time, every period
        assert "s so far (TensorRT" in caplog.text


def test_a_dynamic_batch_gets_a_profile_for_1_to_n(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    world = fake.world
    world.echo_rows = True
    backend = fake.start(bundled_model, fake.options(tmp_path, max_batch=3))
    assert "-batch1to3-" in backend.engine_path.name  # another camera count builds (and caches) its own
    assert "IBuilderConfig.add_optimization_profile" in world.names()
    assert (backend.static_batch, backend.max_batch) == (None, 3)
    for batch in (3, 1, 2):  # rows keep their order; a smaller batch uses the first rows of the buffers
        frames = np.stack([np.full((384, 640, 3), 10 * (row + 1), np.uint8) for row in range(batch)])
        outputs = backend.infer(frames)
        assert world.args("IExecutionContext.set_input_shape")[-1] == ("images", (batch, 384, 640, 3))
        assert outputs["drivable"].shape == (batch, 384, 640) and outputs["scores"].shape[0] == batch
        assert [int(outputs["drivable"][row, 0, 0]) for row in range(batch)] == [10 * (r + 1) for r in range(batch)]
    with pytest.raises(ValueError, match=r"\[1..3, 384, 640, 3\]"):
        backend.infer(np.zeros((4, 384, 640, 3), np.uint8))
    backend.close()
    assert world.live_device == {} and world.live_host == set()
    one = fake.start(bundled_model, fake.options(tmp_path, max_batch=1))
    assert "-batch1to1-" in one.engine_path.name and one.engine_path != backend.engine_path
    one.close()


def test_a_dynamic_int8_build_calibrates_at_batch_1(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    frames = _frames(tmp_path / "frames", 3)
    backend = fake.start(bundled_model, fake.options(tmp_path, precision="int8", calibration_dir=frames, max_batch=2))
    assert "IBuilderConfig.set_calibration_profile" in fake.world.names()  # the fake refuses the build without it
    backend.close()


def test_a_batch_1_file_builds_without_a_profile(fake: Fake, tmp_path: Path, bundled_model: Path) -> None:
    import onnx

    proto = onnx.load(str(bundled_model))
    for tensor in (*proto.graph.input, *proto.graph.output):
        tensor.type.tensor_type.shape.dim[0].Clear()
        tensor.type.tensor_type.shape.dim[0].dim_value = 1
    old = tmp_path / "batch1.onnx"
    onnx.save(proto, str(old))
    fake.world.io = contract_io(old)
    backend = fake.start(old, fake.options(tmp_path, max_batch=3))
    assert "batch1to" not in backend.engine_path.name and (backend.static_batch, backend.max_batch) == (1, 1)
    assert "IBuilderConfig.add_optimization_profile" not in fake.world.names()
    backend.infer(np.zeros((1, 384, 640, 3), np.uint8))
    assert not fake.world.names("IExecutionContext.set_input_shape")
    backend.close()


# The calls that make an engine, in NVIDIA's samples' order (build_engine.py: parse, configure, profile,
# precision, build; then the runtime deserialises). What each version adds: 10 sets its progress monitor.
BUILD_CALLS = ("Builder.create_network", "OnnxParser.parse", "Builder.create_builder_config",
               "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.create_timing_cache",
               "IBuilderConfig.set_timing_cache", "IBuilderConfig.progress_monitor=",
               "Builder.create_optimization_profile", "IOptimizationProfile.set_shape",
               "IBuilderConfig.add_optimization_profile", "IBuilderConfig.set_flag", "IBuilderConfig.int8_calibrator=",
               "IBuilderConfig.set_calibration_profile", "Builder.build_serialized_network",
               "IBuilderConfig.get_timing_cache", "ITimingCache.serialize", "Runtime.deserialize_cuda_engine")


def _build_calls(world: World) -> list[Call]:
    return [call for call in world.calls if call.name in BUILD_CALLS]


@pytest.mark.parametrize("precision", ["fp16", "fp32", "int8"])
def test_the_build_makes_each_versions_calls_in_order_with_their_arguments(fake: Fake, bundled_model: Path,
                                                                           tmp_path: Path, precision: str) -> None:
    """Behaviour, not source text (issue 31 item 6): through the fake of each version's API table, the calls
    that build an engine, their order and their arguments. A call outside a version's table fails here."""
    trt = sys.modules["tensorrt"]
    frames = _frames(tmp_path / "frames", 3)
    extra = {"calibration_dir": frames} if precision == "int8" else {}
    fake.start(bundled_model, fake.options(tmp_path, precision=precision, max_batch=2, workspace_mb=512,
                                           **extra)).close()
    calls = _build_calls(fake.world)
    ten = fake.version.startswith("10")
    expected = ["Builder.create_network", "OnnxParser.parse", "Builder.create_builder_config",
                "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.create_timing_cache",
                "IBuilderConfig.set_timing_cache", *(["IBuilderConfig.progress_monitor="] if ten else []),
                "Builder.create_optimization_profile", "IOptimizationProfile.set_shape",
                "IBuilderConfig.add_optimization_profile"]
    if precision in ("fp16", "int8"):
        expected.append("IBuilderConfig.set_flag")
    if precision == "int8":
        expected += ["IBuilderConfig.set_flag", "IBuilderConfig.int8_calibrator=", "Builder.create_optimization_profile",
                     "IOptimizationProfile.set_shape", "IBuilderConfig.set_calibration_profile"]
    expected += ["Builder.build_serialized_network", "IBuilderConfig.get_timing_cache", "ITimingCache.serialize",
                 "Runtime.deserialize_cuda_engine"]
    assert [call.name for call in calls] == expected
    by_name = {call.name: call for call in reversed(calls)}  # the first call of each name
    # explicit batch: a flag TensorRT 8.x must be asked for, 10's only kind (the flag deprecated there)
    flags = 0 if ten else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    assert by_name["Builder.create_network"].args == (flags,)
    assert by_name["IBuilderConfig.set_memory_pool_limit"].args == (trt.MemoryPoolType.WORKSPACE, 512 << 20)
    assert by_name["IBuilderConfig.set_timing_cache"].kwargs == {"ignore_mismatch": True}
    assert by_name["IOptimizationProfile.set_shape"].args == ("images", (1, 384, 640, 3), (2, 384, 640, 3),
                                                              (2, 384, 640, 3))
    set_flags = [call.args[0] for call in calls if call.name == "IBuilderConfig.set_flag"]
    assert set_flags == {"fp16": [trt.BuilderFlag.FP16], "fp32": [],
                         "int8": [trt.BuilderFlag.FP16, trt.BuilderFlag.INT8]}[precision]
    if precision == "int8":  # the calibration profile: one image at a time
        shapes = [call.args for call in calls if call.name == "IOptimizationProfile.set_shape"]
        assert shapes[1] == ("images", (1, 384, 640, 3), (1, 384, 640, 3), (1, 384, 640, 3))


def test_build_engine_builds_ahead_of_time_and_then_finds_it(fake: Fake, bundled_model: Path, tmp_path: Path) -> None:
    """`mtl-perception build-engine`'s path: the builder alone (no execution context, no buffers), the primary
    context current only for the build; a second call loads the cached engine and builds nothing."""
    options = fake.options(tmp_path)
    path = fake.builder.build_engine(bundled_model, options)
    assert path.is_file() and path.read_bytes() == engine_bytes(fake.world.io, profile(1))
    assert "ICudaEngine.create_execution_context" not in fake.world.names()
    assert fake.world.context_stack == [] and fake.world.contexts_detached == fake.world.contexts_made == 1
    fake.world.calls.clear()
    assert fake.builder.build_engine(bundled_model, options) == path
    assert not fake.world.names("Builder") and fake.world.names("Runtime.deserialize_cuda_engine")
    backend = fake.start(bundled_model, options)  # the node then finds it, as built
    assert backend.engine_path == path and not fake.world.names("Builder")
    backend.close()
