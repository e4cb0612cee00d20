"""`mtl-perception`: one subcommand per tool.

Each subcommand has two modules: `commands/arguments/<name>.py`, its options, light enough to build the parser
(`--help` included) without the command's libraries, and `commands/<name>.py`, which imports what the command
needs at its top and is imported only when that subcommand runs: `mtl-perception infer` on a Jetson never
imports torch, and `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence

from mtl_perception.errors import UserFacingError
from mtl_perception.interrupts import deferred_interrupts, redelivered_interrupts

# name -> (module, help). The module defines run(args) -> int; its arguments module (arguments_module) defines
# add_arguments(parser).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mtl_perception.commands.synth", "write a synthetic driving-scene set in BDD100K's layout"),
    "pseudo-label": ("mtl_perception.commands.pseudo_label",
                     "label unlabelled footage (folders, videos, bags) with teacher models, in BDD100K's layout"),
    "check-data": ("mtl_perception.commands.check_data", "check a BDD100K-layout folder before a long run"),
    "train": ("mtl_perception.commands.train", "train the multi-task network (torchrun for several processes)"),
    "export": ("mtl_perception.commands.export", "export a checkpoint (or random weights) to the ONNX contract"),
    "model-card": ("mtl_perception.commands.model_card", "params, GFLOPs and size per backbone (Table II)"),
    "infer": ("mtl_perception.commands.infer", "run a model on images or a video and write overlays (no ROS)"),
    "eval": ("mtl_perception.commands.eval", "score a model on a BDD100K-layout split (toolkit's and peers' metrics)"),
    "eval-ground": ("mtl_perception.commands.eval_ground", "score the drivable grid and lane markings in metres (synthetic splits)"),
    "score-det": ("mtl_perception.commands.score_det", "score BDD100K-format detections against labels, as the toolkit does"),
    "make-bag": ("mtl_perception.commands.make_bag", "write a rosbag2 from an image folder"),
    "eval-bag": ("mtl_perception.commands.eval_bag", "run a rosbag2 through the runtime; write a result bag"),
    "play-bag": ("mtl_perception.commands.play_bag", "publish a rosbag2's images and camera_info as recorded (no ros2 bag needed)"),
    "bench": ("mtl_perception.commands.bench", "model card and latency per backbone and size (Tables II, III)"),
    "bench-node": ("mtl_perception.commands.bench_node", "end-to-end latency of perception_node vs its inference time"),
    "bench-scene": ("mtl_perception.commands.bench_scene",
                    "cost per frame of tracking, placing road users, their velocities and the ego lane"),
    "demo": ("mtl_perception.commands.demo", "replay a synthetic drive through perception_node; write demo_out/"),
    "trt-check": ("mtl_perception.commands.trt_check", "check an ONNX file against the TensorRT versions JetPack ships"),
    "build-engine": ("mtl_perception.commands.build_engine", "build the TensorRT engine ahead of time (Jetson)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with arguments only for `command` (None: every subcommand's).

    Only the chosen subcommand's module is imported: `infer` on a Jetson must not need what
    `demo` or `train` import (ROS, YAML, torch), nor a Python new enough for them.
    """
    parser = argparse.ArgumentParser(
        prog="mtl-perception",
        description="Multi-task perception: data, training, export, inference, evaluation.",
    )
    from mtl_perception.commands.common import DefaultsHelpFormatter

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsHelpFormatter)
        sub_parser.set_defaults(_module=module_name)
        if command is None or name == command:
            _load(arguments_module(module_name)).add_arguments(sub_parser)
    return parser


def arguments_module(module_name: str) -> str:
    """mtl_perception.commands.NAME -> mtl_perception.commands.arguments.NAME: the command's options alone."""
    package, _, name = module_name.rpartition(".")
    return f"{package}.arguments.{name}"


def _load(module_name: str):
    # Ctrl-C held while the command's libraries load: inside a C extension's initialisation it would crash
    with deferred_interrupts():
        return importlib.import_module(module_name)


def _command_in(argv: Sequence[str]) -> str:
    """The subcommand named in argv: the first argument that is one (options come after it)."""
    return next((arg for arg in argv if arg in SUBCOMMANDS), "")


# What a missing import means for the user: the top-level module -> how to get it
_ROS_HINT = "ROS 2's Python packages: source your ROS 2 setup first (e.g. source /opt/ros/humble/setup.bash)"
_MISSING_HINTS = {
    **{m: _ROS_HINT for m in ("rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "vision_msgs", "nav_msgs",
                              "diagnostic_msgs", "geometry_msgs", "visualization_msgs", "lifecycle_msgs")},
    **{m: "the training extra: pip install 'mtl_perception[training]' (Python 3.10+)"
       for m in ("torch", "torchvision", "onnx", "tensorboard")},
    **{m: "the runtime extra: pip install 'mtl_perception[runtime]'"
       for m in ("rosbags", "yaml", "pycocotools", "tqdm", "matplotlib", "onnxruntime", "cv2")},
    "ensemble_boxes": "the pseudo-label extra: pip install 'mtl_perception[pseudo-label]'",
}


def _missing_module(command: str, err: ModuleNotFoundError) -> str:
    top = (err.name or "").split(".")[0]
    needs = _MISSING_HINTS.get(top, f"pip install {top}")
    return f"error: mtl-perception {command or '--help'} needs {top!r}, which is not installed here: {needs}"


def _ignore_later_interrupts() -> None:
    """Once a Ctrl-C is answered, a later one is ignored: raised while the interpreter exits, it would kill it by
    SIGINT after its "interrupted:" line (exit -2; CI saw it from eval-bag)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. Whatever it meets (Ctrl-C at any moment, imports included; a missing package; the
    file system's errors) ends in one line and an exit code, here for every subcommand."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    try:
        with redelivered_interrupts():  # a Ctrl-C that lands in a finaliser still stops the run
            return _run(argv, command)
    except KeyboardInterrupt:
        _ignore_later_interrupts()
        # each tool writes its outputs atomically or under a temporary name: what it had not finished is absent
        print(f"interrupted: mtl-perception {command or ''} stopped; its unfinished outputs were not written"
              .replace("  ", " "), file=sys.stderr)
        return 130
    except UserFacingError as err:  # a subcommand's own errors that it did not report itself
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:  # a subcommand imports what it needs when it is chosen
        print(_missing_module(command, err), file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, an output path under a file or onto a folder, a permission
        print(f"error: mtl-perception {command}: {_os_error(err)}", file=sys.stderr)
        return 1


def _run(argv: list[str], command: str) -> int:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from mtl_perception.defaults import resolve_node_defaults

    resolve_node_defaults(args)  # options left at perception_node's defaults take config/jetson.yaml's values
    return int(_load(args._module).run(args) or 0)


def _os_error(err: OSError) -> str:
    """One line naming the file and the cause, for the errors the file system gives."""
    where = f" {err.filename}" if err.filename else ""
    hints = {28: "the disk is full: free space or write elsewhere", 13: "permission denied: choose a writable path",
             20: "a part of the path is a file, not a folder", 21: "the path is a folder: give a file name",
             2: "no such file or folder", 17: "a file of that name is in the way of a folder: remove it or write elsewhere"}
    reason = hints.get(err.errno or 0, err.strerror or str(err))
    return f"cannot write or read{where}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
