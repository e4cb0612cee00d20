"""Training history: one CSV row per epoch (rewritten atomically) and a PNG of the loss curves."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from mtl_perception.atomic_io import atomic_write, atomic_write_text

VAL_FIELDS = ("map50", "map50_95", "drivable_miou", "lane_iou", "fitness")


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of the history: the learning rate, the mean training loss parts (box, obj, cls, det,
    and drivable, lane, lane_dice, seg while segmentation trains; total), and validation where it ran."""

    epoch: int
    lr: float
    losses: dict[str, float]
    val: dict[str, float] | None = None  # VAL_FIELDS

    def row(self) -> dict[str, float]:
        """The CSV and TensorBoard columns: epoch, lr, train/<part>, val/<field>."""
        return {"epoch": float(self.epoch), "lr": self.lr, **{f"train/{k}": v for k, v in self.losses.items()},
                **{f"val/{k}": v for k, v in (self.val or {}).items()}}

    @classmethod
    def from_row(cls, row: dict[str, float]) -> EpochRecord:
        losses = {k.removeprefix("train/"): v for k, v in row.items() if k.startswith("train/")}
        val = {k.removeprefix("val/"): v for k, v in row.items() if k.startswith("val/")}
        return cls(int(row["epoch"]), row["lr"], losses, val or None)


def read_history(path: Path) -> list[EpochRecord]:
    """The rows history.csv holds; ValueError naming the file when it is not the trainer's."""
    if not path.is_file():
        return []
    try:
        with path.open() as handle:
            return [EpochRecord.from_row({k: float(v) for k, v in row.items() if v not in ("", None)})
                    for row in csv.DictReader(handle)]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} is not a training history ({type(err).__name__}: {err}); restore it, or delete it "
                         "to resume without the earlier epochs' rows") from None


def write_history(records: list[EpochRecord], path: Path) -> None:
    rows = [r.row() for r in records]
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k != "epoch", k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def plot_history(records: list[EpochRecord], path: Path) -> None:
    """Losses on the left, validation metrics on the right."""
    rows = [r.row() for r in records]
    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in ("train/total", "train/det", "train/seg", "train/box", "train/obj", "train/cls"):
        if any(key in r for r in rows):
            left.plot(epochs, [r.get(key, float("nan")) for r in rows], label=key.split("/")[1])
    left.set(xlabel="epoch", ylabel="loss", title="training loss", yscale="log")
    left.legend()
    for key in ("val/map50", "val/drivable_miou", "val/lane_iou"):
        if any(key in r for r in rows):
            right.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", label=key.split("/")[1])
    right.set(xlabel="epoch", ylabel="score", title="validation", ylim=(0, 1))
    right.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
