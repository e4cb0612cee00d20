"""The training command: schedule, checkpoints, resume, DDP and bad input."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtl_perception.training.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from mtl_perception.training.config import TrainConfig, load_yaml_overrides
from mtl_perception.training.dataset import DataConfig
from mtl_perception.training.trainer import Trainer, train


def _config(data: Path, out: Path, **kwargs) -> TrainConfig:
    base = {"backbone_weights": "none", "batch": 4, "epochs": 2, "seg_epochs": 1, "workers": 0, "lr": 2e-3}
    base.update(kwargs)
    return TrainConfig(DataConfig(data, height=128, width=192), out, **base)


def _train_until_killed(patch: str, data: Path, out: Path, options: str = "") -> subprocess.CompletedProcess:
    """_config's run (two epochs) in a child process whose trainer `patch` (Python source setting up `t`, the
    trainer module) makes die part-way."""
    script = patch + (
        "from mtl_perception.training.config import TrainConfig\n"
        "from mtl_perception.training.dataset import DataConfig\n"
        f"cfg = TrainConfig(DataConfig(Path({str(data)!r}), height=128, width=192), Path({str(out)!r}),"
        f" backbone_weights='none', batch=4, epochs=2, seg_epochs=1, workers=0, lr=2e-3{options})\n"
        "t.train(cfg, progress=False)\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


@pytest.fixture(scope="module")
def two_epochs(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run_straight")
    train(_config(tiny_set, out), progress=False)
    return out


def test_run_outputs(two_epochs: Path) -> None:
    for name in ("last.pt", "best.pt", "history.csv", "curves.png", "config.json"):
        assert (two_epochs / name).is_file(), name
    assert any((two_epochs / "tensorboard").iterdir())
    rows = list(csv.DictReader((two_epochs / "history.csv").open()))
    assert [float(r["epoch"]) for r in rows] == [0.0, 1.0]
    assert "val/map50" in rows[0] and "train/seg" in rows[0]
    assert rows[1]["train/seg"] == ""  # epoch 2 trains detection alone


def test_frozen_phase_trains_detection_only(tiny_set: Path, tmp_path: Path) -> None:
    trainer = Trainer.from_config(_config(tiny_set, tmp_path, epochs=1, seg_epochs=0), progress=False)
    seg_before = {k: v.clone() for k, v in trainer.model.lane_head.state_dict().items()}
    det_before = {k: v.clone() for k, v in trainer.model.det_head.state_dict().items()}
    trainer.fit()
    # weights and batch-norm running statistics of the frozen heads stay put
    for key, value in trainer.model.lane_head.state_dict().items():
        torch.testing.assert_close(value, seg_before[key], msg=key)
    assert any(not torch.equal(v, det_before[k]) for k, v in trainer.model.det_head.state_dict().items())
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert not rows[0].get("train/seg") and float(rows[0]["train/det"]) > 0


def test_resume_matches_uninterrupted(tiny_set: Path, two_epochs: Path, tmp_path: Path) -> None:
    """Kill after epoch 1 of 2, resume: the final weights equal those of the uninterrupted run."""
    script = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from pathlib import Path\n"
        "from mtl_perception.training import trainer as t\n"
        "orig = t.Trainer._log\n"
        "def log_then_die(self, record):\n"
        "    orig(self, record)\n"
        "    if record.epoch == 0: raise SystemExit(9)\n"
        "t.Trainer._log = log_then_die\n"
    )
    killed = _train_until_killed(script, tiny_set, tmp_path)
    assert killed.returncode == 9, killed.stderr
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 0
    train(_config(tiny_set, tmp_path, resume=True), progress=False)
    resumed, straight = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(two_epochs / "last.pt")
    assert resumed["epoch"] == straight["epoch"] == 1
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, msg=key)
    for key, value in straight["ema"].items():
        torch.testing.assert_close(resumed["ema"][key], value, msg=key)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["epoch"]) for r in rows] == [0.0, 1.0]



def test_a_run_stopped_inside_an_epoch_resumes_at_its_step(tiny_set: Path, two_epochs: Path, tmp_path: Path) -> None:
    """Stopped in the middle of epoch 2 (after a save inside it): resumed, it trains the rest of that epoch only,
    and ends with the uninterrupted run's weights."""
    script = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from pathlib import Path\n"
        "from mtl_perception.training import trainer as t\n"
        "orig, calls = t.Trainer._step, []\n"
        "def step_then_die(self, *a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 4: raise SystemExit(9)\n"  # epoch 2's second step: its first was saved
        "    return orig(self, *a, **k)\n"
        "t.Trainer._step = step_then_die\n"
    )
    killed = _train_until_killed(script, tiny_set, tmp_path, ", save_every_min=1e-9")
    assert killed.returncode == 9, killed.stderr
    kept = load_checkpoint(tmp_path / "last.pt")
    assert kept["epoch"] == 0 and kept["partial"]["epoch"] == 1 and kept["partial"]["steps"] == 1
    trainer = Trainer.from_config(_config(tiny_set, tmp_path, resume=True), progress=False)
    steps = []
    original = trainer._step

    def counted(*args, **kwargs):
        steps.append(1)
        return original(*args, **kwargs)

    trainer._step = counted  # type: ignore[method-assign]
    trainer.fit()
    assert len(steps) == 1  # epoch 2 has two steps; the first was taken before the stop
    resumed, straight = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(two_epochs / "last.pt")
    assert resumed["epoch"] == straight["epoch"] == 1 and resumed["partial"] is None
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, msg=key)
    for key, value in straight["ema"].items():
        torch.testing.assert_close(resumed["ema"][key], value, msg=key)
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["epoch"]) for r in rows] == [0.0, 1.0]


