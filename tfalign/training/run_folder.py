"""Run folders a person can read, and the index of a runs folder.

A run named by the train command lives in ``runs/<experiment>[-<changed
options>]-<short hash>``: the options are the fields that differ from the
registered experiment (``seed1_lr0.005_difficulty0.8``), the hash covers the
whole resolved config *except* ``epochs``, so training the same experiment on
the same data for more epochs is the same run continued (``--resume``), not
a new one.

``runs/index.csv`` lists every run of the folder with its status and test
figures; it is rebuilt from the run folders (so a killed run shows as
stopped, not as running) whenever a run starts or ends.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import pathlib

from tfalign.files import pid_alive, write_text_atomic

# Left out of the folder's name and hash: a run trained on to more epochs is the same run.
CONTINUABLE = ("epochs",)
MAX_OPTIONS_LENGTH = 60
# Short names in folder names (others: the field's last part); the index spells fields out.
ABBREVIATIONS = {"learning_rate": "lr", "label_smoothing": "ls", "batch_size": "batch", "data.seed": "dataseed",
                 "data.dataset": "", "data.features": "", "pretraining.epochs": "preepochs",
                 "pretraining.lsmdc_scale": "lsmdc"}
RUNNING_FILE = ".running"  # the training process's pid while it runs
INDEX_COLUMNS = ("folder", "experiment", "overrides", "status", "epochs_done", "epochs", "best_epoch",
                 "val_clip_accuracy", "test_clip_accuracy", "test_sentence_iou", "wall_seconds")


def flatten(values: dict, prefix: str = "") -> dict:
    """{"data": {"seed": 1}} -> {"data.seed": 1}."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def changed_fields(config) -> dict:
    """{dotted field: value} where the resolved config differs from its registered experiment."""
    from tfalign.experiments import EXPERIMENTS

    base = EXPERIMENTS.get(config.name)
    if base is None:
        return {}
    ours, theirs = flatten(config.to_dict()), flatten(base.to_dict())
    return {k: v for k, v in ours.items() if theirs.get(k, object()) != v}


def _short(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "".join(c if c.isalnum() or c in ".+-" else "-" for c in str(value))[:24]


def describe_overrides(config) -> str:
    """The changed fields as ``field=value`` pairs, for the index."""
    return " ".join(f"{k}={_short(v)}" for k, v in changed_fields(config).items())


def run_folder_name(config, max_steps_per_epoch: int | None = None) -> str:
    """``<experiment>[-<changed options>]-<hash>``; equal for configs that differ only in epochs.
    A cap on the steps of an epoch (quick trials) is part of the name: such a
    run is never continued as a full one."""
    values = {k: v for k, v in config.to_dict().items() if k not in CONTINUABLE}
    changed = {k: v for k, v in changed_fields(config).items() if k not in CONTINUABLE}
    if max_steps_per_epoch:
        values["max_steps_per_epoch"] = changed["steps"] = max_steps_per_epoch
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    options = "_".join(f"{ABBREVIATIONS.get(k, k.rsplit('.', 1)[-1])}{_short(v)}" for k, v in changed.items())
    if len(options) > MAX_OPTIONS_LENGTH:  # the hash tells them apart; the index lists them all
        options = options[:MAX_OPTIONS_LENGTH].rstrip("_") + "+"
    return f"{config.name}-{options}-{digest}" if options else f"{config.name}-{digest}"


def incompatible_fields(saved: dict, config) -> list[str]:
    """Fields (other than epochs) where a run's saved config differs from ``config``."""
    ours = flatten({k: v for k, v in config.to_dict().items() if k not in CONTINUABLE})
    theirs = flatten({k: v for k, v in saved.items() if k not in CONTINUABLE})
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))


@contextlib.contextmanager
def marked_running(run_dir):
    """The run folder says which process trains it while the block runs."""
    marker = pathlib.Path(run_dir) / RUNNING_FILE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def read_json_or_empty(path: pathlib.Path) -> dict:
    """A JSON object file, or {} when it is missing, unreadable or not an object (index building)."""
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def run_status(run_dir) -> str:
    """finished, running, stopped (killed or interrupted: --resume continues it), or empty."""
    run_dir = pathlib.Path(run_dir)
    marker = run_dir / RUNNING_FILE
    try:
        if pid_alive(int(marker.read_text())):
            return "running"
    except (OSError, ValueError):
        pass
    state = read_json_or_empty(run_dir / "state.json")
    if (run_dir / "metrics.json").exists() and state.get("finished"):
        return "finished"
    return "stopped" if state or (run_dir / "pretraining" / "state.json").exists() else "empty"


def index_row(run_dir) -> dict | None:
    """The index's row for a run folder (None: not a run folder)."""
    from tfalign.experiments import ExperimentConfig

    run_dir = pathlib.Path(run_dir)
    saved = read_json_or_empty(run_dir / "config.json")
    if not saved:
        return None
    try:
        config = ExperimentConfig.from_dict(saved)
        overrides = describe_overrides(config)
    except (ValueError, TypeError):
        overrides = "(config not readable)"
    state, metrics = read_json_or_empty(run_dir / "state.json"), read_json_or_empty(run_dir / "metrics.json")
    if state.get("max_steps_per_epoch"):
        overrides = f"{overrides} max_steps_per_epoch={state['max_steps_per_epoch']}".strip()
    best = metrics.get("best_clip_accuracy") or {}
    test = best.get("test") or {}
    return {
        "folder": run_dir.name, "experiment": saved.get("name", ""), "overrides": overrides,
        "status": run_status(run_dir), "epochs_done": state.get("epoch", 0), "epochs": saved.get("epochs", ""),
        "best_epoch": best.get("epoch", ""), "val_clip_accuracy": _figure(best.get("val")),
        "test_clip_accuracy": _figure(test.get("clip_accuracy")),
        "test_sentence_iou": _figure(test.get("sentence_iou")),
        "wall_seconds": _figure(state.get("wall_seconds"), 1),
    }


def _figure(value, digits=4) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def update_index(runs_dir) -> pathlib.Path:
    """Rewrites ``runs_dir/index.csv`` from its run folders (under a lock: runs may end together)."""
    runs_dir = pathlib.Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / ".index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [row for folder in sorted(runs_dir.iterdir()) if folder.is_dir()
                for row in [index_row(folder)] if row]
        text = io.StringIO()
        writer = csv.DictWriter(text, INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(runs_dir / "index.csv", text.getvalue())
    return runs_dir / "index.csv"
