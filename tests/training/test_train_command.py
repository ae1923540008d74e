import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import command_here
from tfalign import cli
from tfalign.evaluate import main as evaluate_main
from tfalign.train import main as train_main  # the command (tfalign.train is the function)
from tfalign.configs import PAPER_PARAMETER_COUNTS
from tfalign.experiments import EXPERIMENTS, PAPER_EXPERIMENTS, RECIPES, STAGES

pytestmark = pytest.mark.large  # subprocesses, servers or training runs

QUICK = ["--dataset", "synthetic", "--batch-size", "8", "--max-steps-per-epoch", "2", "--no-export"]


def run_cli(*args, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, env=env)


def config_of(out: str) -> dict:
    """The resolved config a --dry-run prints (between its run-folder line and the parameter count)."""
    return json.loads(out[out.index("{"): out.rindex("}") + 1])


def test_list_shows_the_thirteen_and_the_recipes_apart(capsys):
    assert train_main(["--list"]) == 0
    out = capsys.readouterr().out
    paper, rest = out.split("Stages the paper's experiments train first")
    stages, recipes = rest.split("tfalign's own recipes")
    rows = lambda text: {line.split()[0]: line for line in text.splitlines()
                         if line.startswith("  ") and not line.split()[0] == "experiment"}
    assert set(rows(paper)) == set(PAPER_EXPERIMENTS) and len(PAPER_EXPERIMENTS) == 13
    assert "they end at or near the level of calling every clip unmatched" in paper  # and say so
    assert set(rows(stages)) == set(STAGES) and set(rows(recipes)) == set(RECIPES)
    assert set(rows(paper)) | set(rows(stages)) | set(rows(recipes)) == set(EXPERIMENTS)
    # The README's columns: features, optimizer, normalization, learning rate.
    assert "features" in out and "optimizer" in out and "normalization" in out
    assert rows(paper)["rp_lars_sbn"].split()[1:6] == ["RP", "300/300", "AdamLARS", "SBN", "0.007"]
    assert rows(paper)["full_adam"].split()[1:6] == ["Full", "2048/768", "Adam", "none", "0.001"]