def test_ddp_two_processes_gloo(tiny_set: Path, tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # its own process group: on a timeout the workers go too, not only torchrun
    process = subprocess.Popen(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "mtl_perception.cli", "train",
         "--data", str(tiny_set), "--out", str(tmp_path), "--img-size", "128x192", "--batch", "2",
         "--epochs", "2", "--seg-epochs", "1", "--backbone-weights", "none", "--workers", "0", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and len(state["rng"]) == 2  # one RNG state per rank
    assert result.stdout.count("epoch 2/2") == 1  # only rank 0 logs


def test_checkpoint_errors(two_epochs: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="holds a mobilenetv2 model, but backbone resnet50"):
        model_from_checkpoint(two_epochs / "last.pt", expect_backbone="resnet50")
    with pytest.raises(CheckpointError, match="trained for 10 classes, but the data has 1"):
        model_from_checkpoint(two_epochs / "last.pt", expect_classes=1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((two_epochs / "last.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_resume_other_backbone_refused(tiny_set: Path, two_epochs: Path, tmp_path: Path) -> None:
    shutil.copy(two_epochs / "last.pt", tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="backbone 'mobilenetv2' -> 'resnet50'"):
        train(_config(tiny_set, tmp_path, backbone="resnet50", resume=True), progress=False)


def test_resume_refuses_a_changed_recipe_and_takes_more_epochs(tiny_set: Path, two_epochs: Path,
                                                               tmp_path: Path) -> None:
    shutil.copy(two_epochs / "last.pt", tmp_path / "last.pt")
    shutil.copy(two_epochs / "history.csv", tmp_path / "history.csv")
    with pytest.raises(CheckpointError, match="batch 4 -> 2"):
        train(_config(tiny_set, tmp_path, batch=2, resume=True), progress=False)
    with pytest.raises(CheckpointError, match=r"data\.height 128 -> 96"):
        train(TrainConfig(DataConfig(tiny_set, height=96, width=192), tmp_path, backbone_weights="none", batch=4,
                          epochs=2, seg_epochs=1, workers=0, lr=2e-3, resume=True), progress=False)
    with pytest.raises(CheckpointError, match="has done 2 epochs"):
        train(_config(tiny_set, tmp_path, epochs=1, seg_epochs=1, resume=True), progress=False)
    train(_config(tiny_set, tmp_path, epochs=3, resume=True), progress=False)  # more epochs: allowed
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--img-size", "250x384"], "not divisible by 32"),
        (["--epochs", "2", "--seg-epochs", "5"], "seg-epochs <= epochs"),
        (["--resume"], "no "),
    ],
)
def test_cli_bad_input(tiny_set: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", "--data", str(tiny_set),
                             "--out", str(tmp_path / "run"), "--backbone-weights", "none", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_cli_empty_and_malformed_dataset(tmp_path: Path) -> None:
    for folder in ("labels/det_20", "labels/drivable/masks/train", "labels/lane/masks/train"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "labels/det_20/det_train.json").write_text("[]")
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", "--data", str(tmp_path),
                             "--out", str(tmp_path / "run"), "--backbone-weights", "none"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "lists no frames" in result.stderr
    (tmp_path / "labels/det_20/det_train.json").write_text("[{]")
    result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", "--data", str(tmp_path),
                             "--out", str(tmp_path / "run"), "--backbone-weights", "none"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_neck_repeats_option(tiny_set: Path, tmp_path: Path) -> None:
    trainer = Trainer.from_config(_config(tiny_set, tmp_path, epochs=1, seg_epochs=1, neck_repeats=1), progress=False)
    assert trainer.model.config.neck_repeats == 1 and len(trainer.model.neck.layers) == 1


def test_yaml_config_refuses_typos(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  alpah: 2.0\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_yaml_overrides(path)
    path.write_text("loss:\n  alpha: 2.0\n  level_balance: [1.0, 1.0, 1.0]\naugment:\n  flip: 0.0\n")
    values = load_yaml_overrides(path)
    assert values["loss"].alpha == 2.0 and values["loss"].level_balance == (1.0, 1.0, 1.0)
    assert values["augment"].flip == 0.0


def test_config_file_loss_weights_are_not_overwritten_by_unset_options(tmp_path: Path) -> None:
    """--alpha/--beta used to default to 1.0 and always replace the --config file's loss weights."""
    from mtl_perception.cli import build_parser
    from mtl_perception.commands.train import config_from_args
    from mtl_perception.training.config import TrainConfig

    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("loss:\n  alpha: 2.0\n  beta: 0.5\n")
    parser = build_parser("train")
    base = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(yaml_file)]
    config = config_from_args(parser.parse_args(base))
    assert (config.loss.alpha, config.loss.beta) == (2.0, 0.5)
    config = config_from_args(parser.parse_args([*base, "--alpha", "3"]))
    assert (config.loss.alpha, config.loss.beta) == (3.0, 0.5)  # an option given wins
    # unset options take TrainConfig's defaults, written once in training/config.py
    plain = config_from_args(parser.parse_args(base[:5]))
    defaults = TrainConfig(data=plain.data, out=plain.out)
    assert (plain.epochs, plain.seg_epochs, plain.lr, plain.batch, plain.backbone_weights) == \
        (defaults.epochs, defaults.seg_epochs, defaults.lr, defaults.batch, defaults.backbone_weights)


def test_init_from_starts_a_new_run_from_the_checkpoints_network(tiny_set: Path, two_epochs: Path,
                                                                 tmp_path: Path) -> None:
    """Fine-tuning: the network (its anchors, EMA weights) comes from the checkpoint, the schedule and history
    start afresh, and config.json says where the weights came from."""
    import json

    source = load_checkpoint(two_epochs / "best.pt")
    trainer = Trainer.from_config(_config(tiny_set, tmp_path, epochs=1, init_from=str(two_epochs / "best.pt"),
                              anchors="kmeans"), progress=False)  # kmeans is not fitted: the anchors come along
    assert trainer.model.config.anchors == model_from_checkpoint(two_epochs / "best.pt").config.anchors
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, source["ema"][key], msg=key)
    trainer.fit()
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["epoch"]) for r in rows] == [0.0]
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["init_from"] == str(two_epochs / "best.pt") and "--init-from" in recorded["backbone_weights_used"]
    assert ", fine-tuned from a network trained on " in load_checkpoint(tmp_path / "last.pt")["trained_on"]
    with pytest.raises(CheckpointError, match="trained for 10 classes"):
        Trainer.from_config(_with_vehicle_classes(_config(tiny_set, tmp_path / "v", init_from=str(two_epochs / "best.pt"))),
                progress=False)


def _with_vehicle_classes(config: TrainConfig) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, data=dataclasses.replace(config.data, class_set="vehicle"))


