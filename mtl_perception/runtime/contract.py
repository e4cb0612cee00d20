"""The model contract (docs/architecture.md): tensor names, dtypes and the metadata in every ONNX file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

CONTRACT_VERSION = "1"
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "drivable", "lane")


class ModelContractError(RuntimeError):
    """A model file that does not honour the contract; the message names the file and the fix."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a model, read from its metadata."""

    class_names: tuple[str, ...]
    input_height: int
    input_width: int
    pad_value: int
    backbone: str
    contract_version: str
    trained_on: str

    def to_metadata(self) -> dict[str, str]:
        return {
            "class_names": json.dumps(list(self.class_names)),
            "input_size": f"{self.input_height}x{self.input_width}",
            "pad_value": str(self.pad_value),
            "backbone": self.backbone,
            "contract_version": self.contract_version,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str) -> ModelInfo:
        missing = [k for k in ("class_names", "input_size", "pad_value", "contract_version") if k not in props]
        if missing:
            raise ModelContractError(f"{source} lacks metadata {', '.join(missing)}: it was not exported by "
                                     "`mtl-perception export`; re-export it")
        if props["contract_version"] != CONTRACT_VERSION:
            raise ModelContractError(f"{source} follows model contract {props['contract_version']}, this runtime "
                                     f"reads {CONTRACT_VERSION}; re-export the model with this version")
        try:
            names = tuple(json.loads(props["class_names"]))
            height, width = (int(v) for v in props["input_size"].split("x"))
            pad = int(props["pad_value"])
        except (ValueError, TypeError) as err:
            raise ModelContractError(f"{source} has malformed metadata ({err}); re-export it") from err
        return cls(names, height, width, pad, props.get("backbone", "unknown"), props["contract_version"],
                   props.get("trained_on", "unknown"))
