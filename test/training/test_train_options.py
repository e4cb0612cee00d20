"""Training options that once misled: defaults that fail, runs overwritten, sizes guessed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mtl_perception.commands.export import _trained_size
from mtl_perception.training.config import TrainConfig
from mtl_perception.training.dataset import DataConfig


def test_seg_epochs_default_to_at_most_the_epochs(tmp_path: Path) -> None:
    data = DataConfig(tmp_path)
    assert TrainConfig(data=data, out=tmp_path, epochs=1).seg_epochs == 1  # `train --epochs 1` works
    assert TrainConfig(data=data, out=tmp_path, epochs=200).seg_epochs == 60  # the paper's schedule
    assert TrainConfig(data=data, out=tmp_path, epochs=10, seg_epochs=4).seg_epochs == 4


@pytest.mark.parametrize(("field", "value", "message"), [("val_every", 0, "--val-every"),
                                                         ("batch", 0, "--batch")])
def test_nonsense_is_refused(tmp_path: Path, field: str, value: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(data=DataConfig(tmp_path), out=tmp_path, **{field: value})
    with pytest.raises(ValueError, match="--limit"):
        TrainConfig(data=DataConfig(tmp_path, limit=-1), out=tmp_path)


def test_train_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a finished run")
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", "--data", str(tmp_path),
                             "--out", str(run)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--resume" in result.stderr and "--overwrite" in result.stderr
    assert (run / "last.pt").read_bytes() == b"a finished run"


def test_export_defaults_to_the_size_the_checkpoint_trained_at() -> None:
    assert _trained_size({"train_config": {"data": {"height": 192, "width": 320}}}) == (192, 320)
    assert _trained_size({}) == (384, 640)  # a checkpoint from before train_config: the bundled size


def test_example_config_holds_every_key_at_its_default(repo_root: Path) -> None:
    """config/train_example.yaml is what `--config` takes, every key at its default: it loads, and it lists
    each LossConfig and AugmentConfig field with the dataclass's own value."""
    import dataclasses

    import yaml

    from mtl_perception.training.config import load_yaml_overrides
    from mtl_perception.training.loss import LossConfig
    from mtl_perception.training.transforms import AugmentConfig

    example = repo_root / "config" / "train_example.yaml"
    loaded = load_yaml_overrides(example)
    assert loaded == {"loss": LossConfig(), "augment": AugmentConfig()}
    written = yaml.safe_load(example.read_text())
    for section, cls in (("loss", LossConfig), ("augment", AugmentConfig)):
        assert set(written[section]) == {f.name for f in dataclasses.fields(cls)}, section


def test_help_shows_every_default() -> None:
    """Every option of every subcommand has a help text, and --help prints the default of each that has
    one; train's come from TrainConfig (their argparse default is None, so a --config file is not overruled)."""
    import argparse

    from mtl_perception.cli import build_parser

    parser = build_parser(None)
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in subcommands.items():
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            meaningful = action.default is not None and action.default is not False and action.default != []
            if meaningful and action.option_strings:
                assert f"default: {action.default}" in " ".join(text.split()) or "default" in action.help, \
                    f"{name} {action.option_strings[0]}"
    train_help = " ".join(subcommands["train"].format_help().split())
    for option, value in (("--batch", TrainConfig.batch), ("--epochs", TrainConfig.epochs), ("--lr", TrainConfig.lr),
                          ("--workers", TrainConfig.workers), ("--img-size", "384x640")):
        assert f"(default: {value})" in train_help, option