def test_broken_inputs_of_a_run_are_one_line_errors(tiny_set: Path, two_epochs: Path, tmp_path: Path) -> None:
    """A --config that is not YAML, --backbone-weights that are no state_dict, and --resume over a history.csv
    that is not the trainer's: each one line through the real CLI, exit 2, no traceback."""
    (tmp_path / "broken.yaml").write_text("loss: [1, 2\n")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copy(two_epochs / "last.pt", resumed / "last.pt")
    (resumed / "history.csv").write_text("epoch,lr\nzero,one\n")
    common = ["--data", str(tiny_set), "--img-size", "128x192", "--batch", "4", "--epochs", "2", "--seg-epochs", "1",
              "--workers", "0", "--lr", "2e-3"]
    cases = [
        (["--out", str(tmp_path / "a"), "--config", str(tmp_path / "broken.yaml"), "--backbone-weights", "none"],
         "is not valid YAML at line 2"),
        (["--out", str(tmp_path / "b"), "--backbone-weights", str(tmp_path / "list.pth")], "holds a list, not a state_dict"),
        (["--out", str(tmp_path / "c"), "--backbone-weights", str(tmp_path / "text.pth")], "cannot be read as a torch state_dict"),
        (["--out", str(resumed), "--resume", "--backbone-weights", "none"], "is not a training history"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "mtl_perception.cli", "train", *common, *args],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert message in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_trainer_trains_the_parts_it_is_given(tiny_set: Path, tmp_path: Path) -> None:
    """Parts are passed in, as torchvision's GeneralizedRCNN takes its backbone and heads: an optimiser of the
    caller's (SGD at learning rate 0) is the one that steps, so no weight moves."""
    from mtl_perception.training.trainer import Distributed, build_parts

    config = _config(tiny_set, tmp_path, epochs=1, seg_epochs=1)
    parts = build_parts(config, Distributed(), torch.device("cpu"))
    parts.optimizer = torch.optim.SGD(parts.model.parameters(), lr=0.0)
    parts.scheduler = torch.optim.lr_scheduler.LambdaLR(parts.optimizer, lambda step: 1.0)
    before = {k: v.clone() for k, v in parts.model.named_parameters()}
    Trainer(config, parts, progress=False).fit()
    for name, value in parts.model.named_parameters():
        torch.testing.assert_close(value, before[name], msg=name)


def test_learning_rate_schedule_warms_up_then_ends_at_the_configured_floor() -> None:
    from mtl_perception.training.trainer import _lr_lambda

    factor = _lr_lambda(total_steps=110, warmup_steps=10, floor=0.2)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)  # the cosine starts at the peak
    assert factor(60) == pytest.approx(0.2 + 0.8 * 0.5)  # half way: cos(pi / 2) = 0
    assert factor(110) == pytest.approx(0.2) and factor(500) == pytest.approx(0.2)


