"""Where TensorRT engines live: one file per (model, precision, TensorRT version, GPU), so a stale engine
is never loaded. Pure functions: tested here, used on the Jetson."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "unknown"


@dataclass(frozen=True)
class GpuIdentity:
    """What a serialized engine is tied to besides the TensorRT version. NVIDIA's support matrix: engines are
    not portable across devices, and Xavier NX 8 GB and 16 GB need separate engines, so the name alone (both
    say "Xavier") is not enough."""

    name: str
    compute_capability: tuple[int, int]
    sm_count: int
    total_memory_bytes: int

    def slug(self) -> str:
        """e.g. orin-sm87-16sm-15389mib"""
        major, minor = self.compute_capability
        return f"{_slug(self.name)}-sm{major}{minor}-{self.sm_count}sm-{self.total_memory_bytes >> 20}mib"


def engine_file_name(model_path: Path, model_digest: str, precision: str, trt_version: str, gpu: GpuIdentity,
                     calibration_digest: str = "", calibration_algorithm: str = "",
                     profile_max_batch: int | None = None) -> str:
    """e.g. mtl_mobilenetv2_384x640-3f2a9c0d1b7e6a55-fp16-trt10.3.0-orin-sm87-16sm-15389mib.engine; int8
    engines also carry the calibration set's digest and algorithm (…-int8-cal0123abcd4567ef89-minmax-…), so a
    new calibration folder or algorithm never reuses an engine calibrated otherwise; a dynamic-batch model's
    engines their optimisation profile (…-fp16-batch1to3-…), so a node with more cameras builds its own."""
    calibration = f"-cal{calibration_digest[:16]}" if calibration_digest else ""
    if calibration and calibration_algorithm:
        calibration += f"-{_slug(calibration_algorithm)}"
    profile = f"-batch1to{profile_max_batch}" if profile_max_batch is not None else ""
    return (f"{model_path.stem}-{model_digest[:16]}-{precision}{calibration}{profile}-trt{_slug(trt_version)}-"
            f"{gpu.slug()}.engine")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/mtl_perception/engines: writable even when the model sits in a read-only install."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mtl_perception" / "engines"


def timing_cache_path(cache_dir: Path, trt_version: str, gpu: GpuIdentity) -> Path:
    """One timing cache per TensorRT version and GPU, shared by every model: it speeds up later builds."""
    return cache_dir / f"timing-trt{_slug(trt_version)}-{gpu.slug()}.cache"


def calibration_cache_path(engine_path: Path) -> Path:
    return engine_path.with_suffix(".calib")
