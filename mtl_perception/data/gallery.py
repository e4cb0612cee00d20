"""Contact sheets: frames with their boxes and masks drawn, for people to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mtl_perception.data.bdd100k import BDD100KSplit, decode_lane_mask
from mtl_perception.runtime.overlay import contact_sheet, draw_overlay


def dataset_gallery(root: Path, split: str, out: Path, count: int = 9, columns: int = 3) -> Path:
    """Draw the first `count` frames of a BDD100K-layout split with their labels into one PNG."""
    data = BDD100KSplit(root, split, limit=count)
    tiles = [draw_overlay(s.image, s.labels.boxes, s.labels.categories, s.drivable, s.lane) for s in data]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), contact_sheet(tiles, columns)):
        raise OSError(f"could not write {out}")
    return out


def factor_gallery(out: Path, seed: int = 0, height: int = 720, width: int = 1280, columns: int = 4) -> Path:
    """One frame per randomisation factor, forced on (data/randomisation.py), beside the plain world and the
    training mix, each with its labels drawn and its name written on it: what `synth --gallery` shows."""
    from mtl_perception.data.randomisation import FACTORS, Randomisation
    from mtl_perception.data.synthetic import render_scene

    worlds = {"plain (before randomisation)": Randomisation.plain(), "training mix": Randomisation()}
    worlds.update({name: Randomisation().forcing(name) for name in FACTORS})
    tiles = []
    for index, (name, world) in enumerate(worlds.items()):
        scene = render_scene(np.random.default_rng([seed, 7919, index]), height, width, world)
        boxes = np.array([o.box for o in scene.objects], np.float32).reshape(-1, 4)
        tile = draw_overlay(scene.image, boxes, [o.category for o in scene.objects], scene.drivable <= 1,
                            decode_lane_mask(scene.lane))
        scale = width / 1280
        cv2.rectangle(tile, (0, 0), (round(560 * scale), round(56 * scale)), (0, 0, 0), -1)
        cv2.putText(tile, name, (round(12 * scale), round(40 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale,
                    (255, 255, 255), max(round(2 * scale), 1), cv2.LINE_AA)
        tiles.append(tile)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), contact_sheet(tiles, columns, tile_width=480)):
        raise OSError(f"could not write {out}")
    return out
