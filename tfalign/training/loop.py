"""The training loop, for every tf.distribute strategy: ``Trainer``.

Keras 3's ``fit`` does not run under MultiWorkerMirroredStrategy (keras
issue 20585), so the loop is written out: ``strategy.run`` for the task's step
(training/task.py: the inputs, the losses, the step's maths), Keras callbacks
for the schedules, a run folder that makes every epoch resumable, and
TensorBoard summaries. A single-device model can also be trained with
``model.fit`` (``AlignerTask.compute_loss``).

Validation decodes whole videos each epoch with the ``evaluate`` function the
trainer is given (``tfalign.evaluation.prediction.evaluate_model``): training/
does not import evaluation/. The run folder and its state: run_folder.py.

Faults: SIGTERM or SIGINT saves a checkpoint at the next step (mid-epoch
included; training/preemption.py) and ends with ``Preempted``; a write that
runs out of space removes what the epoch wrote and ends with ``DiskFullError``
naming the last complete checkpoint, which stays intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfalign import console
from tfalign.data.batching import make_dataset
from tfalign.errors import UserError
from tfalign.files import writing
from tfalign.model import build_model, count_trainable
from tfalign.optimizers import make_optimizer
from tfalign.training import diagnostics
from tfalign.optimizers.weight_average import averaged_weights
from tfalign.training.checkpoints import RunCheckpoints, restore_weights
from tfalign.training.loss_scale import DynamicLossScale
from tfalign.training.preemption import DEFAULT_GRACE_SECONDS, Preempted, PreemptionWatch
from tfalign.training.run_folder import BEST_METRICS, RunFolder, RunState
from tfalign.training.schedules import LinearWarmup, PlateauHalving
from tfalign.training.task import AlignmentTask, StageData, step_hits

HISTOGRAM_BATCH = 16  # validation videos whose stack outputs the feature histograms show
__all__ = ["EpochTally", "StageData", "Trainer", "TrainingError", "step_hits"]


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a run folder in the way, ...)."""


class ScheduleTarget:
    """What the schedule callbacks adjust: Keras callbacks set ``model.optimizer``'s
    learning rate. The model itself does not hold the optimizer, so that its
    weights files (the best checkpoints) hold its weights alone."""

    def __init__(self, optimizer):
        self.optimizer = optimizer


@dataclasses.dataclass
class EpochTally:
    """What an epoch's steps add up (saved in state.json when a run stops mid-epoch)."""

    steps: int = 0
    losses: list = dataclasses.field(default_factory=list)
    hits: list = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    sequences: int = 0
    gradient_norms: list = dataclasses.field(default_factory=list)
    ratios: dict = dataclasses.field(default_factory=dict)  # update-to-weight ratios of the first step
    seconds: float = 0.0

    def add(self, loss: float, norm: float, hits, sequences: int) -> None:
        self.steps += 1
        self.losses.append(loss)
        self.gradient_norms.append(norm)
        self.hits = [self.hits[0] + float(hits[0]), self.hits[1] + float(hits[1])]
        self.sequences += sequences

    def logs(self, learning_rate: float) -> dict:
        return {"loss": float(np.mean(self.losses)), "learning_rate": learning_rate,
                "sequences_per_second": self.sequences / max(self.seconds, 1e-9), "seconds": self.seconds,
                "step_accuracy": self.hits[0] / max(self.hits[1], 1.0),
                "gradient_norm": float(np.mean(self.gradient_norms))}


def report_epoch(log, epoch, epochs, logs, durations, new_lr, schedule) -> None:
    """The epoch's summary line, with the time left for the run, and a halving of the rate."""
    left = np.mean((durations[1:] or durations)[-5:]) * (epochs - epoch - 1)  # the first compiles
    log(f"epoch {epoch + 1}/{epochs}  loss {logs['loss']:.4f}  lr {logs['learning_rate']:.2e}  "
        f"step acc {logs['step_accuracy']:.3f}  val loss {logs['val_loss']:.4f}  "
        f"val step acc {logs['val_step_accuracy']:.3f}  "
        f"val clip acc {logs['val_clip_accuracy']:.4f}  val sentence IoU {logs['val_sentence_iou']:.4f}  "
        f"({logs['seconds']:.1f} s, {logs['sequences_per_second']:.0f} seq/s"
        + (f"; ~{console.duration(left)} left)" if epoch + 1 < epochs else ")"))
    if new_lr < logs["learning_rate"]:
        log(f"learning rate halved to {new_lr:.2e}: the training loss has not improved by a relative "
            f"{schedule.plateau_threshold:g} for {schedule.plateau_patience} epochs")


