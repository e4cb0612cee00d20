"""The CLI's entry point: a full disk, a bad output path and Ctrl-C are one line and an exit code in every
subcommand, never a traceback."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_perception import cli


@pytest.mark.parametrize(("code", "message"), [(errno.ENOSPC, "the disk is full"),
                                               (errno.ENOTDIR, "a part of the path is a file"),
                                               (errno.EISDIR, "the path is a folder")])
def test_file_system_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                         code: int, message: str) -> None:
    def fail(args: object) -> int:
        raise OSError(code, "from the OS", "/data/out/labels.json")

    module = cli._load("mtl_perception.commands.score_det")
    monkeypatch.setattr(module, "run", fail)
    assert cli.main(["score-det", "--labels", "l.json", "--predictions", "p.json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "/data/out/labels.json" in err


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    """SIGINT to a real long-running subcommand (synth of many frames)."""
    process = subprocess.Popen([sys.executable, "-m", "mtl_perception.cli", "synth", "--out", str(tmp_path / "s"),
                                "--train", "500", "--val", "0"], stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted: mtl-perception synth stopped" in err
    assert not (tmp_path / "s" / "labels" / "det_20" / "det_train.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["infer", "--model", "m.onnx", "--input", "x", "--out", "o", "--threads", "100000"], "threads must lie in 0..64"),
    (["eval", "--data", "d", "--model", "m.onnx", "--operating-threshold", "5"], "must lie in [0, 1]"),
    (["eval", "--data", "d", "--model", "m.onnx", "--limit", "-1"], "must be 1 or more"),
    (["make-bag", "--images", "d", "--out", "o", "--rate", "1e-12"], "a rate must lie in [0.001, 1000] Hz"),
    (["make-bag", "--images", "d", "--out", "o", "--rate", "nan"], "not a finite number"),
    (["train", "--data", "d", "--out", "o", "--val-every", "0"], "must be 1 or more"),
    (["bench-node", "--cameras", "1,abc"], "argument --cameras: 'abc' is not a whole number"),
    (["bench-node", "--cameras", "0"], "argument --cameras: 0: must be 1 or more"),
    (["bench-node", "--rates", "2,-1"], "argument --rates: -1.0: a rate must lie in [0.001, 1000] Hz"),
    (["bench-node", "--frames", "720x1280,12"], "argument --frames: size '12' is not HxW"),
    (["bench", "--sizes", "384x640,100x100"], "argument --sizes: image size 100x100 is not divisible by 32"),
    (["bench", "--runs", "0"], "argument --runs: 0: must be 1 or more"),
    (["bench", "--runs", "-1"], "argument --runs: -1: must be 1 or more"),
    (["eval-ground", "--rig", "2", "--seed", "-1"], "argument --seed: -1: must be 0 or more"),
    (["eval-ground", "--rig", "2", "--picture", "/tmp"], "argument --picture: /tmp is a folder: give a file name"),
    (["bench-node", "--seconds", "0"], "argument --seconds: 0.0: must be more than 0 seconds"),
    (["bench-node", "--seconds", "9"], "argument --seconds: 9: at most 7.5 s"),
])
def test_nonsense_numbers_are_refused_by_the_parser(argv: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", *argv], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
