"""Run folders: their typed state, their checkpoints, names a person can read,
and the index of a runs folder.

A run folder:
    config.json           the resolved experiment (and, under "runtime", the strategy and replicas that ran it)
    state.json            ``RunState``: last completed epoch, schedule state, best checkpoints, history
    checkpoints/last/     the last epoch's (one kept): model, optimizer and dropout state, to resume
    checkpoints/best_clip_accuracy/, checkpoints/best_sentence_iou/
                          epoch-N.weights.h5: the model's weights alone (Keras's save_weights)
    tensorboard/, tensorboard/train/, tensorboard/val/
    metrics.json          test figures of each best checkpoint (at the end)
    pretraining/          the first stage of an experiment with ``init_from``: a run folder of its own

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
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile

from tfalign.configs import ExperimentConfig
from tfalign.errors import UserError, first_line
from tfalign.files import pid_alive, read_json_object, remove_leftovers, write_json_atomic, \
    write_text_atomic

BEST_METRICS = ("clip_accuracy", "sentence_iou")
WEIGHTS_SUFFIX = ".weights.h5"  # best checkpoints: Keras weights files
# Left out of the folder's name and hash: a run trained on to more epochs is the same run.
CONTINUABLE = ("trainer.epochs",)
# Fields added after run folders were first named, left out of the hash at these
# defaults, so that the folders named before keep their names (and --resume finds them).
LATER_FIELDS = {"model.clip_dim": None, "model.text_dim": None, "model.projection_seed": 0,
                "data.train_videos": None, "model.ridge_similarity": False, "model.dtw_start": False,
                "task.path_loss": "cross_entropy", "task.start_penalty": 0.0, "task.epoch_steps": 0,
                "trainer.validate_start": False, "data.unlabelled_videos": None, "data.unlabelled_file": None,
                "trainer.batch_nodes": 0, "trainer.batch_actions": 0}
MAX_OPTIONS_LENGTH = 60
# Short names in folder names (others: the field's last part); the index spells fields out.
ABBREVIATIONS = {"trainer.precision": "",
                 "optimizer.learning_rate": "lr", "trainer.label_smoothing": "ls", "trainer.batch_size": "batch",
                 "data.seed": "dataseed", "data.dataset": "", "data.features": "", "optimizer.name": "",
                 "init_from.trainer.epochs": "preepochs", "init_from.data.lsmdc_scale": "lsmdc"}
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
    from tfalign.experiments import EXPERIMENTS  # the registry, beside the config types

    base = EXPERIMENTS.get(config.name)
    if base is None:
        return {}
    ours, theirs = flatten(config.to_dict()), flatten(base.to_dict())
    changed = {k: v for k, v in ours.items() if theirs.get(k, object()) != v}
    # A first stage's field changed as the run's own (its seed, its data's seed) is named once.
    return {k: v for k, v in changed.items()
            if not (k.startswith("init_from.") and changed.get(k.removeprefix("init_from."), object()) == v)}


def _short(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    location = text.partition(":")[2] if text.startswith(("tfrecord:", "npz:")) else text
    if "/" in location or "\\" in location or pathlib.PurePath(location).suffix:  # a path: its stem and a hash
        stem = pathlib.PurePath(location.rstrip("/\\")).stem or "root"
        text = f"{_clean(stem)[:16]}-{hashlib.sha1(text.encode()).hexdigest()[:4]}"
    return _clean(text)[:24]


def _clean(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".+-" else "-" for c in text)


def describe_overrides(config) -> str:
    """The changed fields as ``field=value`` pairs, for the index."""
    return " ".join(f"{k}={_short(v)}" for k, v in changed_fields(config).items())


def run_folder_name(config, max_steps_per_epoch: int | None = None, data_digest: str | None = None) -> str:
    """``<experiment>[-<changed options>]-<hash>``; equal for configs that differ only in epochs.
    A cap on the steps of an epoch (quick trials) is part of the name: such a
    run is never continued as a full one. ``data_digest`` (episodes given from
    Python) is part of the hash."""
    values = {_named_before_task_group(k): v for k, v in flatten(config.to_dict()).items()
              if k not in CONTINUABLE and not (k.removeprefix("init_from.") in LATER_FIELDS
                                               and LATER_FIELDS[k.removeprefix("init_from.")] == v)}
    changed = {k: v for k, v in changed_fields(config).items() if k not in CONTINUABLE}
    if max_steps_per_epoch:
        values["max_steps_per_epoch"] = changed["steps"] = max_steps_per_epoch
    if data_digest:
        values["episodes"] = data_digest
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    options = "_".join(f"{ABBREVIATIONS.get(k, k.rsplit('.', 1)[-1])}{_short(v)}" for k, v in changed.items())
    if len(options) > MAX_OPTIONS_LENGTH:  # the hash tells them apart; the index lists them all
        options = options[:MAX_OPTIONS_LENGTH].rstrip("_") + "+"
    return f"{config.name}-{options}-{digest}" if options else f"{config.name}-{digest}"


def _named_before_task_group(key: str) -> str:
    """task.X was trainer.X when run folders were first named: hashed under that name, names stay."""
    return key.replace("task.", "trainer.", 1) if key.removeprefix("init_from.").startswith("task.") else key


def incompatible_fields(saved: dict, config) -> list[str]:
    """Fields (other than epochs) where a run's saved config differs from ``config``."""
    try:
        saved = ExperimentConfig.from_dict(saved).to_dict()  # a config.json of an older tfalign, grouped
    except UserError:
        pass  # compared as it is: every differing field is named
    ours = {k: v for k, v in flatten(_widths_recorded(config.to_dict())).items() if k not in CONTINUABLE}
    theirs = {k: v for k, v in flatten(_widths_recorded(saved)).items()
              if k not in CONTINUABLE and not k.startswith("runtime.")}
    return sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))