def compiled_train_step(strategy, element_spec, replica_step):
    """``replica_step(batch) -> (loss, gradient norm, hits)`` on every replica, as one
    tf.function: the losses and hits summed over the replicas, the norms averaged."""
    # autograph=False here and at every tf.function of the package: the loops are written as
    # tf.while_loop, so AutoGraph's conversion of each traced function only cost ~5 s a start.
    @tf.function(input_signature=[element_spec], autograph=False)
    def train_step(batch):
        loss, norm, hits = strategy.run(replica_step, args=(batch,))
        total = lambda value: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        return total(loss), strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None), total(hits)

    return train_step


def compiled_eval_step(strategy, element_spec, replica_step):
    """``replica_step(batch) -> (summed loss, hits)`` on every replica, as one tf.function, summed."""
    @tf.function(input_signature=[element_spec], autograph=False)
    def eval_step(batch):
        total, hits = strategy.run(replica_step, args=(batch,))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, hits, axis=None))

    return eval_step


class Trainer:
    """Trains one stage of an experiment into ``run_dir``, running its ``task`` (default: ``AlignmentTask``).

    ``evaluate(model, episodes, decoding) -> {"clip_accuracy", "sentence_iou", ...}``
    scores the validation videos each epoch (the best checkpoints follow it);
    ``runtime`` (the strategy and replicas) is recorded in config.json;
    ``preemption_grace``: the seconds a signal leaves to save at the next step.
    """

    def __init__(self, config, run_dir, strategy=None, chief=True, log=print, max_steps_per_epoch=None,
                 restore_dir=None, evaluate: Callable | None = None, runtime: dict | None = None, task=None,
                 preemption_grace: float = DEFAULT_GRACE_SECONDS):
        self.config, self.task = config, task or AlignmentTask(config)
        # Non-chief workers write into a temporary run_dir but resume from the chief's.
        self.folder = RunFolder(run_dir, restore_dir)
        self.run_dir = self.folder.path
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief, self.log, self.evaluate, self.runtime = chief, log, evaluate, runtime
        self.max_steps_per_epoch, self.preemption_grace = max_steps_per_epoch, preemption_grace
        with self.strategy.scope():
            self.model = build_model(config.model, seed=config.trainer.seed, precision=config.trainer.precision)
            self.zero_init = diagnostics.zero_initialized(self.model.trainable_variables)
            self.optimizer = make_optimizer(config.optimizer.name, config.optimizer.learning_rate,
                                            weight_averaging=config.optimizer.weight_averaging)
            self.optimizer.build(self.model.trainable_variables)
            if self.model.dtw_start and hasattr(self.optimizer, "exclude_from_layer_adaptation"):
                # The DTW start's corrections begin at zero: LARS would scale their steps to nothing.
                self.optimizer.exclude_from_layer_adaptation(self.model.potentials.trainable_variables)
            # fp16 needs its loss scaled (bf16 has float32's range and needs none).
            self.loss_scale = DynamicLossScale() if config.trainer.precision == "fp16" else None
        if self.loss_scale is not None and self.strategy.num_replicas_in_sync > 1:
            raise UserError("trainer.precision fp16: one replica only (its skipped steps are not synchronized "
                            "across replicas); use bf16 with several")
        self.checkpoints = RunCheckpoints.of_training(self.folder, self.model, self.optimizer, self.loss_scale)
        self.checkpoint = self.checkpoints.checkpoint
        schedule = config.schedule
        self.plateau = PlateauHalving("loss", schedule.plateau_factor, schedule.plateau_patience,
                                      schedule.plateau_threshold, start_epoch=schedule.warmup_epochs)
        self._train_step = self._eval_step = None  # traced on the first batch's spec

    # ------------------------------------------------------------ run folder
    def prepare_run_dir(self, resume: bool):
        folder = self.folder
        if folder.has_state() and not resume:
            raise TrainingError(f"{folder.restore_dir} already holds a run; pass --resume to continue it, "
                                f"or --output-dir for a new one")
        folder.clean(self.log)
        if resume and folder.has_state():
            self.checkpoints.resume(self.config)
            if self.state.plateau:
                self.plateau.set_state(self.state.plateau)
            where = f"at {self.state.describe()}" if self.state.partial else f"after epoch {self.state.epoch}"
            self.log(f"resuming {folder.restore_dir} {where}")
        folder.write_config(self.config, self.runtime)

    @property
    def state(self) -> RunState:
        return self.checkpoints.state

    @property
    def trial_id(self) -> str:
        return self.folder.trial_id

    def load_best(self, metric: str):
        """The model's weights from the best checkpoint by ``metric`` (the last one while there is none)."""
        restore_weights(self.model, self.folder.checkpoint_path(self.state.checkpoint_name(metric)), self.config)

    # -------------------------------------------------------------- the steps
    def _make_train_step(self, element_spec):
        """The task's step on every replica, compiled: (loss, gradient norm, [correct, valid] steps)."""
        return compiled_train_step(self.strategy, element_spec, lambda batch: self.task.train_step(
            self.model, self.optimizer, batch, self.loss_scale))

    def teacher_forced(self, dataset) -> dict:
        """Validation loss and step accuracy over ``dataset`` (distributed batches)."""
        if self._eval_step is None:
            self._eval_step = compiled_eval_step(self.strategy, dataset.element_spec,
                                                 lambda batch: self.task.validation_step(self.model, batch))
        total, hits = 0.0, np.zeros(2)
        for batch in dataset:
            loss, batch_hits = self._eval_step(batch)
            total, hits = total + float(loss), hits + batch_hits.numpy()
        return {"loss": total / max(hits[1], 1.0), "step_accuracy": hits[0] / max(hits[1], 1.0)}

    # -------------------------------------------------------------- training
    def fit(self, data: StageData, epochs: int, resume=False) -> RunState:
        if self.evaluate is None:
            raise ValueError("Trainer.fit needs an evaluate function (tfalign.evaluation.prediction.evaluate_model)")
        self.prepare_run_dir(resume)
        if self.state.finished and self.state.epoch >= epochs:
            self.log("this stage already finished")
            return self.state
        if self.state.finished:  # resumed with more epochs: training goes on to them
            self.log(f"training on from epoch {self.state.epoch} to {epochs}")
            self.state.finished = False
        if self.max_steps_per_epoch:  # a quick trial: the index says so
            self.state.max_steps_per_epoch = self.max_steps_per_epoch
        fresh = self.state.epoch == 0 and not self.state.partial  # a run's start, not a resumed one
        videos = self.task.begin(self.model, data, fresh)
        if fresh and self.config.trainer.validate_start:
            self._validate_start(data)
        context = self._begin(data, videos)
        durations = []  # of this process's epochs: the time left for the run
        timeout = lambda: (f"error: stopped by a signal: no checkpoint could be saved within "
                           f"{self.preemption_grace:g} s; the last complete checkpoint ({self.state.describe()}) "
                           f"is intact: --resume continues from it")
        with PreemptionWatch(self.preemption_grace, on_timeout=timeout) as watch:
            for epoch in range(self.state.epoch, epochs):
                started = time.time()
                tally = self._train_epoch(epoch, epochs, videos, watch, context["callbacks"])
                logs = self._finish_epoch(epoch, tally, data, context)
                durations.append(time.time() - started)
                report_epoch(self.log, epoch, epochs, logs, durations, float(self.optimizer.learning_rate.numpy()),
                             self.config.schedule)
                patience = self.config.trainer.early_stopping_patience
                if patience and self.state.since_best >= patience:
                    self.log(f"early stopping: no better validation clip accuracy for {self.state.since_best} epochs")
                    break
            if watch.requested:  # a signal during the last validation: its epoch is saved
                self._preempt(None, None, watch)
        self.state.finished = True
        # Equal on every worker of a synchronous run, and between a run and its resumed twin.
        self.state.weights_digest = self.weights_digest()
        self.checkpoints.write_state()
        console.detail(f"final weights digest: {self.state.weights_digest}")
        return self.state

    def _validate_start(self, data) -> None:
        """The model as it starts, validated as "epoch 0": the best checkpoint until an
        epoch beats it (a model that starts at DTW is never worse than DTW on validation)."""
        self.log(f"validating the model as it starts on {len(data.val)} videos")
        with self.checkpoints.saving():
            val = self.evaluate(self.model, data.val, self.config.task.validation_decoding)
            self.checkpoints.save_best(-1, {f"val_{m}": val[m] for m in BEST_METRICS})
        self.state.start = {f"val_{m}": val[m] for m in BEST_METRICS}
        self.log("epoch 0 (the start): " + "  ".join(f"val {m.replace('_', ' ')} {val[m]:.4f}" for m in BEST_METRICS))

    def _begin(self, data, videos) -> dict:
        """What every epoch shares: the schedule callbacks, the summaries, the validation batches."""
        samples = self.task.epoch_samples(videos, self.state.epoch)
        steps = self._steps(samples)
        pseudo = "" if data.train else " (pseudo-labelled by the closed form)"
        self.log(f"{len(samples)} training samples from {len(videos)} videos{pseudo} "
                 f"(max {max(s.num_actions for s in samples)} actions), {len(data.val)} validation videos, "
                 f"about {steps} steps an epoch, {count_trainable(self.model):,} trainable parameters")
        callbacks = [self.plateau]
        if self.config.schedule.warmup_epochs:
            callbacks.append(LinearWarmup(self.config.schedule.warmup_start_lr, self.config.optimizer.learning_rate,
                                          self.config.schedule.warmup_epochs, steps))
        summaries = None
        if self.chief:  # other workers' event files would be thrown away anyway
            with writing("the TensorBoard events", self.folder / "tensorboard"):
                summaries = diagnostics.RunSummaries(self.folder / "tensorboard", self.config.to_dict(),
                                                     self.trial_id, self.model, self.zero_init)
        return {"callbacks": keras.callbacks.CallbackList(callbacks, model=ScheduleTarget(self.optimizer)),
                "summaries": summaries,
                "histogram_batch": next(iter(make_dataset(data.val[:HISTOGRAM_BATCH], HISTOGRAM_BATCH))),
                "val_cuts": self.strategy.experimental_distribute_dataset(self.task.validation_dataset(data.val))}

    def _steps(self, samples) -> int:
        steps = self.task.steps(samples)
        return min(steps, self.max_steps_per_epoch) if self.max_steps_per_epoch else steps

    def _train_epoch(self, epoch, epochs, videos, watch, callbacks) -> EpochTally:
        """The epoch's steps, from where a run stopped mid-epoch left it."""
        if self.task.needs_relabelling(epoch, epochs):
            with self.averaged_weights():  # the teacher: the moving average of the weights
                self.log(self.task.relabel(self.model, epoch, epochs))
        samples = self.task.epoch_samples(self.task.training_videos(videos), epoch)
        steps = self._steps(samples)
        partial = self.state.partial if self.state.partial and self.state.partial["epoch"] == epoch else None
        tally = EpochTally(**{k: v for k, v in partial.items() if k != "epoch"}) if partial else EpochTally()
        dataset = self.strategy.experimental_distribute_dataset(
            self.task.epoch_dataset(samples, epoch, skip=tally.steps))
        if self._train_step is None:
            self._train_step = self._make_train_step(dataset.element_spec)
            self.log(f"epoch {epoch + 1}/{epochs}: tracing and compiling the training step (the first steps "
                     f"take longer)")
        callbacks.on_epoch_begin(epoch)
        # A bar on a terminal; a line now and then in a log file; the epoch summary line after it.
        progress = console.Progress(steps, f"epoch {epoch + 1}/{epochs}", enabled=self.chief)
        started = time.time() - tally.seconds
        for step, batch in enumerate(dataset, start=tally.steps):
            if step >= steps:
                break
            if watch.requested:
                progress.close()
                self._preempt(epoch, tally, watch)
            callbacks.on_train_batch_begin(step)
            before = diagnostics.snapshot(self.model.trainable_variables) if step == 0 else None
            loss, norm, hits = self._train_step(batch)
            loss = float(loss)
            if not math.isfinite(loss):
                raise TrainingError(f"the training loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                                    f"nothing of this epoch was saved (try a lower --lr); --resume restarts "
                                    f"from {self.state.describe()}")
            if before is not None:
                tally.ratios = diagnostics.update_ratios(self.model.trainable_variables, before)
            replicas = self.strategy.num_replicas_in_sync
            tally.add(loss, float(norm), hits.numpy(),
                      int(self.strategy.experimental_local_results(batch["clip_lengths"])[0].shape[0]) * replicas)
            tally.seconds = time.time() - started
            progress.update(step + 1, loss=float(np.mean(tally.losses)),  # the epoch's mean so far
                            lr=f"{float(self.optimizer.learning_rate.numpy()):.2e}")
        progress.close()
        if watch.requested:  # after the epoch's last step, before its validation
            self._preempt(epoch, tally, watch)
        return tally

    def _finish_epoch(self, epoch, tally, data, context) -> dict:
        """Validation, the schedule, and everything of the epoch saved (state.json last)."""
        logs = tally.logs(float(self.optimizer.learning_rate.numpy()))
        started, summaries = time.time(), context["summaries"]

        def write_summaries():
            if summaries is not None:
                with writing("the TensorBoard events", self.folder / "tensorboard"):
                    summaries.write_epoch(epoch + 1, logs, tally.ratios, context["histogram_batch"])

        with self.checkpoints.saving():  # out of space: nothing of this epoch stays
            with self.averaged_weights():  # validation and best checkpoints see the averaged weights
                logs.update({f"val_{k}": v for k, v in self.teacher_forced(context["val_cuts"]).items()})
                val = self.evaluate(self.model, data.val, self.config.task.validation_decoding)
                logs.update({f"val_{m}": val[m] for m in BEST_METRICS})
                stale = self.checkpoints.save_best(epoch, logs)
            context["callbacks"].on_epoch_end(epoch, logs)
            # Training and validation, over every session of the run (the run's wall time, saving aside).
            self.state.wall_seconds += tally.seconds + time.time() - started
            self.checkpoints.end_epoch(epoch, logs, self.plateau.get_state(), stale, before_commit=write_summaries)
        return logs

    def _preempt(self, epoch, tally, watch):
        """Stops for a signal: saves a checkpoint at this step (unless the epoch just ended
        was saved whole, or other workers would have to save with us) and raises ``Preempted``."""
        name = {2: "SIGINT", 15: "SIGTERM"}.get(watch.requested, f"signal {watch.requested}")
        multiworker = getattr(self.strategy.extended, "_in_multi_worker_mode", lambda: False)()
        if tally is not None and tally.steps and not multiworker:
            self.checkpoints.save_partial(epoch, dataclasses.asdict(tally))
        raise Preempted(watch.requested, f"stopped by {name}: the last complete checkpoint is at "
                                         f"{self.state.describe()}; the same command with --resume continues from it")

    @contextlib.contextmanager
    def averaged_weights(self):
        """With weight averaging on, the model holds the optimizer's moving averages inside the block."""
        with averaged_weights(self.model, self.optimizer, self.config.optimizer.weight_averaging):
            yield

    def weights_digest(self) -> str:
        """A hash of all weights: equal on every worker of a synchronous run."""
        return weights_digest(self.model)


def weights_digest(model) -> str:
    """A short hash of a model's weights."""
    digest = hashlib.sha1()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]
