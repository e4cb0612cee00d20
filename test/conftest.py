"""Shared fixtures. ROS tests get a private DDS domain so parallel runs never meet."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    # One domain per test session, localhost only: two CI runs on one machine,
    # or a developer's running node, must not see this suite's topics.
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def bdd100k_samples() -> Path:
    path = SHARED / "bdd100k-samples"
    if not path.is_dir():
        pytest.fail(f"{path} is missing: the real BDD100K samples live in ../shared/ beside the clone")
    return path


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    """The model the package ships (synthetic scenes and teacher-labelled real frames); needs no torch to exist."""
    return REPO / "models" / "mtl_mobilenetv2_384x640.onnx"


@pytest.fixture(scope="session")
def bundled_checkpoint(bundled_model: Path) -> Path:
    """The checkpoint the bundled model was exported from (`export --keep-checkpoint`), beside it."""
    return bundled_model.with_suffix(".pt")


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX file exported from the real network, random weights, 256x384 (fast on this CPU)."""
    from mtl_perception.training.export import export_onnx
    from mtl_perception.training.model import build_untrained

    model = build_untrained("mobilenetv2")
    path = tmp_path_factory.mktemp("models") / "random_mobilenetv2_256x384.onnx"
    export_onnx(model, path, 256, 384, "random weights (not trained): for tests and benchmarks only")
    return path
