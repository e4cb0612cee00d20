"""Inference backends behind one small interface; each runtime library is imported only when chosen."""

from __future__ import annotations

from pathlib import Path

from mtl_perception.runtime.backends.base import Backend, BackendOptions, ModelLoadError

BACKENDS = ("auto", "tensorrt", "onnxruntime")

__all__ = ["BACKENDS", "Backend", "BackendOptions", "ModelLoadError", "load_backend"]


def _tensorrt_available() -> bool:
    try:
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def load_backend(model_path: Path, options: BackendOptions) -> Backend:
    """The backend for options.backend; 'auto' takes TensorRT when it and pycuda import, else ONNX Runtime."""
    if options.backend not in BACKENDS:
        raise ValueError(f"unknown backend {options.backend!r}; use one of {', '.join(BACKENDS)}")
    if not model_path.is_file():
        raise ModelLoadError(f"model file {model_path} not found; export one with `mtl-perception export` "
                             "or set model_path to an existing .onnx file")
    if options.backend == "tensorrt" or (options.backend == "auto" and _tensorrt_available()):
        from mtl_perception.runtime.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model_path, options)
    from mtl_perception.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model_path, options)
