"""The options of mtl-perception make-bag: what building the parser (--help included) imports of the command,
so it holds only what the options need; mtl_perception/commands/make_bag.py, which does the work, is imported
when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_perception.bags import IMAGE_TOPIC, STORAGES, default_storage
from mtl_perception.commands.common import rate_hz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of images (sorted by name)")
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--topic", default=IMAGE_TOPIC, help="the image topic (compressed: TOPIC/compressed)")
    parser.add_argument("--storage", choices=STORAGES, default=default_storage(),
                        help="rosbag2 storage (default: %(default)s; mcap needs rosbags 0.10+, Python 3.10+)")
    parser.add_argument("--compressed", action="store_true", help="CompressedImage (jpeg) on TOPIC/compressed")
    parser.add_argument("--rate", type=rate_hz, default=10.0, help="frames per second of the recording")
    parser.add_argument("--frame-id", default="camera", help="the images' header frame_id")
    parser.add_argument("--camera-info", type=Path, metavar="FILE.yaml",
                        help="the camera's calibration (camera_info_manager's YAML): a CameraInfo is recorded beside "
                             "every frame, on the topic beside --topic, so a replay gives drivable_grid")
