"""Inference backends behind one small interface; each runtime library is imported only when chosen."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mtl_perception.runtime.backends.base import Backend, BackendOptions, ModelLoadError
from mtl_perception.runtime.contract import ModelContractError

BACKENDS = ("auto", "tensorrt", "onnxruntime")

__all__ = ["BACKENDS", "Backend", "BackendChoice", "BackendOptions", "ModelLoadError", "build_tensorrt_engine",
           "choose_backend", "load_backend", "tensorrt_missing"]
log = logging.getLogger(__name__)

# What each Python module of the TensorRT path is, and how a Jetson user installs it.
_TENSORRT_MODULES = (
    ("tensorrt", "TensorRT's Python bindings (tensorrt) are not installed: on JetPack "
                 "`sudo apt install python3-libnvinfer`, elsewhere `pip install tensorrt`"),
    ("pycuda.driver", "pycuda is not installed (JetPack does not ship it): `pip3 install pycuda`, with CUDA's "
                      "compiler on PATH (export PATH=/usr/local/cuda/bin:$PATH)"),
    ("onnx", "the onnx package (read for the model's metadata) is not installed: `pip3 install onnx`"),
)
_ONNXRUNTIME_MISSING = ("ONNX Runtime is not installed (JetPack does not ship it): `pip3 install onnxruntime`, "
                        "or NVIDIA's onnxruntime-gpu wheel for your JetPack; or set backend tensorrt")


@dataclass(frozen=True)
class BackendChoice:
    name: str  # "tensorrt" or "onnxruntime"
    reason: str  # why, for the log


def tensorrt_missing() -> str | None:
    """Why the TensorRT backend cannot load here, with the install command; None when it can."""
    import importlib

    for name, problem in _TENSORRT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return problem
        if getattr(module, "__file__", None) is None:  # a bare folder (type stubs) imports as a namespace
            return problem
    return None


def choose_backend(requested: str) -> BackendChoice:
    """The backend for a requested name; 'auto' takes TensorRT where everything it needs imports."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; use one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return BackendChoice(requested, "as set")
    missing = tensorrt_missing()
    if missing is None:
        return BackendChoice("tensorrt", "auto: TensorRT, pycuda and onnx are installed")
    return BackendChoice("onnxruntime", f"auto: not TensorRT, because {missing}")


def load_backend(model_path: Path, options: BackendOptions) -> Backend:
    """The backend for options.backend, loaded. Every failure to load is a ModelLoadError (or, for a file
    that breaks the contract, ModelContractError) whose message names the cause and the fix."""
    choice = choose_backend(options.backend)
    if not model_path.is_file():
        raise ModelLoadError(f"model file {model_path} not found; export one with `mtl-perception export` "
                             "or set model_path to an existing .onnx file")
    log.info("backend %s (%s)", choice.name, choice.reason)
    if choice.name == "tensorrt":
        return _load_tensorrt(model_path, options)
    try:
        from mtl_perception.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    except ImportError as err:
        raise ModelLoadError(_ONNXRUNTIME_MISSING) from err
    return OnnxRuntimeBackend(model_path, options)


def _load_tensorrt(model_path: Path, options: BackendOptions) -> Backend:
    missing = tensorrt_missing()
    if missing is not None:
        raise ModelLoadError(f"backend tensorrt cannot run here: {missing}")
    from mtl_perception.runtime.backends.tensorrt_backend import TensorRTBackend

    with _one_line_errors(f"TensorRT could not load {model_path}"):
        return TensorRTBackend(model_path, options)


def build_tensorrt_engine(model_path: Path, options: BackendOptions) -> Path:
    """`mtl-perception build-engine`: the engine for this model and options, built ahead of time unless a
    valid one is cached (runtime/backends/engine_builder.py); its path. The same one-line errors as loading."""
    missing = tensorrt_missing()
    if missing is not None:
        raise ModelLoadError(f"building a TensorRT engine needs TensorRT: {missing}")
    if not model_path.is_file():
        raise ModelLoadError(f"model file {model_path} not found; export one with `mtl-perception export`")
    from mtl_perception.runtime.backends.engine_builder import build_engine

    with _one_line_errors(f"TensorRT could not build an engine for {model_path}"):
        return build_engine(model_path, options)


@contextlib.contextmanager
def _one_line_errors(what: str) -> Iterator[None]:
    """CUDA and TensorRT raise their own types: each becomes a ModelLoadError saying what failed and the fix
    (ModelLoadError and ModelContractError pass as they are)."""
    try:
        yield
    except (ModelLoadError, ModelContractError):
        raise
    except Exception as err:  # whatever CUDA or TensorRT raised
        raise ModelLoadError(f"{what}: {type(err).__name__}: {err}; check that this process sees the GPU (in a "
                             "container: --runtime nvidia) and that TensorRT and CUDA are JetPack's own") from err
