"""The checkpoint that ships beside an exported model: its weights and the recipe that made them.

A training run's best.pt also holds the optimiser, the scheduler, the raw (non-EMA) weights and the random
states, three times the size of the network and useful only to `--resume`. What a user needs of a released
model is less: the weights the ONNX file was exported from (so `export` reproduces it and `train --init-from`
fine-tunes it) and how they were made (the run's options, each data source's origin, the teachers that
labelled it, the seeds, and the same for the network a fine-tune started from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtl_perception.training.checkpoint import load_checkpoint, save_checkpoint

# a pseudo-label manifest's keys that say how the labels were made; the rest (frame lists, counts of
# skipped files) is bulk the recipe need not carry
_LABELLING_KEYS = ("detectors", "segmenters", "flip", "thresholds", "drivable_definition", "inputs", "every",
                   "resize", "frames", "labels", "ignore_regions")


def release_state(state: dict[str, Any], exported_as: str) -> dict[str, Any]:
    """A run checkpoint's state cut to what a released model needs: the exported (EMA) weights as `model`,
    the model and training configs, what it was trained on, and the recipe."""
    weights = state["ema"] if state.get("ema") else state["model"]
    return {
        "model_config": state["model_config"],
        "model": weights,
        "train_config": state.get("train_config"),
        "trained_on": state.get("trained_on", "unrecorded data"),
        "backbone_weights_used": state.get("backbone_weights_used"),
        "epoch": state.get("epoch"),
        "exported_as": exported_as,
        "recipe": recipe(state),
    }


def write_release(state: dict[str, Any], path: Path, exported_as: str) -> None:
    """The released checkpoint, written atomically."""
    save_checkpoint(release_state(state, exported_as), path)


def recipe(state: dict[str, Any]) -> dict[str, Any]:
    """How a run's weights were made: its seed, each data source (with its labelling, where teachers made
    it) and, for a fine-tune, the starting network's own recipe, read from its checkpoint while it exists."""
    config = state.get("train_config") or {}
    sources = [(config.get("data") or {}, config.get("data_weight", 1.0))]
    sources += [(m, m.get("weight", 1.0)) for m in config.get("mix") or []]
    out: dict[str, Any] = {"seed": config.get("seed"), "epochs_done": _epochs_done(state),
                           "data": [_source(str(s["root"]), float(w)) for s, w in sources if s.get("root")]}
    if config.get("init_from"):
        out["init_from"] = _parent(Path(str(config["init_from"])))
    return out


def _epochs_done(state: dict[str, Any]) -> int | None:
    epoch = state.get("epoch")
    return None if epoch is None else int(epoch) + 1


def _source(root: str, weight: float) -> dict[str, Any]:
    """A data source by its folder's name (paths do not travel), its weight, and its origin: the pseudo-label
    manifest of its train split, or the synthetic frames' name prefix (which holds `synth --seed`)."""
    folder = Path(root)
    entry: dict[str, Any] = {"name": folder.name, "weight": weight}
    manifest = folder / "labels" / "pseudo_label_train.json"
    if manifest.is_file():
        try:
            values = json.loads(manifest.read_text())
        except (OSError, ValueError):
            values = {}
        entry["pseudo_label"] = {k: values[k] for k in _LABELLING_KEYS if k in values}
        return entry
    det = folder / "labels" / "det_20" / "det_train.json"
    try:
        frames = json.loads(det.read_text()) if det.is_file() else []
    except (OSError, ValueError):
        frames = []
    entry["frames"] = len(frames)
    if frames and str(frames[0].get("name", "")).startswith("synth"):
        entry["synthetic"] = str(frames[0]["name"]).split("-")[0]  # synthSSSS: synth --seed SSSS
    return entry


def _parent(path: Path) -> dict[str, Any]:
    """The recipe of the network a fine-tune started from, as that network's checkpoint records it."""
    try:
        parent = load_checkpoint(path)
    except (OSError, RuntimeError) as err:
        return {"checkpoint": path.name, "recipe": f"unreadable here ({err})"}
    return {"checkpoint": path.name, "trained_on": parent.get("trained_on"),
            "recipe": parent.get("recipe") or recipe(parent)}