def _widths_recorded(values: dict) -> dict:
    """A config dict with its model's feature widths spelled out (a run of an older
    tfalign recorded none: its widths were the encoder's)."""
    try:
        config = ExperimentConfig.from_dict(values)
    except UserError:
        return values
    changes = {}
    for prefix, stage in (("", config), ("init_from.", config.init_from)):
        if stage is not None:
            changes[f"{prefix}model.clip_dim"], changes[f"{prefix}model.text_dim"] = stage.model.input_widths
    return {**values, **config.override(changes).to_dict()}


def has_run(run_dir) -> bool:
    """Whether ``run_dir`` holds a run: a saved epoch of a stage (state.json)."""
    return any((pathlib.Path(run_dir) / stage / "state.json").exists() for stage in ("", "pretraining"))


def check_run_folder(run_dir, resume: bool, config=None) -> str | None:
    """Before anything is written: resuming needs a run; without resume there must be
    none; the folder must be writable. Resuming a folder that ``config``'s run
    created but that holds no saved epoch yet (killed before its first save: its
    config.json is there and matches) starts the run from the beginning: a
    scheduler can run the same command line every time. Returns the line that
    says so (None otherwise)."""
    run_dir = pathlib.Path(run_dir)
    note = None
    if resume and not has_run(run_dir):
        if not _started_by(run_dir, config):
            raise UserError(f"resume: {run_dir} holds no run to resume (no state.json); start one without resuming",
                            field="resume")
        note = (f"{run_dir} holds no saved epoch yet (stopped before its first save): starting the run from the "
                f"beginning")
    if not resume and has_run(run_dir):
        raise UserError(f"{run_dir} already holds a run of this experiment and data; --resume continues it "
                        f"(resume=True from Python; with a larger --epochs, training goes on to them), --output-dir "
                        f"starts another elsewhere")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output_dir: {run_dir} exists and is not a folder", field="output_dir")
    existing = next(p for p in (run_dir, *run_dir.absolute().parents) if p.exists())
    try:  # a real write (and its removal): permission bits say nothing to root or on special filesystems
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        os.rmdir(tempfile.mkdtemp(prefix=".tfalign-write-check-", dir=existing))
    except OSError as error:
        raise UserError(f"output_dir: {run_dir} cannot be written ({existing}: {error.strerror})",
                        field="output_dir") from None
    return note


