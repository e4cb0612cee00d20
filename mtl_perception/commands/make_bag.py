"""mtl-perception make-bag: a rosbag2 of an image folder, with the image name -> stamp map beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_perception.commands.common import rate_hz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mtl_perception.evaluation.bags import IMAGE_TOPIC, STORAGES, default_storage

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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mtl_perception.evaluation.bags import FRAMES_FILE, load_camera_info_yaml, write_image_bag
    from mtl_perception.runtime.calibration import IMAGE_SUFFIXES

    if not args.images.is_dir():
        print(f"error: image folder {args.images} does not exist", file=sys.stderr)
        return 2
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    try:
        calibration = load_camera_info_yaml(args.camera_info) if args.camera_info else None
        stamps = write_image_bag(images, args.out, args.topic, args.storage, args.compressed, args.rate,
                                 args.frame_id, progress=lambda it: tqdm(it, total=len(images), desc="make-bag"),
                                 camera_info=calibration)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}" + ("" if args.out.exists() else f"; {args.out} was not written"), file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(stamps)} frames on {args.topic}{'/compressed' if args.compressed else ''} "
          f"at {args.rate:g} Hz ({args.storage}); name -> stamp in {args.out / FRAMES_FILE}")
    return 0