def test_dry_run_names_the_run_folder(capsys, tmp_path):
    assert train_main(["--experiment", "rp_lars_sbn", "--dry-run", "--epochs", "3"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    # Readable: the experiment, the changed options but --epochs, a hash that leaves --epochs out.
    assert re.fullmatch(r"run folder: runs/rp_lars_sbn-[0-9a-f]{8}", first)
    assert train_main(["--experiment", "rp_lars_sbn", "--dry-run", "--epochs", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == first
    assert train_main(["--experiment", "rp_lars_sbn", "--dry-run", "--seed", "1", "--lr", "0.005",
                       "--difficulty", "0.8"]) == 0
    assert re.fullmatch(r"run folder: runs/rp_lars_sbn-lr0.005_seed1_difficulty0.8-[0-9a-f]{8}",
                        capsys.readouterr().out.splitlines()[0])
    assert train_main(["--experiment", "rp_lars_sbn", "--dry-run", "--output-dir", str(tmp_path / "x")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"run folder: {tmp_path / 'x'}"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_dry_run_of_a_recipe(name, capsys):
    assert train_main(["--experiment", name, "--dry-run", "--set", "stack_dropout=0.1"]) == 0
    out = capsys.readouterr().out
    config = config_of(out)
    assert config["family"] == "tfalign" and config["model"]["stack_dropout"] == 0.1
    assert "paper code" not in out


@pytest.mark.parametrize("name", sorted(PAPER_EXPERIMENTS))
def test_dry_run_prints_the_paper_values_and_parameter_count(name, capsys):
    assert train_main(["--experiment", name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    config = config_of(out)
    experiment = EXPERIMENTS[name]
    assert config["optimizer"]["learning_rate"] == experiment.optimizer.learning_rate
    assert config["trainer"]["batch_size"] == 32 and config["trainer"]["epochs"] == 350
    assert config["schedule"]["plateau_patience"] == 10 and config["schedule"]["plateau_factor"] == 0.5
    expected = PAPER_PARAMETER_COUNTS[(experiment.model.encoder, experiment.model.normalization)]
    assert f"trainable parameters: {expected:,}" in out


def test_overrides_reach_the_config(capsys):
    train_main(["--experiment", "rp_lars_sbn", "--dry-run", "--epochs", "7", "--lr", "0.01", "--seed", "3",
                "--dataset", "synthetic", "--difficulty", "0.2"])
    out = capsys.readouterr().out
    config = config_of(out)
    trainer = config["trainer"]
    assert (trainer["epochs"], config["optimizer"]["learning_rate"], trainer["seed"]) == (7, 0.01, 3)
    assert config["data"]["dataset"] == "synthetic" and config["data"]["difficulty"] == 0.2
    assert config["optimizer"]["name"] == "lars" and config["model"]["normalization"] == "sbn"


def test_a_first_stage_shares_the_seed_and_data_and_takes_its_own_options(capsys):
    train_main(["--experiment", "our_pretraining", "--dry-run", "--seed", "2", "--difficulty", "0.3",
                "--pretrain-epochs", "4", "--lsmdc-scale", "2", "--epochs", "9",
                "--set", "init_from.optimizer.learning_rate=0.002"])
    out = capsys.readouterr().out
    config, first = config_of(out), config_of(out)["init_from"]
    assert config["trainer"]["epochs"] == 9 and first["trainer"]["epochs"] == 4
    assert config["trainer"]["seed"] == first["trainer"]["seed"] == 2
    assert config["data"]["difficulty"] == first["data"]["difficulty"] == 0.3
    assert first["data"]["lsmdc_scale"] == 2 and first["data"]["dataset"] == "synthetic-lsmdc"
    assert first["optimizer"]["learning_rate"] == 0.002 and config["optimizer"]["learning_rate"] == 5e-4
    assert out.splitlines()[0].startswith("run folder: runs/our_pretraining-seed2_difficulty0.3_")


def test_unknown_experiment_is_one_line(capfd):
    done = command_here(capfd, "tfalign.train", "--experiment", "nope", "--dry-run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown experiment 'nope'" in done.stderr.strip().splitlines()[-1]


def kill_after_an_epoch(args, run_dir) -> int:
    """Starts a training command, SIGKILLs it once an epoch is saved; returns that epoch."""
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = run_dir / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state_file.exists() and json.loads(state_file.read_text())["epoch"] >= 1):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return json.loads(state_file.read_text())["epoch"]


def test_a_finished_run_evaluates_and_pushes_its_own_figures(tmp_path, capfd):
    """(Killing and resuming: the recipe's test below and tests/training/test_faults.py.)"""
    run_dir = tmp_path / "run"
    args = ["--experiment", "rp_adam_sbn", "--epochs", "2", "--output-dir", str(run_dir), *QUICK]
    done = command_here(capfd, "tfalign.train", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("best_clip_accuracy", "best_sentence_iou"):
        assert 0 <= metrics[key]["test"]["clip_accuracy"] <= 1 and metrics[key]["test"]["videos"] == 15
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    again = command_here(capfd, "tfalign.train", *args)  # a finished folder is not overwritten
    assert again.returncode == 2 and "--resume continues it" in again.stderr

    out = tmp_path / "eval.json"
    assert cli.run(evaluate_main, ["--run", str(run_dir), "--split", "test", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["videos"] == 15
    assert result["clip_accuracy"] == pytest.approx(metrics["best_clip_accuracy"]["test"]["clip_accuracy"])
    assert "aligning 15 test videos (greedy decoding)" in capfd.readouterr().out

    # The safe push says what it does, and the version carries the run's config, figures and model card.
    pushed = command_here(capfd, "tfalign.export", "--run", str(run_dir), "--base-dir", str(tmp_path / "saved_models"),
                          "--validation-videos", "2")  # the push reloads its candidate in a process of its own
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    for phase in ("loading", "exporting a candidate", "reloading the candidate in a fresh process",
                  "aligning them in this process", "pushed"):
        assert phase in pushed.stdout, phase
    assets = tmp_path / "saved_models" / "rp_adam_sbn" / "1" / "assets"
    assert json.loads((assets / "metrics.json").read_text()) == metrics
    assert json.loads((assets / "config.json").read_text())["name"] == "rp_adam_sbn"
    assert "# Model card: tfalign `rp_adam_sbn`" in (assets / "MODEL_CARD.md").read_text()


def test_nan_loss_stops_with_a_clear_message(tmp_path, capfd):
    done = command_here(capfd, "tfalign.train", "--experiment", "rp_adam_sbn", "--epochs", "2", "--lr", "1e30",
                        "--output-dir", str(tmp_path / "nan"), *QUICK)
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the training loss became nan") and "Traceback" not in done.stderr


def test_our_pretraining_runs_both_stages(tmp_path, capfd):
    run_dir = tmp_path / "pre"
    done = command_here(capfd, "tfalign.train", "--experiment", "our_pretraining", "--pretrain-epochs", "1",
                        "--lsmdc-scale", "0.02", "--epochs", "1", "--output-dir", str(run_dir), *QUICK)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stage 1/2: our_pretraining_lsmdc on synthetic-lsmdc" in done.stdout
    assert "stage 2/2: our_pretraining" in done.stdout
    pre_config = json.loads((run_dir / "pretraining" / "config.json").read_text())
    assert pre_config["name"] == "our_pretraining_lsmdc" and pre_config["model"]["dropout"] == 0.1
    assert (pre_config["optimizer"]["learning_rate"], pre_config["optimizer"]["weight_decay"]) == (1e-3, 1e-6)
    assert pre_config["data"]["dataset"] == "synthetic-lsmdc"
    assert pre_config["runtime"]["replicas"] == 1 and pre_config["runtime"]["strategy"]
    assert json.loads((run_dir / "pretraining" / "state.json").read_text())["epoch"] == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["optimizer"]["learning_rate"] == 5e-4 and config["optimizer"]["weight_decay"] == 0.0
    assert config["init_from"]["name"] == "our_pretraining_lsmdc"
    assert (run_dir / "metrics.json").exists()


def test_the_recipe_trains_exports_and_resumes_exactly(tmp_path):
    """tfalign_rp_sbn end to end (random crops, lattice and contrastive losses,
    dropout, weight averaging, exact decoding, export): a run killed after an
    epoch and resumed ends with the weights of an uninterrupted run."""
    quick = ["--dataset", "synthetic", "--batch-size", "8", "--max-steps-per-epoch", "2", "--epochs", "2"]
    digest = lambda run: json.loads((tmp_path / run / "state.json").read_text())["weights_digest"]
    whole = run_cli("tfalign.train", "--experiment", "tfalign_rp_sbn", "--output-dir", str(tmp_path / "whole"), *quick)
    assert whole.returncode == 0, whole.stderr[-3000:]
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert 0.0 <= metrics["best_clip_accuracy"]["test"]["clip_accuracy"] <= 1.0
    assert metrics["decoding"] in ("greedy", "exact")  # decoding="auto": chosen on validation
    assert f"decoding: {metrics['decoding']} (validation clip accuracy" in whole.stdout
    assert "final weights digest" not in whole.stdout  # kept in state.json (--verbose prints it)
    # Redirected to a file, the output still says where the run is at every phase, in order, without
    # TensorFlow's start-up lines.
    phases = ["loading the data", "building the model", "tracing and compiling the training step", "epoch 2/2  loss",
              "choosing the decoding", "testing the best checkpoint", "exporting the SavedModel", "wrote"]
    positions = [whole.stdout.find(phase) for phase in phases]
    assert -1 not in positions and positions == sorted(positions), dict(zip(phases, positions))
    assert not re.search(r"^[IWEF]\d{4} |All log messages before absl|cuInit", whole.stdout + whole.stderr, re.M)
    # Strict JSON: no NaN or Infinity in anything the run wrote.
    for name in ("state.json", "metrics.json", "config.json"):
        json.loads((tmp_path / "whole" / name).read_text(), parse_constant=lambda c: pytest.fail(f"{name}: {c}"))
    # The export carries its config, figures and model card.
    assets = tmp_path / "whole" / "saved_model" / "assets"
    assert json.loads((assets / "config.json").read_text())["name"] == "tfalign_rp_sbn"
    assert json.loads((assets / "metrics.json").read_text()) == metrics
    card = (assets / "MODEL_CARD.md").read_text()
    assert "float32 [B, T_v, 300]" in card and "2 MATCH" in card and "synthetic" in card
    import tensorflow as tf

    signatures = tf.saved_model.load(str(tmp_path / "whole" / "saved_model")).signatures
    assert {"serving_default", "align_greedy", "align_exact"} <= set(signatures)

    run_dir = tmp_path / "killed"
    args = ["tfalign.train", "--experiment", "tfalign_rp_sbn", "--output-dir", str(run_dir), "--no-export", *quick]
    assert kill_after_an_epoch(args, run_dir) == 1, "the run finished before it could be killed"
    assert cli.run(train_main, args[1:]) == 2  # without --resume the folder is not overwritten (in this process)
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run_dir} after epoch 1" in resumed.stdout
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    assert digest("killed") == digest("whole")
