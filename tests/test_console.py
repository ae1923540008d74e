"""The commands' console: quiet start-up, progress, help texts, strict JSON."""

import argparse
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tfalign import console
from tfalign.files import strict_json, write_json_atomic
from tfalign.training.schedules import PlateauHalving

COMMANDS = ["tfalign.train", "tfalign.compare", "tfalign.evaluate", "tfalign.export", "tfalign.align",
            "pipelines.features",
            "pipelines.prepare"]
# TensorFlow's start-up lines: absl's "I0000 00:00:..." prefix, its pre-init notice, oneDNN, CUDA probing.
STARTUP_NOISE = re.compile(r"^[IWEF]\d{4} |All log messages before absl|oneDNN|cuInit|cuda drivers|"
                           r"rebuild TensorFlow with the appropriate compiler flags", re.M)


def run_cli(*args, env=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell: nothing set
    env.pop("TFALIGN_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.large
def test_no_tensorflow_startup_line_reaches_the_output_by_default():
    done = run_cli("tfalign.evaluate", "--baseline", "unmatched", "--split", "test")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not STARTUP_NOISE.search(done.stdout + done.stderr), done.stdout + done.stderr
    assert done.stderr == ""
    # Redirected to a pipe, the phases are still there.
    assert "loading yms-synthetic (rp features)" in done.stdout and "running the unmatched baseline" in done.stdout


@pytest.mark.large
def test_verbose_reaches_the_child_processes():
    code = "from tfalign import console; console.start(True); import os; print(os.environ['TFALIGN_VERBOSE'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0 and done.stdout.strip() == "1"


def test_progress_prints_lines_to_a_file_and_a_bar_to_a_terminal(monkeypatch):
    monkeypatch.setenv("TFALIGN_PROGRESS_SECONDS", "0")
    log = io.StringIO()
    progress = console.Progress(4, "epoch 1/2", stream=log)
    for step, loss in enumerate([4.0, 2.0, 3.0, 1.0], start=1):
        progress.update(step, loss=loss)
    progress.close()
    lines = log.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "left" in lines[0] and "left" not in lines[-1] and "\r" not in log.getvalue()

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TFALIGN_PROGRESS_SECONDS", "3600")
    screen = Terminal()
    progress = console.Progress(2, "test videos", stream=screen)
    progress.update(1, loss=0.5)
    progress.update(2, loss=0.25)
    progress.close()
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "[====================] test videos 2/2" in text

    quiet = io.StringIO()
    console.Progress(3, "x", stream=quiet, enabled=False).update(2)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("seconds, words", [(5, "5 s"), (125, "2 min 05 s"), (7500, "2 h 05 min"), (59.6, "1 min 00 s"),
                                            (119.6, "2 min 00 s"), (7199.9, "2 h 00 min"), (-3, "0 s")])
def test_durations_read_as_a_person_would(seconds, words):
    assert console.duration(seconds) == words


def test_json_is_strict_everywhere(tmp_path):
    value = {"a": float("inf"), "b": np.float32(1.5), "c": [np.nan, np.int64(3)], "d": np.arange(2)}
    assert strict_json(value) == {"a": None, "b": 1.5, "c": [None, 3], "d": [0, 1]}
    write_json_atomic(tmp_path / "x.json", value)
    text = (tmp_path / "x.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
    # The plateau schedule's "no loss yet" (inf) is stored as null and read back.
    plateau = PlateauHalving()
    state = plateau.get_state()
    assert state["best"] is None
    plateau.set_state(json.loads(json.dumps(state)))
    assert plateau.best is None


def _parsers():
    for name in COMMANDS:
        if name.startswith("pipelines"):
            pytest.importorskip("apache_beam")
        module = importlib.import_module(name)
        yield name, module, module.build_parser()


def test_every_option_has_help_and_shows_its_default():
    missing = []
    for name, _, parser in _parsers():
        formatter = parser.formatter_class(parser.prog)
        one_required = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help and len(action.help) > 10):
                missing.append(f"{name} {action.option_strings}: no help")
            elif action.nargs != 0 and not action.required and action not in one_required:  # takes a value
                text = formatter._get_help_string(action).lower()
                if not any(word in text for word in ("default", "required", "(0:")):
                    missing.append(f"{name} {action.option_strings}: no default")
    assert not missing, missing


def _examples(doc: str):
    """The command lines of a docstring: 'python -m ...' with continuation lines."""
    lines, current = [], ""
    for raw in doc.splitlines():
        line = raw.strip()
        if current:
            current += " " + line.rstrip("\\").strip()
            if not line.endswith("\\"):
                lines.append(current)
                current = ""
        elif line.startswith("python -m "):
            if line.endswith("\\"):
                current = line.rstrip("\\").strip()
            else:
                lines.append(line)
    return [re.sub(r"\s+#.*$", "", line) for line in lines]


def test_the_help_examples_parse_as_written():
    checked = 0
    for name, module, parser in _parsers():
        # The command's own docstring (tfalign.train's __doc__ is the function's, for help()).
        for line in _examples(vars(module)["__doc__"]):
            words = shlex.split(line)
            if words[2] != name or "[" in line or "..." in line:
                continue  # a synopsis with optional parts, or another command's line
            args, unknown = parser.parse_known_args(words[3:])
            assert not unknown or name.startswith("pipelines"), f"{line}: unknown {unknown}"
            checked += 1
    assert checked >= 10


def test_action_codes_are_explained_where_actions_appear():
    from tfalign import align, export

    for doc in (align.__doc__, export.__doc__):
        assert "0 POP_CLIP" in doc and "1 POP_TEXT" in doc and "2 MATCH" in doc


def test_a_warm_up_longer_than_the_run_is_warned_about(capsys):
    from tfalign.train import main as train_main

    assert train_main(["--experiment", "rp_adam_warmup_sbn", "--epochs", "3", "--dry-run"]) == 0
    assert "warning: the warm-up (5 epochs) is as long as the run or longer (3 epochs)" in capsys.readouterr().err
    assert train_main(["--experiment", "rp_adam_warmup_sbn", "--epochs", "6", "--dry-run"]) == 0
    assert "warm-up" not in capsys.readouterr().err


@pytest.mark.large
def test_training_announces_each_learning_rate_halving(tmp_path):
    done = run_cli("tfalign.train", "--experiment", "rp_adam_sbn", "--epochs", "2", "--set", "plateau_patience=1",
                   "--set", "plateau_threshold=0.99", "--dataset", "synthetic", "--batch-size", "8",
                   "--max-steps-per-epoch", "2", "--no-export", "--output-dir", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "learning rate halved to 2.50e-04" in done.stdout
    epoch_lines = [line for line in done.stdout.splitlines() if line.startswith("epoch 1/2  loss")]
    assert epoch_lines and "left)" in epoch_lines[0]  # the time left for the run
    assert not STARTUP_NOISE.search(done.stdout + done.stderr)
