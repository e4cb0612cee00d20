"""Fixtures for training tests: a tiny synthetic BDD100K-layout set, made once per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mtl_perception.data.synthetic_set import SynthConfig, write_dataset
from mtl_perception.training.backbone import BackboneWeightsWarning


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_bdd")
    write_dataset(SynthConfig(out, train=8, val=4, seed=11, height=288, width=512), progress=False)
    return out


@pytest.fixture(autouse=True)
def _quiet_random_backbone() -> None:
    # every test model starts from random weights on purpose; the warning is tested on its own
    warnings.simplefilter("ignore", BackboneWeightsWarning)
