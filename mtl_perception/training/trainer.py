"""The training loop: all tasks first, then detection alone with the segmentation heads frozen.

Single process, or DDP under `torchrun --nproc_per_node=N` (NCCL on GPUs, gloo on
CPUs). Rank 0 validates, logs and writes checkpoints; every epoch ends with an
atomic last.pt, from which --resume continues exactly: model, optimiser,
scheduler, EMA, AMP scaler, epoch and RNG states.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from mtl_perception.atomic_io import atomic_write_text
from mtl_perception.data.bdd100k import DatasetError, SplitPaths
from mtl_perception.runtime.letterbox import compute_letterbox
from mtl_perception.training.anchors import DEFAULT_ANCHORS, anchor_fitness, fit_anchors
from mtl_perception.training.backbone import convention_mismatches, weights_convention
from mtl_perception.training.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    model_config_from_dict,
    model_config_to_dict,
    model_from_checkpoint,
    save_checkpoint,
)
from mtl_perception.training.config import RESUME_MAY_CHANGE, TrainConfig, recipe_changes, to_dict
from mtl_perception.training.dataset import MixedDataset, MixSampler, MultiTaskDataset, collate
from mtl_perception.training.history import EpochRecord, plot_history, read_history, write_history
from mtl_perception.training.loss import MultiTaskLoss
from mtl_perception.training.model import InputNormalizer, MultiTaskNet, build_model, default_config
from mtl_perception.training.validate import ValMetrics, evaluate, fitness, freeze

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Distributed:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _kmeans_anchors(datasets: list[MultiTaskDataset]) -> tuple:
    """Anchors fitted to the training boxes (of every dataset of a mix) as they appear after letterboxing."""
    sizes = []
    for dataset in datasets:
        first = dataset.split[0].image.shape
        lb = compute_letterbox(first[0], first[1], dataset.config.height, dataset.config.width)
        keep = [i is not None for f in dataset.split.frames for i in dataset.classes.target_ids(f)]
        boxes = np.concatenate([f.boxes for f in dataset.split.frames])[np.array(keep, dtype=bool)]
        sizes.append((boxes[:, 2:] - boxes[:, :2]) * lb.scale)
    wh = np.concatenate(sizes)
    anchors = fit_anchors(wh)
    log.info("k-means anchors %s: mean best IoU %.3f (defaults: %.3f)", anchors,
             anchor_fitness(wh, anchors), anchor_fitness(wh, DEFAULT_ANCHORS))
    return anchors


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms and fusion weights (1-D parameters)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _ema_average(decay: float, warmup_updates: float) -> Any:
    """EMA whose decay ramps up from 0 (YOLOv5's schedule), so early epochs validate a trained average."""
    def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        d = decay * (1 - math.exp(-float(num_averaged) / warmup_updates))
        return averaged * d + current * (1 - d)
    return average


def _lr_lambda(total_steps: int, warmup_steps: int, floor: float) -> Any:
    """Linear warm-up, then a cosine from 1 down to `floor` (fractions of the peak learning rate)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


def device_for(dist: Distributed) -> torch.device:
    """This process's GPU under torchrun (its local rank's), else the CPU."""
    return torch.device(f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu")


@dataclass
class TrainingParts:
    """What a run trains, on what data, and with what: the Trainer takes them as given, as torchvision's
    GeneralizedRCNN takes its backbone, rpn and heads. build_parts makes them from a TrainConfig."""

    model: MultiTaskNet
    train_set: MultiTaskDataset | MixedDataset
    sampler: DistributedSampler | MixSampler | None  # None: the loader shuffles
    train_loader: DataLoader
    val_loader: DataLoader
    criterion: MultiTaskLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: AveragedModel
    backbone_weights_used: str  # what the backbone really started from (recorded with the run)
    init_trained_on: str | None = None  # with --init-from: what the starting network learnt
    resume_state: dict[str, Any] | None = None  # last.pt, with --resume: restored by the Trainer


def build_parts(config: TrainConfig, dist: Distributed, device: torch.device) -> TrainingParts:
    """The model, data, loss, optimiser, schedule and EMA a TrainConfig describes, on `device`."""
    train_set = _training_set(config)
    val_set = _validation_set(config)
    sampler: DistributedSampler | MixSampler | None = None
    if isinstance(train_set, MixedDataset):
        sampler = MixSampler([len(p) for p in train_set.datasets], [config.data_weight, *(m.weight for m in config.mix)],
                             config.seed, dist.rank, dist.world_size)
    elif dist.enabled:
        sampler = DistributedSampler(train_set, seed=config.seed)
    state = _resume_state(config)
    class_names = train_set.classes.names
    if state is not None:
        model_config = model_config_from_dict(state["model_config"])
        check_compatible(model_config, config.out / "last.pt", config.backbone, len(class_names))
        model = build_model(model_config, backbone_weights=None)
        weights_used = str(state.get("backbone_weights_used", "unrecorded"))
    elif config.init_from is not None:
        model = model_from_checkpoint(Path(config.init_from), expect_backbone=config.backbone,
                                      expect_classes=len(class_names))
        if tuple(model.config.class_names) != tuple(class_names):
            raise CheckpointError(f"--init-from {config.init_from} was trained for the classes "
                                  f"{', '.join(model.config.class_names)}; the data has {', '.join(class_names)}")
        weights_used = f"{config.init_from} (--init-from: the whole network)"
        if dist.is_main:
            taken = model.config
            log.info("from --init-from: backbone %s, neck_repeats %d, normalization %s, frozen backbone BatchNorm %s, "
                     "segmentation heads %s (the checkpoint's; --neck-repeats, --normalization, --frozen-backbone-bn, "
                     "--seg-head and --anchors do not apply)", taken.backbone, taken.neck_repeats, taken.normalization,
                     taken.frozen_backbone_bn, taken.seg_head)
    else:
        anchors = _kmeans_anchors(_sources(train_set)) if config.anchors == "kmeans" else DEFAULT_ANCHORS
        model_config = default_config(config.backbone, class_names, anchors, config.normalization,
                                      config.frozen_backbone_bn, config.seg_head)
        if config.neck_repeats is not None:
            model_config = dataclasses.replace(model_config, neck_repeats=config.neck_repeats)
        model = build_model(model_config, backbone_weights=config.backbone_weights)
        weights_used = str(model.backbone.weights_used)
        if dist.is_main and config.backbone_weights not in ("imagenet", "none"):
            convention = weights_convention(Path(config.backbone_weights))
            for problem in convention_mismatches(convention, config.normalization, config.frozen_backbone_bn) \
                    if convention is not None else []:
                log.warning("%s", problem)
    if dist.is_main:
        _warn_dropped_categories(train_set)
    init_trained_on = None
    if config.init_from is not None:  # (a resumed fine-tune too)
        init_trained_on = str(load_checkpoint(Path(config.init_from)).get("trained_on", "unrecorded data"))
    if dist.is_main and state is None:
        log.info("backbone starts from %s", weights_used)
    model.to(device)
    if channels_last(config, device):
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    train_loader = DataLoader(train_set, config.batch, shuffle=sampler is None, sampler=sampler,
                              num_workers=config.workers, collate_fn=collate, drop_last=len(train_set) > config.batch,
                              persistent_workers=config.workers > 0)
    steps_per_epoch = max(len(train_loader), 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(
        config.epochs * steps_per_epoch, int(config.warmup_epochs * steps_per_epoch), config.lr_floor))
    return TrainingParts(
        model=model, train_set=train_set, sampler=sampler, train_loader=train_loader,
        val_loader=DataLoader(val_set, config.batch, num_workers=config.workers, collate_fn=collate),
        criterion=MultiTaskLoss(model.anchors, model.config.num_classes, config.loss).to(device),
        optimizer=optimizer, scheduler=scheduler,
        ema=AveragedModel(model, avg_fn=_ema_average(config.ema_decay, config.ema_warmup), use_buffers=True),
        backbone_weights_used=weights_used, init_trained_on=init_trained_on, resume_state=state)


def _warn_dropped_categories(train_set: MultiTaskDataset | MixedDataset) -> None:
    """Boxes whose category is no det_20 class (a typo, another data set's name, null) take no part in the
    loss: said once, with the counts, rather than left for check-data to find."""
    parts = train_set.datasets if isinstance(train_set, MixedDataset) else [train_set]
    for part in parts:
        assert isinstance(part, MultiTaskDataset)
        dropped = Counter("null" if c is None else str(c) for frame in part.split.frames for c in frame.unknown)
        if dropped:
            listed = ", ".join(f"{name!r} x{count}" for name, count in dropped.most_common(5))
            log.warning("%s: %d box label(s) of categories that are no BDD100K detection class are left out of "
                        "training: %s%s (check-data lists them)", part.split.paths.det_json, sum(dropped.values()),
                        listed, ", ..." if len(dropped) > 5 else "")


def _validation_set(config: TrainConfig) -> MultiTaskDataset:
    """The first --data's val split: every epoch is validated on it, and best.pt chosen by it."""
    val = SplitPaths(config.data.root, "val")
    if not val.images.is_dir() and not val.det_json.exists():
        raise DatasetError(f"{config.data.root} has no val split ({val.images} and {val.det_json} do not exist): "
                           "training validates every epoch on the first --data's val split. Label frames the run "
                           "does not train on into it (`mtl-perception pseudo-label --split val --input OTHER_CLIP "
                           f"--out {config.data.root}`), or give a --data that has one first")
    return MultiTaskDataset(config.data, "val")


def _training_set(config: TrainConfig) -> MultiTaskDataset | MixedDataset:
    first = MultiTaskDataset(config.data, "train", config.augment, seed=config.seed)
    if not config.mix:
        return first
    others = [MultiTaskDataset(dataclasses.replace(config.data, root=m.root), "train", config.augment,
                               seed=config.seed) for m in config.mix]
    return MixedDataset([first, *others])


def _sources(train_set: MultiTaskDataset | MixedDataset) -> list[MultiTaskDataset]:
    return train_set.datasets if isinstance(train_set, MixedDataset) else [train_set]


def _resume_state(config: TrainConfig) -> dict[str, Any] | None:
    if not config.resume:
        return None
    last = config.out / "last.pt"
    if not last.is_file():
        raise CheckpointError(f"--resume: no {last} to resume from; start without --resume")
    state = load_checkpoint(last)
    _check_recipe(config, state)
    return state


def _check_recipe(config: TrainConfig, state: dict[str, Any]) -> None:
    """A resumed run is the same run: refuse a changed recipe (naming the field), allow and log the rest."""
    saved = state.get("train_config")
    if not isinstance(saved, dict):
        return  # a checkpoint from before train_config was stored: nothing to compare
    changes = recipe_changes(saved, to_dict(config))
    refused = [c for c in changes if c[0].split(".")[0] not in RESUME_MAY_CHANGE]
    if refused:
        listed = "; ".join(f"{name} {old!r} -> {new!r}" for name, old, new in refused)
        raise CheckpointError(f"--resume would change the run in {config.out}: {listed}. Resume with the run's "
                              "own options (its config.json), or start a new run in another --out")
    done = int(state["epoch"]) + 1
    if config.epochs < done:
        raise CheckpointError(f"--resume: --epochs {config.epochs}, but the run has done {done} epochs")
    for name, old, new in changes:
        log.info("resuming with %s %r -> %r%s", name, old, new,
                 ": the learning-rate schedule stretches from here" if name == "epochs" else "")


class Trainer:
    """Trains the given parts as the TrainConfig says: epochs, schedule, checkpoints, validation, DDP."""

    def __init__(self, config: TrainConfig, parts: TrainingParts, dist: Distributed | None = None,
                 device: torch.device | None = None, progress: bool = True, logs: bool = True) -> None:
        """logs: write TensorBoard's events under out (False: a measurement that must write nothing)."""
        self.config, self.parts, self.progress = config, parts, progress
        self.dist = dist or Distributed()
        self.device = device or torch.device("cpu")
        self.amp = self.device.type == "cuda"  # mixed precision wherever there is a GPU
        self.out = config.out
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.model, self.train_set, self.sampler = parts.model, parts.train_set, parts.sampler
        self.train_loader, self.val_loader = parts.train_loader, parts.val_loader
        self.normalize = InputNormalizer(self.model.config.normalization).to(self.device)
        self.criterion, self.optimizer, self.scheduler, self.ema = \
            parts.criterion, parts.optimizer, parts.scheduler, parts.ema
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.backbone_weights_used = parts.backbone_weights_used
        self.start_epoch, self.best = 0, -1.0
        # a run stopped inside an epoch: the steps of start_epoch already taken, and their summed losses
        self.resume_steps, self.resume_totals = 0, dict[str, float]()
        self.history = read_history(self.out / "history.csv") if parts.resume_state else []
        if parts.resume_state is not None:
            self._load_state(parts.resume_state)
        self.writer = SummaryWriter(str(self.out / "tensorboard")) if self.dist.is_main and logs else None

    @classmethod
    def from_config(cls, config: TrainConfig, progress: bool = True, logs: bool = True) -> Trainer:
        """Join torchrun's process group (if any), seed, and train the parts the config describes."""
        dist = init_distributed()
        _seed_everything(config.seed + dist.rank)
        device = device_for(dist)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        return cls(config, build_parts(config, dist, device), dist, device, progress, logs)

    def _trained_on(self) -> str:
        # a description, not a path: it ends up in the ONNX metadata that ships to other machines
        parts = _sources(self.train_set)
        if len(parts) == 1:
            data = f"{self.config.data.root.name} ({len(self.train_set)} training frames)"
        else:
            weights = [self.config.data_weight, *(m.weight for m in self.config.mix)]
            data = " + ".join(f"{p.config.root.name} ({len(p)} frames, weight {w:g})"
                              for p, w in zip(parts, weights, strict=True))
        init = self.parts.init_trained_on
        return data if init is None else f"{data}, fine-tuned from a network trained on {init}"

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema_full"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.best = state["epoch"] + 1, state["best"]
        _restore_rng(state["rng"][min(self.dist.rank, len(state["rng"]) - 1)])
        partial = state.get("partial")
        if partial:
            self.resume_steps, self.resume_totals = int(partial["steps"]), dict(partial["totals"])
        if self.start_epoch >= self.config.epochs:
            log.info("resumed from %s: its %d epochs are done", self.last_path, self.config.epochs)
        else:
            log.info("resumed from %s at epoch %d%s", self.last_path, self.start_epoch + 1,
                     f", step {self.resume_steps + 1}" if self.resume_steps else "")

    def _state(self, epoch: int, rng: list[dict[str, Any]], partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """epoch: the last one finished; rng: the random states as the next epoch starts; partial: the steps
        of that next epoch taken so far (a save inside it)."""
        return {
            "partial": partial,
            "model_config": model_config_to_dict(self.model.config),
            "train_config": to_dict(self.config),
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict(),
            "ema_full": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "best": self.best,
            "rng": rng,
            "trained_on": self._trained_on(),
            "backbone_weights_used": self.backbone_weights_used,
        }

    def _gather_rng(self) -> list[dict[str, Any]]:
        state = _rng_state()
        if not self.dist.enabled:
            return [state]
        gathered: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def _ema_model(self) -> MultiTaskNet:
        model = self.ema.module
        assert isinstance(model, MultiTaskNet)
        return model

    def _wrapped(self) -> nn.Module:
        if not self.dist.enabled:
            return self.model
        return DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def fit(self) -> ValMetrics | None:
        """Train; the last validation's metrics (None on ranks other than the main one)."""
        config = self.config
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            # what the backbone really started from beside what was asked: an offline 'imagenet' is random
            # and what the network really is: with --init-from, the checkpoint's, whatever the options said
            model = self.model.config
            recorded = {**to_dict(config), "backbone_weights_used": self.backbone_weights_used,
                        "backbone": model.backbone, "neck_repeats": model.neck_repeats,
                        "normalization": model.normalization, "frozen_backbone_bn": model.frozen_backbone_bn,
                        "model_config": model_config_to_dict(model)}
            atomic_write_text(self.out / "config.json", json.dumps(recorded, indent=2))
        segmentation = self.start_epoch < config.segmentation_epochs
        if not segmentation:
            freeze(self.model.segmentation_modules())
        net = self._wrapped()
        metrics: ValMetrics | None = None
        for epoch in range(self.start_epoch, config.epochs):
            if segmentation and epoch >= config.segmentation_epochs:
                segmentation = False
                freeze(self.model.segmentation_modules())
                net = self._wrapped()  # DDP must learn which parameters still take gradients
                log.info("epoch %d: segmentation heads frozen, detection trains alone", epoch)
            # the random states as this epoch starts, which a save inside it records: a resumed run restores
            # them and draws the same order of batches again
            epoch_rng = self._gather_rng()
            losses = self._train_epoch(net, epoch, segmentation, epoch_rng)
            validate = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
            if self.dist.is_main and validate:
                metrics = evaluate(self._ema_model(), self.val_loader, self.device, self.progress)
            # after validation: every DataLoader iterator draws a seed from the global RNG, so a state
            # taken earlier would make a resumed run shuffle differently from an uninterrupted one
            rng = self._gather_rng()
            if self.dist.is_main:
                val = None
                if validate and metrics is not None:  # the main rank validated this epoch
                    score = fitness(metrics)
                    val = {"map50": metrics["det"]["map50"], "map50_95": metrics["det"]["map50_95"],
                           "drivable_miou": metrics["drivable"]["miou"], "lane_iou": metrics["lane"]["iou"],
                           "fitness": score}
                    if score > self.best:
                        self.best = score
                        save_checkpoint(self._state(epoch, rng), self.best_path)
                save_checkpoint(self._state(epoch, rng), self.last_path)
                self._log(EpochRecord(epoch, self.optimizer.param_groups[0]["lr"], losses, val))
            if self.dist.enabled:
                dist.barrier()
        if self.writer is not None:
            self.writer.close()
        return metrics

    def _train_epoch(self, net: nn.Module, epoch: int, segmentation: bool,
                     epoch_rng: list[dict[str, Any]]) -> dict[str, float]:
        self.model.train()
        if not segmentation:
            for module in self.model.segmentation_modules():
                module.eval()  # frozen batch norm statistics
        self.train_set.set_epoch(epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        skip = self.resume_steps if epoch == self.start_epoch else 0
        totals: dict[str, float] = dict(self.resume_totals) if skip else {}
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.config.epochs}",
                   disable=not (self.progress and self.dist.is_main), leave=False)
        started, frames = time.perf_counter(), 0
        saved = time.monotonic()
        for step, batch in enumerate(bar):
            if step < skip:
                # taken before the run stopped: drawn again, so that the order and every later sample's
                # augmentation are the uninterrupted run's, but not trained on twice
                continue
            for k, v in self._step(net, batch, segmentation).items():
                totals[k] = totals.get(k, 0.0) + v
            frames += len(batch["image"])
            bar.set_postfix(loss=f"{totals['total'] / (step + 1):.3f}")
            period = 60.0 * self.config.save_every_min
            if self.dist.is_main and period > 0 and time.monotonic() - saved >= period \
                    and step + 1 < len(self.train_loader):
                partial = {"epoch": epoch, "steps": step + 1, "totals": totals}
                save_checkpoint(self._state(epoch - 1, epoch_rng, partial), self.last_path)
                saved = time.monotonic()
        means = {k: v / max(len(self.train_loader), 1) for k, v in totals.items()}
        # this process's frames (each DDP rank counts its own), data loading included
        return {**means, "frames_per_s": frames / max(time.perf_counter() - started, 1e-9)}

    def _step(self, net: nn.Module, batch: dict[str, Tensor], segmentation: bool) -> dict[str, float]:
        """One optimiser step on a batch; the loss parts."""
        images = self.normalize(batch["image"].to(self.device, non_blocking=True))
        if channels_last(self.config, self.device):
            images = images.contiguous(memory_format=torch.channels_last)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs = net(images)
        loss, parts = self.criterion(_to_float32(outputs), batch, with_segmentation=segmentation)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.ema.update_parameters(self.model)
        return parts

    def measure(self, steps: int, warm_up: int = 2) -> dict[str, float]:
        """Training throughput: `steps` optimiser steps of the first epoch timed after `warm_up` (the model,
        optimiser and checkpoints as they are then are thrown away). frames_per_s, and the share of the time
        spent waiting for the data loader."""
        net = self._wrapped()
        self.model.train()
        self.train_set.set_epoch(0)
        batches = iter(self.train_loader)
        waited = computed = 0.0
        frames = 0
        for index in range(warm_up + steps):
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(self.train_loader)
                batch = next(batches)
            loaded = time.perf_counter()
            self._step(net, batch, segmentation=True)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if index >= warm_up:
                waited += loaded - start
                computed += time.perf_counter() - loaded
                frames += len(batch["image"])
        total = waited + computed
        return {"frames_per_s": frames / total, "data_wait_share": waited / total, "steps": float(steps),
                "batch": float(self.config.batch), "threads": float(torch.get_num_threads()),
                "workers": float(self.config.workers), "channels_last": float(channels_last(self.config, self.device))}

    def _log(self, record: EpochRecord) -> None:
        self.history = [r for r in self.history if r.epoch < record.epoch] + [record]
        write_history(self.history, self.out / "history.csv")
        plot_history(self.history, self.out / "curves.png")
        row = record.row()
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, int(row["epoch"]))
        summary = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("val/") or k == "train/total")
        print(f"epoch {int(row['epoch']) + 1}/{self.config.epochs}: {summary}", flush=True)


def _to_float32(outputs: dict[str, Any]) -> dict[str, Any]:
    return {k: [t.float() for t in v] if isinstance(v, list) else v.float() for k, v in outputs.items()}


def channels_last(config: TrainConfig, device: torch.device) -> bool:
    """Whether the network runs in NHWC: as configured, else where there is a GPU."""
    return config.channels_last if config.channels_last is not None else device.type == "cuda"


def measure_throughput(config: TrainConfig, steps: int) -> dict[str, float]:
    """train --measure-steps: the frames per second of training as configured, writing nothing."""
    trainer = Trainer.from_config(config, progress=False, logs=False)
    return trainer.measure(steps)


def train(config: TrainConfig, progress: bool = True) -> ValMetrics | None:
    """Train and return the last validation metrics (rank 0; other ranks return None)."""
    trainer = Trainer.from_config(config, progress)
    try:
        return trainer.fit()
    finally:
        if trainer.dist.enabled:
            dist.destroy_process_group()

