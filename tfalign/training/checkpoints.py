"""What a training run saves, all or nothing: ``RunCheckpoints``.

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
import shutil

from tfalign.errors import UserError
from tfalign.files import DiskFullError, disk_full_reason, read_json_object, writing
from tfalign.training.run_folder import (BEST_METRICS, WEIGHTS_SUFFIX, RunFolder, RunState, checkpoint_structure,
                                        incompatible_fields, read_checkpoint, save_weights)


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