def test_init_from_records_the_checkpoints_network_not_the_options(tiny_set: Path, two_epochs: Path,
                                                                   tmp_path: Path) -> None:
    """Issue 34 item 21: --init-from with other --neck-repeats and --normalization ran the checkpoint's network
    and recorded the asked-for values in config.json."""
    import json

    source = model_from_checkpoint(two_epochs / "best.pt").config
    asked = _config(tiny_set, tmp_path, epochs=1, init_from=str(two_epochs / "best.pt"),
                    neck_repeats=source.neck_repeats + 1, normalization="unit", frozen_backbone_bn=True)
    trainer = Trainer.from_config(asked, progress=False)
    trainer.fit()
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert (recorded["neck_repeats"], recorded["normalization"], recorded["frozen_backbone_bn"]) == \
        (source.neck_repeats, source.normalization, source.frozen_backbone_bn) == \
        (trainer.model.config.neck_repeats, trainer.model.config.normalization, trainer.model.config.frozen_backbone_bn)
    assert recorded["model_config"]["neck_repeats"] == source.neck_repeats


def test_labels_of_unknown_categories_are_said_at_the_start(tiny_set: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Issue 34 item 21: boxes of unknown or null categories were dropped in silence (only check-data said so)."""
    import json

    data = tmp_path / "data"
    shutil.copytree(tiny_set, data)
    det = data / "labels" / "det_20" / "det_train.json"
    frames = json.loads(det.read_text())
    box = {"x1": 1.0, "y1": 1.0, "x2": 20.0, "y2": 20.0}
    frames[0]["labels"] += [{"category": "vehicle", "box2d": box}, {"category": None, "box2d": box},
                            {"category": "vehicle", "box2d": box}]
    det.write_text(json.dumps(frames))
    with caplog.at_level("WARNING", logger="mtl_perception.training.trainer"):
        Trainer.from_config(_config(data, tmp_path / "run", epochs=1), progress=False)
    [line] = [r.getMessage() for r in caplog.records if "left out of training" in r.getMessage()]
    assert "3 box label(s) of categories that are no BDD100K detection class" in line
    assert "'vehicle' x2, 'null' x1" in line and "check-data" in line