def _started_by(run_dir: pathlib.Path, config) -> bool:
    """Whether ``run_dir`` holds the start of ``config``'s run and nothing more: its config.json
    (the same config but for the epochs and the feature widths, which come from the data)."""
    saved = run_dir / "config.json"
    if config is None or not saved.is_file():
        return False
    try:
        different = incompatible_fields(read_json_object(saved, "run config"), config)
    except UserError:
        return False
    widths = {f"{stage}model.{field}" for stage in ("", "init_from.") for field in ("clip_dim", "text_dim")}
    different = [k for k in different if k not in widths]
    if different:
        raise UserError(f"resume: {run_dir} holds the start of another run (its config differs in "
                        f"{', '.join(different[:5])}); name the run's own options, or another --output-dir",
                        field="resume")
    return True


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
    run_dir = pathlib.Path(run_dir)
    saved = read_json_or_empty(run_dir / "config.json")
    if not saved:
        return None
    epochs = ""
    try:
        config = ExperimentConfig.from_dict(saved)
        overrides, epochs = describe_overrides(config), config.trainer.epochs
    except (ValueError, TypeError):
        overrides = "(config not readable)"
    state, metrics = read_json_or_empty(run_dir / "state.json"), read_json_or_empty(run_dir / "metrics.json")
    if state.get("max_steps_per_epoch"):
        overrides = f"{overrides} max_steps_per_epoch={state['max_steps_per_epoch']}".strip()
    best = metrics.get("best_clip_accuracy") or {}
    test = best.get("test") or {}
    return {
        "folder": run_dir.name, "experiment": saved.get("name", ""), "overrides": overrides,
        "status": run_status(run_dir), "epochs_done": state.get("epoch", 0), "epochs": epochs,
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


# ------------------------------------------------------------------ run state
@dataclasses.dataclass
class BestCheckpoint:
    """The best validation value of a metric so far, its epoch and checkpoint (relative to the run folder)."""

    value: float = -1.0
    epoch: int | None = None
    path: str | None = None


@dataclasses.dataclass
class RunState:
    """What state.json holds: enough to resume a run after its last epoch, or in
    the middle of an epoch (``partial``: a run stopped by a signal saved at a step)."""

    epoch: int = 0  # epochs completed
    history: list = dataclasses.field(default_factory=list)  # one dict of figures per epoch
    best: dict = dataclasses.field(default_factory=lambda: {m: BestCheckpoint() for m in BEST_METRICS})
    plateau: dict | None = None  # the plateau schedule's state
    since_best: int = 0  # epochs without a better validation clip accuracy
    last_checkpoint: str | None = None
    finished: bool = False
    wall_seconds: float = 0.0  # training and validation, over every session of the run
    max_steps_per_epoch: int | None = None  # a quick trial's cap
    weights_digest: str | None = None  # of the final weights: equal on every worker
    # An epoch stopped at a step: {"epoch": e (0-based), "steps": steps done, "losses", "hits", "sequences",
    # "gradient_norms", "ratios", "seconds"}; None between epochs.
    partial: dict | None = None
    start: dict | None = None  # the validation figures of the model as it started (trainer.validate_start)

    def describe(self) -> str:
        """Where the run's last complete checkpoint stands, in words."""
        if self.partial:
            return f"epoch {self.partial['epoch'] + 1}, step {self.partial['steps']}"
        return f"epoch {self.epoch}" if self.epoch else "none yet"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source="run state") -> RunState:
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            values = {k: v for k, v in values.items() if k in known}
            best = values.get("best", {})
            values["best"] = {m: BestCheckpoint(**best.get(m, {})) for m in BEST_METRICS}
            return cls(**values)
        except (TypeError, AttributeError) as error:
            raise UserError(f"{source}: not a tfalign run state ({first_line(error)})") from None

    def checkpoint_name(self, which: str) -> str | None:
        """The checkpoint for "last" or a best metric (the last one while that metric has none)."""
        if which != "last" and which not in self.best:
            raise UserError(f"checkpoint: expected last or one of {list(BEST_METRICS)}, got {which!r}")
        best = None if which == "last" else self.best[which].path
        return best or self.last_checkpoint


