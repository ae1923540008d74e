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

Run folder:
    config.json           the resolved experiment
    state.json            last completed epoch, schedule state, best values, history
    checkpoints/last/     every epoch (two kept)
    checkpoints/best_clip_accuracy/, checkpoints/best_sentence_iou/
    tensorboard/train/, tensorboard/val/
    metrics.json          test figures of each best checkpoint (at the end)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfalign.data.batching import make_dataset
from tfalign.data.cutting import cut_at_text_boundaries
from tfalign.data.oracle import actions_to_alignment
from tfalign.data.records import write_json_atomic
from tfalign.evaluation.metrics import evaluate_alignments
from tfalign.model import NeuMatchAligner
from tfalign.model.inference import greedy_function
from tfalign.optimizers import make_optimizer
from tfalign.training import diagnostics
from tfalign.training.losses import masked_cross_entropy_sum
from tfalign.training.schedules import LinearWarmup, PlateauHalving

BEST_METRICS = ("clip_accuracy", "sentence_iou")
EVAL_BATCH = 16


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a run folder in the way, ...)."""


def build_model(config, seed=None) -> NeuMatchAligner:
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = NeuMatchAligner(encoder=config.encoder, normalization=config.normalization, dropout=config.dropout,
                            encoder_dropout=config.encoder_dropout)
    model.build()
    return model


def count_trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def predict_alignments(model, episodes, batch_size=EVAL_BATCH):
    """Greedy alignment of every episode, as clip_to_text arrays."""
    predictions = [None] * len(episodes)
    for batch in make_dataset(episodes, batch_size):
        out = _greedy_fn(model)({k: batch[k] for k in ("clip_features", "text_features", "clip_lengths",
                                                       "text_lengths")})
        actions, counts = out["actions"].numpy(), out["num_actions"].numpy()
        for row, index in enumerate(batch["index"].numpy()):
            e = episodes[index]
            predictions[index] = actions_to_alignment(actions[row, :counts[row]], e.num_clips, e.num_texts)
    return predictions


def _greedy_fn(model):
    if not hasattr(model, "_tfalign_greedy"):
        model._tfalign_greedy = greedy_function(model, xla=True)
    return model._tfalign_greedy


def evaluate_model(model, episodes) -> dict:
    return evaluate_alignments(episodes, predict_alignments(model, episodes))


@dataclasses.dataclass
class StageData:
    train: list
    val: list
    test: list | None = None


class Trainer:
    """Trains one stage of an experiment into ``run_dir``."""

    def __init__(self, config, run_dir, strategy=None, chief=True, log=print, max_steps_per_epoch=None,
                 early_stopping_patience=None, restore_dir=None):
        self.config, self.run_dir = config, pathlib.Path(run_dir)
        # Non-chief workers write into a temporary run_dir but resume from the chief's.
        self.restore_dir = pathlib.Path(restore_dir) if restore_dir else self.run_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief, self.log = chief, log
        self.max_steps_per_epoch = max_steps_per_epoch
        self.early_stopping_patience = early_stopping_patience
        with self.strategy.scope():
            self.model = build_model(config, seed=config.seed)
            self.optimizer = make_optimizer(config.optimizer, config.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.model.optimizer = self.optimizer  # the schedule callbacks set its learning rate
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.state = {"epoch": 0, "history": [], "best": {m: {"value": -1.0, "epoch": None, "path": None}
                                                          for m in BEST_METRICS},
                      "plateau": None, "since_best": 0, "last_checkpoint": None, "finished": False}

    # ------------------------------------------------------------ run folder
    def _path(self, *parts):
        return self.run_dir.joinpath(*parts)

    def prepare_run_dir(self, resume: bool):
        state_file = self.restore_dir / "state.json"
        if state_file.exists() and not resume:
            raise TrainingError(f"{self.restore_dir} already holds a run; pass --resume to continue it, "
                                f"or --output-dir for a new one")
        if resume and state_file.exists():
            self.state = json.loads(state_file.read_text())
            if self.state["last_checkpoint"]:
                self.checkpoint.read(str(self.restore_dir / self.state["last_checkpoint"])).expect_partial()
            self.log(f"resuming {self.restore_dir} after epoch {self.state['epoch']}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path("config.json"), self.config.to_dict())

    def load_best(self, metric: str):
        path = self.state["best"][metric]["path"] or self.state["last_checkpoint"]
        self.checkpoint.read(self._checkpoint_path(path)).expect_partial()

    def _checkpoint_path(self, relative: str) -> str:
        """A checkpoint named in state.json: in this run_dir, or (a resumed
        non-chief worker's best from before the restart) in the chief's."""
        own = self._path(relative)
        return str(own if own.with_name(own.name + ".index").exists() else self.restore_dir / relative)

    # --------------------------------------------------------------- the step
    def _make_train_step(self, element_spec):
        model, optimizer, config = self.model, self.optimizer, self.config
        variables = model.trainable_variables

        def replica_step(batch):
            context = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                logits = model(batch, training=True)
                loss_sum, count = masked_cross_entropy_sum(logits, batch["actions"], batch["action_lengths"],
                                                           config.label_smoothing)
                global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
                loss = loss_sum / tf.maximum(global_count, 1.0)
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            grads, norm = tf.clip_by_global_norm(grads, config.clip_global_norm)
            if config.weight_decay:
                grads = [g + config.weight_decay * v for g, v in zip(grads, variables)]
            replicas = context.num_replicas_in_sync
            if replicas > 1:  # Keras's apply() sums over replicas once more
                grads = [g / replicas for g in grads]
            optimizer.apply(grads, variables)
            return loss, norm

        @tf.function(input_signature=[element_spec])
        def train_step(batch):
            loss, norm = self.strategy.run(replica_step, args=(batch,))
            return (self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                    self.strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None))

        return train_step

    def _epoch_dataset(self, samples, epoch):
        dataset = make_dataset(samples, self.config.batch_size, shuffle=True, seed=self.config.seed * 100003 + epoch,
                               bucket=True)
        return self.strategy.experimental_distribute_dataset(dataset)

    # -------------------------------------------------------------- training
    def fit(self, data: StageData, epochs: int, resume=False) -> dict:
        self.prepare_run_dir(resume)
        if self.state.get("finished"):
            self.log("this stage already finished")
            return self.state
        samples = [s for e in data.train for s in cut_at_text_boundaries(e, self.config.max_train_actions)]
        steps = math.ceil(len(samples) / self.config.batch_size)
        if self.max_steps_per_epoch:
            steps = min(steps, self.max_steps_per_epoch)
        self.log(f"{len(samples)} training samples from {len(data.train)} videos "
                 f"(max {max(s.num_actions for s in samples)} actions), {len(data.val)} validation videos, "
                 f"{steps} steps an epoch, {count_trainable(self.model):,} trainable parameters")
        callbacks = self._callbacks(steps)
        train_step = None
        writers = None
        if self.chief:  # other workers' event files would be thrown away anyway
            writers = {k: tf.summary.create_file_writer(str(self._path("tensorboard", k))) for k in ("train", "val")}
        histogram_batch = next(iter(make_dataset(data.val[:EVAL_BATCH], EVAL_BATCH)))
        manager = tf.train.CheckpointManager(self.checkpoint, str(self._path("checkpoints", "last")), max_to_keep=2)

        for epoch in range(self.state["epoch"], epochs):
            started = time.time()
            dataset = self._epoch_dataset(samples, epoch)
            if train_step is None:
                train_step = self._make_train_step(dataset.element_spec)
            callbacks.on_epoch_begin(epoch)
            # An interactive bar on a terminal; the one-line epoch summary below otherwise.
            progbar = keras.utils.Progbar(steps, stateful_metrics=["lr"],
                                          verbose=1 if self.chief and sys.stdout.isatty() else 0)
            losses, ratios, sequences = [], {}, 0
            for step, batch in enumerate(dataset):
                if step >= steps:
                    break
                callbacks.on_train_batch_begin(step)
                before = diagnostics.snapshot(self.model.trainable_variables) if step == 0 else None
                loss, _ = train_step(batch)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise TrainingError(f"the training loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                                        f"nothing of this epoch was saved (try a lower --lr); --resume restarts "
                                        f"from epoch {self.state['epoch']}")
                if before is not None:
                    ratios = diagnostics.update_ratios(self.model.trainable_variables, before)
                losses.append(loss)
                sequences += int(self.strategy.experimental_local_results(batch["clip_lengths"])[0].shape[0]) * \
                    self.strategy.num_replicas_in_sync
                progbar.update(step + 1, [("loss", loss), ("lr", float(self.optimizer.learning_rate.numpy()))])
            train_loss = float(np.mean(losses))
            seconds = time.time() - started
            logs = {"loss": train_loss, "learning_rate": float(self.optimizer.learning_rate.numpy()),
                    "sequences_per_second": sequences / seconds, "seconds": seconds}
            val = evaluate_model(self.model, data.val)
            logs.update({f"val_{m}": val[m] for m in BEST_METRICS})
            callbacks.on_epoch_end(epoch, logs)
            self._end_epoch(epoch, logs, manager, writers, histogram_batch, ratios)
            self.log(f"epoch {epoch + 1}/{epochs}  loss {train_loss:.4f}  lr {logs['learning_rate']:.2e}  "
                     f"val clip acc {val['clip_accuracy']:.4f}  val sentence IoU {val['sentence_iou']:.4f}  "
                     f"({seconds:.1f} s, {logs['sequences_per_second']:.0f} seq/s)")
            if self.early_stopping_patience and self.state["since_best"] >= self.early_stopping_patience:
                self.log(f"early stopping: no better validation clip accuracy for {self.state['since_best']} epochs")
                break
        self.state["finished"] = True
        write_json_atomic(self._path("state.json"), self.state)
        return self.state

    def _callbacks(self, steps):
        config = self.config
        plateau = PlateauHalving("loss", config.plateau_factor, config.plateau_patience, config.plateau_threshold,
                                 start_epoch=config.warmup_epochs)
        if self.state.get("plateau"):
            plateau.set_state(self.state["plateau"])
        callbacks = [plateau]
        if config.warmup_epochs:
            callbacks.append(LinearWarmup(config.warmup_start_lr, config.learning_rate, config.warmup_epochs, steps))
        self._plateau = plateau
        return keras.callbacks.CallbackList(callbacks, model=self.model)

    def _end_epoch(self, epoch, logs, manager, writers, histogram_batch, ratios):
        """Saves everything of a finished epoch; state.json, written last, commits it."""
        state = self.state
        improved, stale = False, []
        # Every worker saves (saving distributed variables is collective); non-chief
        # workers save into their own temporary run_dir.
        last = manager.save(checkpoint_number=epoch + 1)
        state["last_checkpoint"] = os.path.relpath(last, self.run_dir)
        for metric in BEST_METRICS:
            value = logs[f"val_{metric}"]
            best = state["best"][metric]
            if value > best["value"]:
                improved |= metric == "clip_accuracy"
                old = best["path"]
                best.update(value=value, epoch=epoch + 1)
                prefix = self._path("checkpoints", f"best_{metric}", f"ckpt-{epoch + 1}")
                best["path"] = os.path.relpath(self.checkpoint.write(str(prefix)), self.run_dir)
                stale.append(old)
        state["since_best"] = 0 if improved else state["since_best"] + 1
        state["epoch"] = epoch + 1
        state["plateau"] = self._plateau.get_state()
        state["history"].append({"epoch": epoch + 1, **logs})
        if writers:
            self._write_summaries(epoch, logs, writers, histogram_batch, ratios)
        write_json_atomic(self._path("state.json"), state)
        for old in filter(None, stale):  # old best checkpoints go only once state.json no longer names them
            for file in self.run_dir.glob(old + "*"):
                file.unlink(missing_ok=True)

    def _write_summaries(self, epoch, logs, writers, histogram_batch, ratios):
        with writers["train"].as_default():
            tf.summary.scalar("loss", logs["loss"], step=epoch + 1)
            tf.summary.scalar("learning_rate", logs["learning_rate"], step=epoch + 1)
            tf.summary.scalar("sequences_per_second", logs["sequences_per_second"], step=epoch + 1)
            diagnostics.write_update_ratios(ratios, step=epoch + 1)
        with writers["val"].as_default():
            for metric in BEST_METRICS:
                tf.summary.scalar(metric, logs[f"val_{metric}"], step=epoch + 1)
            diagnostics.stack_histograms(self.model, histogram_batch, step=epoch + 1)
        for writer in writers.values():
            writer.flush()

    def weights_digest(self) -> str:
        """A hash of all weights: equal on every worker of a synchronous run."""
        import hashlib

        digest = hashlib.sha1()
        for weight in self.model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()[:16]
