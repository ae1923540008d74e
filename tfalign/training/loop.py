"""One custom training loop for every tf.distribute strategy.

Keras 3's ``fit`` does not run under MultiWorkerMirroredStrategy (keras
issue 20585), so the loop is written out: ``strategy.run`` for the step,
Keras callbacks for the schedules, and a run folder that makes every epoch
resumable.

A step, on every replica: the loss is the label-smoothed cross-entropy summed
over the replica's valid steps, divided by the *global* count of valid steps;
gradients are all-reduced, clipped to global norm 2, L2 weight decay is added
(after clipping, as PyTorch's Adam does), and the optimizer is applied. So a
step on N replicas equals a step on one device with the same global batch.

Validation decodes whole videos each epoch with the ``evaluate`` function the
trainer is given (``tfalign.evaluation.prediction.evaluate_model``): training/
does not import evaluation/. The run folder and its state: run_folder.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfalign import console
from tfalign.data.batching import count_batches, make_dataset
from tfalign.data.cutting import cut_at_text_boundaries, random_crops
from tfalign.errors import UserError
from tfalign.files import read_json_object
from tfalign.model import build_model, count_trainable
from tfalign.optimizers import make_optimizer
from tfalign.training import diagnostics
from tfalign.training.loss_scale import DynamicLossScale
from tfalign.training.losses import contrastive_sum, lattice_cross_entropy_sum, masked_cross_entropy_sum
from tfalign.training.run_folder import (BEST_METRICS, WEIGHTS_SUFFIX, RunFolder, RunState, checkpoint_structure,
                                        incompatible_fields, read_checkpoint, restore_weights, save_weights)
from tfalign.training.schedules import LinearWarmup, PlateauHalving

HISTOGRAM_BATCH = 16  # validation videos whose stack outputs the feature histograms show


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a run folder in the way, ...)."""


def step_hits(logits, batch):
    """[correct, valid] action steps of a teacher-forced batch: the step accuracy's counts."""
    mask = tf.sequence_mask(batch["action_lengths"], tf.shape(batch["actions"])[1], dtype=tf.float32)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(batch["actions"], tf.int32)),
                      tf.float32)
    return tf.stack([tf.reduce_sum(correct * mask), tf.reduce_sum(mask)])


@dataclasses.dataclass
class StageData:
    train: list
    val: list
    test: list | None = None


class ScheduleTarget:
    """What the schedule callbacks adjust: Keras callbacks set ``model.optimizer``'s
    learning rate. The model itself does not hold the optimizer, so that its
    weights files (the best checkpoints) hold its weights alone."""

    def __init__(self, optimizer):
        self.optimizer = optimizer


