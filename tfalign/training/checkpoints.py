"""What a training run saves, all or nothing (``RunCheckpoints``), and the one home
of weights I/O: saving and strictly reading weights and TF checkpoints, and a
run's model loaded from its folder (``load_model``).

For every finished epoch: the best checkpoints it improved (the weights alone,
for testing and export), the resume checkpoint (model, optimizer, dropout and
loss-scale state: ``checkpoints/last/``, one kept), then ``state.json``, whose
atomic rename commits the epoch; the files it no longer names go after it. A
run stopped by a signal saves the same way at a step (``save_partial``).

A write that runs out of space (``files.DiskFullError``) inside ``saving()``
removes what the block wrote under ``checkpoints/`` and says which checkpoint
is intact: the one state.json on disk still names.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil

from tfalign.errors import UserError, first_line
from tfalign.files import DiskFullError, atomic_file, disk_full_reason, read_json_object, writing
from tfalign.training.run_folder import (BEST_METRICS, WEIGHTS_SUFFIX, RunFolder, RunState, checkpoint_exists,
                                        incompatible_fields)


def intact_line(intact: str) -> str:
    """What a user does after a full disk, given the last complete checkpoint (RunState.describe)."""
    if intact == "none yet":
        return ("nothing of the run was saved yet: free space, then run the same command with --resume (it starts "
                "the run from the beginning)")
    return f"the last complete checkpoint ({intact}) is intact: free space, then run the same command with --resume"


class RunCheckpoints:
    """The checkpoints and state of one stage's run folder.

    Args:
        folder: the stage's ``RunFolder``.
        checkpoint: the ``tf.train.Checkpoint`` of everything a resume needs.
        model: the model whose weights the best checkpoints hold.
    """

    def __init__(self, folder: RunFolder, checkpoint, model):
        self.folder, self.checkpoint, self.model = folder, checkpoint, model
        self.state = RunState()

    @classmethod
    def of_training(cls, folder: RunFolder, model, optimizer, loss_scale=None) -> RunCheckpoints:
        """The checkpoints of a run that trains ``model`` with ``optimizer`` (and fp16's ``loss_scale``)."""
        # Dropout draws from seed generators whose state Keras does not put in the
        # model's checkpoint; saved beside it, a resumed run draws the same masks.
        seed_states = [v for v in model.non_trainable_variables if "seed_generator" in v.path]
        extra = {"dropout_seeds": seed_states} if seed_states else {}
        if loss_scale is not None:
            extra.update(loss_scale=loss_scale.scale, loss_scale_steps=loss_scale.finite_steps)
        return cls(folder, checkpoint_structure(model, optimizer, **extra), model)

    def resume(self, config) -> None:
        """The state and the last checkpoint of the run in the folder, which must have
        been trained with ``config`` (only trainer.epochs may differ)."""
        saved = self.folder.restore_dir / "config.json"
        different = incompatible_fields(read_json_object(saved, "run config"), config) if saved.exists() else []
        if different:
            raise UserError(f"resume: {self.folder.restore_dir} was trained with another config (differs in "
                            f"{', '.join(different[:5])}); only trainer.epochs may change when a run is resumed",
                            field="resume")
        self.state = self.folder.read_state()
        if self.state.last_checkpoint:
            read_checkpoint(self.checkpoint, self.folder.restore_dir / self.state.last_checkpoint)

    @contextlib.contextmanager
    def saving(self):
        """Out of space inside the block: what it wrote under checkpoints/ is removed, and the
        error says that the last complete checkpoint (the one state.json on disk names) is intact."""
        intact = self.folder.read_state().describe() if self.folder.has_state() else "none yet"
        checkpoints = self.folder / "checkpoints"
        before = set(checkpoints.rglob("*"))
        try:
            yield
        except Exception as error:
            reason = disk_full_reason(error)
            if reason is None:
                raise
            for path in sorted(set(checkpoints.rglob("*")) - before, reverse=True):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            what = str(error) if isinstance(error, DiskFullError) else f"the run folder could not be written: {reason}"
            raise DiskFullError(f"{what}; {intact_line(intact)}") from None

    def save_best(self, epoch: int, logs: dict) -> list:
        """Writes the best checkpoints epoch ``epoch`` (0-based) improved; returns the ones they replace."""
        improved, stale, written = False, [], None
        for metric in BEST_METRICS:
            value, best = logs[f"val_{metric}"], self.state.best[metric]
            if value > best.value:
                improved |= metric == "clip_accuracy"
                stale.append(best.path)
                path = self.folder / "checkpoints" / f"best_{metric}" / f"epoch-{epoch + 1}{WEIGHTS_SUFFIX}"
                best.value, best.epoch = value, epoch + 1
                with writing("the best checkpoint", path):
                    best.path = os.path.relpath(save_weights(self.model, path, same_as=written), self.folder.path)
                written = path
        self.state.since_best = 0 if improved else self.state.since_best + 1
        return stale

    def end_epoch(self, epoch: int, logs: dict, plateau_state, stale: list, before_commit=lambda: None) -> None:
        """Commits a finished epoch: the resume checkpoint, the state (``before_commit``
        writes what goes with it, the summaries), state.json; then the stale files go.
        Every worker saves (saving distributed variables is collective); non-chief
        workers save into their own temporary folder."""
        self.write_checkpoint(f"ckpt-{epoch + 1}", stale)
        self.state.epoch, self.state.partial = epoch + 1, None
        self.state.plateau = plateau_state
        self.state.history.append({"epoch": epoch + 1, **logs})
        before_commit()
        self.write_state(stale)

    def save_partial(self, epoch: int, tally: dict) -> None:
        """A checkpoint in the middle of epoch ``epoch`` (0-based) and what its steps added up."""
        with self.saving():
            stale = []
            self.write_checkpoint(f"ckpt-{epoch + 1}-step{tally['steps']}", stale)
            self.state.partial = {"epoch": epoch, **tally}
            self.write_state(stale)

    def write_checkpoint(self, name: str, stale: list) -> None:
        """The resume checkpoint ``checkpoints/last/name``; the one it replaces joins ``stale``."""
        previous = self.state.last_checkpoint
        path = self.folder / "checkpoints" / "last" / name
        with writing("the resume checkpoint", path):
            self.state.last_checkpoint = os.path.relpath(self.checkpoint.write(str(path)), self.folder.path)
        if previous != self.state.last_checkpoint:
            stale.append(previous)

    def write_state(self, stale=()) -> None:
        """state.json, then the checkpoints it no longer names are removed."""
        self.folder.write_state(self.state)
        for old in filter(None, stale):
            self.folder.remove_checkpoint(old)


# ------------------------------------------------------------ weights I/O
def save_weights(model, path, same_as=None) -> str:
    """The model's weights alone (every layer's, non-trainable ones included),
    written under a temporary name and renamed: never half a file. ``same_as``:
    a weights file of these very weights (the other best checkpoint of the same
    epoch), linked instead of written again."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, WEIGHTS_SUFFIX) as tmp:
        linked = False
        if same_as:
            try:
                os.link(same_as, tmp)
                linked = True
            except OSError:  # a file system without hard links: written again
                pass
        if not linked:
            model.save_weights(str(tmp))
    return str(path)


def read_checkpoint(checkpoint, path) -> None:
    """Restores a ``tf.train.Checkpoint`` strictly: every variable of the objects
    it holds must be in the file (one that is not would silently keep its
    initial value); what the file holds beyond them (an optimizer's slots) may
    stay unread. A miss is a UserError naming the variables. A checkpoint of an
    older tfalign (no format mark) is read as that tfalign wrote it: the layers'
    collections untracked, the weights by position where it listed them so."""
    import tensorflow as tf

    from tfalign.layers.tracking import collections_untracked
    from tfalign.model import AlignerTask
    from tfalign.model.legacy_layout import is_legacy_checkpoint

    full_names = [name for name, _ in tf.train.list_variables(str(path))]
    names = {name.split("/")[0] for name in full_names}
    model = getattr(checkpoint, "model", None)
    if isinstance(model, AlignerTask) and is_legacy_checkpoint(path):
        raise UserError(f"{path}: a checkpoint of a tfalign from before the backbone was its own layer: its "
                        f"weights load (evaluation, export, Aligner.from_run), but its training cannot resume; "
                        f"start a new run")
    if model is None or "format" in names:
        return _read_strictly(checkpoint, path)
    objects = {name: getattr(checkpoint, name) for name in ("optimizer", "dropout_seeds", "loss_scale",
                                                            "loss_scale_steps") if hasattr(checkpoint, name)}
    objects["model"] = model
    if "model_weights" in names:
        objects["model_weights"] = list(model.weights)
    with collections_untracked(model):
        _read_strictly(tf.train.Checkpoint(**objects), path)


def _read_strictly(checkpoint, path) -> None:
    import re

    status = checkpoint.read(str(path))
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        status.expect_partial()  # no warnings about it when it is deleted
        names = re.findall(r"<(?:tf\.)?Variable (?:path=|')([^,']+)", str(error))
        count = re.search(r"Found (\d+) Python objects", str(error))
        missing = (f"{count.group(1) if count else len(names)} of the model's variables, e.g. {names[0]}" if names
                   else first_line(error))
        raise UserError(f"{path}: the checkpoint lacks {missing} (a checkpoint of another model or an older "
                        f"tfalign)") from None
    status.expect_partial()


CHECKPOINT_FORMAT = 2  # 2: every weight reached by name; before: some only by position ("model_weights")


def checkpoint_structure(model, optimizer=None, **extra):
    """The objects a run's TF checkpoints hold: the model (every weight reached by
    name, layers/tracking.py), its optimizer, ``extra`` state and the format mark."""
    import tensorflow as tf

    objects = {"model": model, "format": tf.Variable(CHECKPOINT_FORMAT, trainable=False, name="format"), **extra}
    if optimizer is not None:
        objects["optimizer"] = optimizer
    return tf.train.Checkpoint(**objects)


def restore_weights(model, path, config=None) -> None:
    """Weights into ``model`` from a checkpoint, strictly (every weight must be in
    it): a weights file (best checkpoints), or a run's TF checkpoint (the last
    one; the best ones of an older tfalign). A TF checkpoint's weights are read
    with an optimizer of the run's config beside them (an older tfalign reached
    some layers only through the optimizer's variables)."""


    from tfalign.model.legacy_layout import is_legacy_checkpoint, legacy_layout

    path = str(path)
    if path.endswith(WEIGHTS_SUFFIX):
        try:
            model.load_weights(path)
        except ValueError as error:  # Keras: "A total of N objects could not be loaded. ..."
            try:  # a weights file of an older tfalign: its layers' old names
                legacy_layout(model).load_weights(path)
            except ValueError:
                raise UserError(f"{path}: the weights do not fit the model ({first_line(error)})") from None
        return
    from tfalign.optimizers import make_optimizer

    if is_legacy_checkpoint(path):
        model = legacy_layout(model)  # read through the old names (the optimizer's slots in the old order)
    optimizer = make_optimizer(config.optimizer.name, config.optimizer.learning_rate,
                               weight_averaging=config.optimizer.weight_averaging)
    optimizer.build(model.trainable_variables)
    read_checkpoint(checkpoint_structure(model, optimizer), path)


def load_model(run_dir, checkpoint="clip_accuracy"):
    """(config, model) of a run folder, the weights from its ``checkpoint``
    ("last" or a best metric); one-line errors for what is missing or damaged."""
    from tfalign.model import build_model  # here: naming and the index (compare's parent) need no TensorFlow

    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise UserError(f"{folder.path}: no such run folder")
    for name in ("config.json", "state.json"):
        if not (folder / name).exists():
            raise UserError(f"{folder.path}: no {name}: not a training run folder (or its first epoch never "
                            f"finished)")
    config, state = folder.read_config(), folder.read_state()
    relative = state.checkpoint_name(checkpoint)
    if not isinstance(relative, str) or not checkpoint_exists(folder / relative):
        raise UserError(f"{folder / 'state.json'}: the {checkpoint} checkpoint it names ({relative}) is missing")
    model = build_model(config.model, seed=config.trainer.seed, precision=config.trainer.precision)
    try:
        restore_weights(model, folder / relative, config)
    except UserError:
        raise
    except Exception as error:  # a damaged checkpoint fails in many ways (TF errors, short reads, ...)
        raise UserError(f"{folder / relative}: the checkpoint cannot be read ({first_line(error)})") from None
    return config, model