class RunFolder:
    """One stage's run folder. A non-chief worker writes into a temporary
    ``path`` but resumes from the chief's (``restore_dir``)."""

    def __init__(self, path, restore_dir=None):
        self.path = pathlib.Path(path)
        self.restore_dir = pathlib.Path(restore_dir) if restore_dir else self.path

    def __truediv__(self, relative) -> pathlib.Path:
        return self.path / relative

    @property
    def trial_id(self) -> str:
        """The run's name in TensorBoard's HParams table: its folder (and stage)."""
        return self.path.name if self.path.name != "pretraining" else f"{self.path.parent.name}/pretraining"

    def has_state(self) -> bool:
        return (self.restore_dir / "state.json").exists()

    def read_state(self) -> RunState:
        file = self.restore_dir / "state.json"
        return RunState.from_dict(read_json_object(file, "run state"), str(file))

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.path / "state.json", state.to_dict())

    def read_config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(read_json_object(self.restore_dir / "config.json", "run config"))

    def write_config(self, config: ExperimentConfig, runtime: dict | None = None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / "config.json", {**config.to_dict(), **({"runtime": runtime} if runtime else {})})

    def clean(self, log=print) -> None:
        """Removes what a killed run left: temporary files of atomic writes,
        TensorFlow's temporary checkpoint folders, and (killed before its first
        epoch was saved) its checkpoints and event files."""
        for leftover in remove_leftovers(self.path, ".*.tmp-*"):
            log(f"removed {leftover.name}, left by a run that was killed")
        for leftover in remove_leftovers(self.path / "checkpoints", "*/.*.tmp-*"):
            log(f"removed {leftover.name}, left by a run that was killed")
        for temp in (self.path / "checkpoints").glob("**/*_temp*"):
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
        if not self.has_state() and (self.path / "config.json").exists():
            for folder in ("checkpoints", "tensorboard"):
                shutil.rmtree(self.path / folder, ignore_errors=True)

    def checkpoint_path(self, relative: str) -> str:
        """A checkpoint named in state.json: in this folder, or (a resumed
        non-chief worker's best from before the restart) in the chief's."""
        return str(self.path / relative if checkpoint_exists(self.path / relative) else self.restore_dir / relative)

    def remove_checkpoint(self, relative: str) -> None:
        if relative.endswith(WEIGHTS_SUFFIX):
            (self.path / relative).unlink(missing_ok=True)
            return
        # Exactly this checkpoint's files: "ckpt-1*" would also match ckpt-10 .. ckpt-19.
        for file in self.path.glob(relative + ".*"):
            file.unlink(missing_ok=True)



def checkpoint_exists(path) -> bool:
    """A weights file (best checkpoints), or a TF checkpoint (resume; best ones of older runs)."""
    path = pathlib.Path(path)
    return path.is_file() if path.name.endswith(WEIGHTS_SUFFIX) else path.with_name(path.name + ".index").is_file()


def run_metrics(run_dir) -> dict:
    """A finished run's metrics.json ({} if it has none yet)."""
    metrics = pathlib.Path(run_dir) / "metrics.json"
    return read_json_object(metrics, "run metrics") if metrics.exists() else {}


def run_decoding(run_dir, config) -> str:
    """How a finished run decodes: as chosen at its end (metrics.json), else as configured."""
    return run_metrics(run_dir).get("decoding") or config.task.validation_decoding