class Trainer:
    """Trains one stage of an experiment into ``run_dir``.

    ``evaluate(model, episodes, decoding) -> {"clip_accuracy", "sentence_iou", ...}``
    scores the validation videos each epoch (the best checkpoints follow it);
    ``runtime`` (the strategy and replicas) is recorded in config.json.
    """

    def __init__(self, config, run_dir, strategy=None, chief=True, log=print, max_steps_per_epoch=None,
                 restore_dir=None, evaluate: Callable | None = None, runtime: dict | None = None):
        self.config = config
        # Non-chief workers write into a temporary run_dir but resume from the chief's.
        self.folder = RunFolder(run_dir, restore_dir)
        self.run_dir = self.folder.path
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief, self.log, self.evaluate, self.runtime = chief, log, evaluate, runtime
        self.max_steps_per_epoch = max_steps_per_epoch
        with self.strategy.scope():
            self.model = build_model(config.model, seed=config.trainer.seed, precision=config.trainer.precision)
            self.zero_init = diagnostics.zero_initialized(self.model.trainable_variables)
            self.optimizer = make_optimizer(config.optimizer.name, config.optimizer.learning_rate,
                                            weight_averaging=config.optimizer.weight_averaging)
            self.optimizer.build(self.model.trainable_variables)
            # fp16 needs its loss scaled (bf16 has float32's range and needs none).
            self.loss_scale = DynamicLossScale() if config.trainer.precision == "fp16" else None
        if self.loss_scale is not None and self.strategy.num_replicas_in_sync > 1:
            raise UserError("trainer.precision fp16: one replica only (its skipped steps are not synchronized "
                            "across replicas); use bf16 with several")
        # Dropout draws from seed generators whose state Keras does not put in the
        # model's checkpoint; saved beside it, a resumed run draws the same masks.
        seed_states = [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        extra = {"dropout_seeds": seed_states} if seed_states else {}
        if self.loss_scale is not None:
            extra.update(loss_scale=self.loss_scale.scale, loss_scale_steps=self.loss_scale.finite_steps)
        self.checkpoint = checkpoint_structure(self.model, self.optimizer, **extra)
        self.state = RunState()

    # ------------------------------------------------------------ run folder
    def prepare_run_dir(self, resume: bool):
        folder = self.folder
        if folder.has_state() and not resume:
            raise TrainingError(f"{folder.restore_dir} already holds a run; pass --resume to continue it, "
                                f"or --output-dir for a new one")
        folder.clean(self.log)
        if resume and folder.has_state():
            saved = folder.restore_dir / "config.json"
            different = incompatible_fields(read_json_object(saved, "run config"), self.config) \
                if saved.exists() else []
            if different:
                raise UserError(f"resume: {folder.restore_dir} was trained with another config (differs in "
                                f"{', '.join(different[:5])}); only trainer.epochs may change when a run is resumed",
                                field="resume")
            self.state = folder.read_state()
            if self.state.last_checkpoint:
                read_checkpoint(self.checkpoint, folder.restore_dir / self.state.last_checkpoint)
            self.log(f"resuming {folder.restore_dir} after epoch {self.state.epoch}")
        folder.write_config(self.config, self.runtime)

    @property
    def trial_id(self) -> str:
        return self.folder.trial_id

    def load_best(self, metric: str):
        """The model's weights from the best checkpoint by ``metric`` (the last one while there is none)."""
        restore_weights(self.model, self.folder.checkpoint_path(self.state.checkpoint_name(metric)), self.config)

    # --------------------------------------------------------------- the step
    def _make_train_step(self, element_spec):
        model, optimizer, config, loss_scale = self.model, self.optimizer, self.config, self.loss_scale
        variables = model.trainable_variables

        def replica_step(batch):
            context = tf.distribute.get_replica_context()
            mean = lambda total, count: total / tf.maximum(context.all_reduce(tf.distribute.ReduceOp.SUM, count), 1.0)
            with tf.GradientTape() as tape:
                outputs = model.training_outputs(batch, training=True)
                loss = mean(*masked_cross_entropy_sum(outputs["logits"], batch["actions"], batch["action_lengths"],
                                                      config.trainer.label_smoothing))
                if config.trainer.lattice_weight:  # tfalign's own terms; off in the paper's experiments
                    loss += config.trainer.lattice_weight * mean(*lattice_cross_entropy_sum(
                        outputs["lattice_logits"], batch["clip_to_text"], batch["clip_lengths"],
                        batch["text_lengths"], config.trainer.label_smoothing))
                if config.trainer.contrastive_weight:
                    for similarity in outputs["similarities"].values():
                        loss += config.trainer.contrastive_weight * mean(*contrastive_sum(
                            similarity, batch["clip_to_text"], batch["clip_lengths"], batch["text_lengths"],
                            config.trainer.contrastive_temperature))
                differentiated = loss if loss_scale is None else loss_scale.scaled(loss)  # on the tape
            grads = tape.gradient(differentiated, variables)
            grads = [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype) for g, v in zip(grads, variables)]
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            if loss_scale is not None:
                grads, finite = loss_scale.unscaled(grads)
            grads, norm = tf.clip_by_global_norm(grads, config.optimizer.clip_global_norm)
            if config.optimizer.weight_decay:
                grads = [g + config.optimizer.weight_decay * v for g, v in zip(grads, variables)]
            replicas = context.num_replicas_in_sync
            if replicas > 1:  # Keras's apply() sums over replicas once more
                grads = [g / replicas for g in grads]
            def apply():
                optimizer.apply(grads, variables)

            if loss_scale is None:
                apply()
            else:  # a step with overflowing gradients is skipped
                tf.cond(finite, apply, lambda: None)
                loss_scale.update(finite)
            return loss, norm, step_hits(outputs["logits"], batch)

        @tf.function(input_signature=[element_spec])
        def train_step(batch):
            loss, norm, hits = self.strategy.run(replica_step, args=(batch,))
            total = lambda value: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            return total(loss), self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None), total(hits)

        return train_step

    def _make_eval_step(self, element_spec):
        """Teacher-forced, without dropout: the path's cross-entropy (label-smoothed
        as in training) summed, and [correct, valid] action steps."""
        model, config = self.model, self.config

        def replica_step(batch):
            logits = model.training_outputs(batch, training=False)["logits"]
            total, count = masked_cross_entropy_sum(logits, batch["actions"], batch["action_lengths"],
                                                    config.trainer.label_smoothing)
            return total, step_hits(logits, batch)

        @tf.function(input_signature=[element_spec])
        def eval_step(batch):
            total, hits = self.strategy.run(replica_step, args=(batch,))
            return (self.strategy.reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
                    self.strategy.reduce(tf.distribute.ReduceOp.SUM, hits, axis=None))

        return eval_step

    def teacher_forced(self, dataset) -> dict:
        """Validation loss and step accuracy over ``dataset`` (distributed batches)."""
        if self._eval_step is None:
            self._eval_step = self._make_eval_step(dataset.element_spec)
        total, hits = 0.0, np.zeros(2)
        for batch in dataset:
            loss, batch_hits = self._eval_step(batch)
            total, hits = total + float(loss), hits + batch_hits.numpy()
        return {"loss": total / max(hits[1], 1.0), "step_accuracy": hits[0] / max(hits[1], 1.0)}

    def _epoch_samples(self, videos, epoch):
        """The paper's fixed cuts, or (sampling="crops") random crops drawn anew
        each epoch, reproducibly from (seed, epoch)."""
        trainer = self.config.trainer
        if trainer.sampling == "paper":
            if self._fixed_samples is None:
                self._fixed_samples = [s for e in videos for s in cut_at_text_boundaries(e, trainer.max_train_actions)]
            return self._fixed_samples
        rng = np.random.default_rng([trainer.seed, epoch, 7])
        return random_crops(videos, rng, trainer.crop_min_actions, trainer.max_train_actions,
                            trainer.whole_video_fraction)

    def _epoch_dataset(self, samples, epoch):
        trainer = self.config.trainer
        dataset = make_dataset(samples, trainer.batch_size, shuffle=True, seed=trainer.seed * 100003 + epoch,
                               bucket=True)
        return self.strategy.experimental_distribute_dataset(dataset)

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
        self._fixed_samples = None
        if self.max_steps_per_epoch:  # a quick trial: the index says so
            self.state.max_steps_per_epoch = self.max_steps_per_epoch
        samples = self._epoch_samples(data.train, self.state.epoch)
        # Every batch of the epoch: the length buckets end in partial batches, so
        # there are more batches than ceil(samples / batch size).
        steps = count_batches(samples, self.config.trainer.batch_size, bucket=True)
        if self.max_steps_per_epoch:
            steps = min(steps, self.max_steps_per_epoch)
        self.log(f"{len(samples)} training samples from {len(data.train)} videos "
                 f"(max {max(s.num_actions for s in samples)} actions), {len(data.val)} validation videos, "
                 f"about {steps} steps an epoch, {count_trainable(self.model):,} trainable parameters")
        callbacks = self._callbacks(steps)
        train_step = None
        writers = None
        if self.chief:  # other workers' event files would be thrown away anyway
            logdir = self.folder / "tensorboard"
            writers = {k: tf.summary.create_file_writer(str(logdir / k)) for k in ("train", "val")}
            diagnostics.write_hparams(logdir, self.config.to_dict(), trial_id=self.trial_id)
            diagnostics.write_layout(logdir, [v.path for v in self.model.trainable_variables],
                                     normalized=self.model.video_norm is not None)
        histogram_batch = next(iter(make_dataset(data.val[:HISTOGRAM_BATCH], HISTOGRAM_BATCH)))
        # The validation videos cut as the training videos are: the teacher-forced loss and step accuracy.
        self._eval_step = None
        val_cuts = self.strategy.experimental_distribute_dataset(make_dataset(
            [s for e in data.val for s in cut_at_text_boundaries(e, self.config.trainer.max_train_actions)],
            self.config.trainer.batch_size))

        durations = []  # of this process's epochs: the time left for the run
        for epoch in range(self.state.epoch, epochs):
            started = time.time()
            samples = self._epoch_samples(data.train, epoch)
            epoch_steps = count_batches(samples, self.config.trainer.batch_size, bucket=True)
            if self.max_steps_per_epoch:
                epoch_steps = min(epoch_steps, self.max_steps_per_epoch)
            dataset = self._epoch_dataset(samples, epoch)
            if train_step is None:
                train_step = self._make_train_step(dataset.element_spec)
                self.log(f"epoch {epoch + 1}/{epochs}: tracing and compiling the training step (the first steps "
                         f"take longer)")
            callbacks.on_epoch_begin(epoch)
            # A bar on a terminal; a line now and then in a log file; the epoch summary line after it.
            progress = console.Progress(epoch_steps, f"epoch {epoch + 1}/{epochs}", enabled=self.chief)
            losses, ratios, sequences, hits = [], {}, 0, np.zeros(2)
            for step, batch in enumerate(dataset):
                if step >= epoch_steps:
                    break
                callbacks.on_train_batch_begin(step)
                before = diagnostics.snapshot(self.model.trainable_variables) if step == 0 else None
                loss, _, batch_hits = train_step(batch)
                loss, hits = float(loss), hits + batch_hits.numpy()
                if not math.isfinite(loss):
                    raise TrainingError(f"the training loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                                        f"nothing of this epoch was saved (try a lower --lr); --resume restarts "
                                        f"from epoch {self.state.epoch}")
                if before is not None:
                    ratios = diagnostics.update_ratios(self.model.trainable_variables, before)
                losses.append(loss)
                sequences += int(self.strategy.experimental_local_results(batch["clip_lengths"])[0].shape[0]) * \
                    self.strategy.num_replicas_in_sync
                progress.update(step + 1, loss=float(np.mean(losses)),  # the epoch's mean so far, as the summary
                                lr=f"{float(self.optimizer.learning_rate.numpy()):.2e}")
            progress.close()
            train_loss = float(np.mean(losses))
            seconds = time.time() - started
            logs = {"loss": train_loss, "learning_rate": float(self.optimizer.learning_rate.numpy()),
                    "sequences_per_second": sequences / seconds, "seconds": seconds,
                    "step_accuracy": hits[0] / max(hits[1], 1.0)}
            with self.averaged_weights():  # validation and best checkpoints see the averaged weights
                logs.update({f"val_{k}": v for k, v in self.teacher_forced(val_cuts).items()})
                val = self.evaluate(self.model, data.val, self.config.trainer.validation_decoding)
                logs.update({f"val_{m}": val[m] for m in BEST_METRICS})
                stale = self._save_best(epoch, logs)
            callbacks.on_epoch_end(epoch, logs)
            # Training and validation, over every session of the run (the run's wall time, saving aside).
            self.state.wall_seconds += time.time() - started
            self._end_epoch(epoch, logs, writers, histogram_batch, ratios, stale)
            durations.append(time.time() - started)
            left = np.mean((durations[1:] or durations)[-5:]) * (epochs - epoch - 1)  # the first compiles
            self.log(f"epoch {epoch + 1}/{epochs}  loss {train_loss:.4f}  lr {logs['learning_rate']:.2e}  "
                     f"step acc {logs['step_accuracy']:.3f}  val loss {logs['val_loss']:.4f}  "
                     f"val step acc {logs['val_step_accuracy']:.3f}  "
                     f"val clip acc {val['clip_accuracy']:.4f}  val sentence IoU {val['sentence_iou']:.4f}  "
                     f"({seconds:.1f} s, {logs['sequences_per_second']:.0f} seq/s"
                     + (f"; ~{console.duration(left)} left)" if epoch + 1 < epochs else ")"))
            new_lr = float(self.optimizer.learning_rate.numpy())
            if new_lr < logs["learning_rate"]:
                self.log(f"learning rate halved to {new_lr:.2e}: the training loss has not improved by a relative "
                         f"{self.config.schedule.plateau_threshold:g} for {self.config.schedule.plateau_patience} "
                         f"epochs")
            patience = self.config.trainer.early_stopping_patience
            if patience and self.state.since_best >= patience:
                self.log(f"early stopping: no better validation clip accuracy for {self.state.since_best} epochs")
                break
        self.state.finished = True
        # Equal on every worker of a synchronous run, and between a run and its resumed twin.
        self.state.weights_digest = self.weights_digest()
        self.folder.write_state(self.state)
        console.detail(f"final weights digest: {self.state.weights_digest}")
        return self.state

    def _callbacks(self, steps):
        config = self.config
        schedule = config.schedule
        plateau = PlateauHalving("loss", schedule.plateau_factor, schedule.plateau_patience, schedule.plateau_threshold,
                                 start_epoch=config.schedule.warmup_epochs)
        if self.state.plateau:
            plateau.set_state(self.state.plateau)
        callbacks = [plateau]
        if config.schedule.warmup_epochs:
            callbacks.append(LinearWarmup(config.schedule.warmup_start_lr, config.optimizer.learning_rate,
                                          config.schedule.warmup_epochs, steps))
        self._plateau = plateau
        return keras.callbacks.CallbackList(callbacks, model=ScheduleTarget(self.optimizer))

    @contextlib.contextmanager
    def averaged_weights(self):
        """With weight averaging on (``weight_averaging``: the EMA momentum), the
        model holds the optimizer's moving averages inside the block, and its
        own weights again after it; without, nothing changes."""
        if not self.config.optimizer.weight_averaging:
            yield
            return
        variables = self.model.trainable_variables
        raw = [v.numpy() for v in variables]
        self.optimizer.finalize_variable_values(variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, raw):
                variable.assign(value)

    def _save_best(self, epoch, logs) -> list:
        """Writes the best checkpoints this epoch improved; returns the ones they replace."""
        improved, stale, written = False, [], None
        for metric in BEST_METRICS:
            value, best = logs[f"val_{metric}"], self.state.best[metric]
            if value > best.value:
                improved |= metric == "clip_accuracy"
                stale.append(best.path)
                # The weights alone: a best checkpoint is for testing and export, never for resuming.
                path = self.folder / "checkpoints" / f"best_{metric}" / f"epoch-{epoch + 1}{WEIGHTS_SUFFIX}"
                best.value, best.epoch = value, epoch + 1
                best.path = os.path.relpath(save_weights(self.model, path, same_as=written), self.run_dir)
                written = path
        self.state.since_best = 0 if improved else self.state.since_best + 1
        return stale

    def _end_epoch(self, epoch, logs, writers, histogram_batch, ratios, stale):
        """Saves everything of a finished epoch; state.json, written last, commits it.
        One resume checkpoint is kept: the one before goes once state.json names the new one."""
        state = self.state
        # Every worker saves (saving distributed variables is collective); non-chief
        # workers save into their own temporary run_dir.
        previous = state.last_checkpoint
        last = self.checkpoint.write(str(self.folder / "checkpoints" / "last" / f"ckpt-{epoch + 1}"))
        state.last_checkpoint = os.path.relpath(last, self.run_dir)
        if previous != state.last_checkpoint:
            stale = [*stale, previous]
        state.epoch = epoch + 1
        state.plateau = self._plateau.get_state()
        state.history.append({"epoch": epoch + 1, **logs})
        if writers:
            self._write_summaries(epoch, logs, writers, histogram_batch, ratios)
        self.folder.write_state(state)
        for old in filter(None, stale):  # old best checkpoints go only once state.json no longer names them
            self.folder.remove_checkpoint(old)

    def _write_summaries(self, epoch, logs, writers, histogram_batch, ratios):
        with writers["train"].as_default():
            tf.summary.scalar("loss", logs["loss"], step=epoch + 1)
            tf.summary.scalar("learning_rate", logs["learning_rate"], step=epoch + 1)
            tf.summary.scalar("sequences_per_second", logs["sequences_per_second"], step=epoch + 1)
            tf.summary.scalar("step_accuracy", logs["step_accuracy"], step=epoch + 1)
            diagnostics.write_update_ratios(ratios, step=epoch + 1, zero_init=self.zero_init)
        with writers["val"].as_default():
            for metric in (*BEST_METRICS, "loss", "step_accuracy"):
                tf.summary.scalar(metric, logs[f"val_{metric}"], step=epoch + 1)
            diagnostics.write_feature_distributions(self.model, histogram_batch, step=epoch + 1)
        for writer in writers.values():
            writer.flush()

    def weights_digest(self) -> str:
        """A hash of all weights: equal on every worker of a synchronous run."""
        digest = hashlib.sha1()
        for weight in self.model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()[:16]
