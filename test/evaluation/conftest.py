"""A small labelled synthetic set for evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl_perception.data.synthetic_set import SynthConfig, write_dataset


@pytest.fixture(scope="session")
def labelled_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bdd")
    write_dataset(SynthConfig(out, train=0, val=6, seed=21, height=288, width=512), progress=False)
    return out
