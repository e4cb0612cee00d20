"""Fixtures for training tests: a tiny synthetic BDD100K-layout set, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl_perception.data.synthetic_set import SynthConfig, write_dataset


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_bdd")
    write_dataset(SynthConfig(out, train=8, val=4, seed=11, height=288, width=512), progress=False)
    return out
