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
    tensorboard/, tensorboard/train/, tensorboard/val/
    metrics.json          test figures of each best checkpoint (at the end)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from tfalign import console
from tfalign.data.batching import count_batches, make_dataset
from tfalign.data.cutting import cut_at_text_boundaries, random_crops
from tfalign.data.oracle import actions_to_alignment
from tfalign.data.records import read_json_object, write_json_atomic
from tfalign.errors import UserError
from tfalign.files import remove_leftovers
from tfalign.evaluation.metrics import evaluate_alignments
from tfalign.model import NeuMatchAligner
from tfalign.model.inference import exact_function, greedy_function
from tfalign.optimizers import make_optimizer
from tfalign.training import diagnostics
from tfalign.training.losses import contrastive_sum, lattice_cross_entropy_sum, masked_cross_entropy_sum
from tfalign.training.run_folder import incompatible_fields
from tfalign.training.schedules import LinearWarmup, PlateauHalving

BEST_METRICS = ("clip_accuracy", "sentence_iou")
EVAL_BATCH = 16


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a run folder in the way, ...)."""


def build_model(config, seed=None) -> NeuMatchAligner:
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = NeuMatchAligner(encoder=config.encoder, normalization=config.normalization, dropout=config.dropout,
                            encoder_dropout=config.encoder_dropout, history=config.decoder_history,
                            position=config.position_features, similarity_units=config.similarity_units,
                            stack_dropout=config.stack_dropout, similarity_source=config.similarity_source,
                            stack_features=config.stack_features, hidden_units=config.decoder_units)
    model.build()
    return model


def count_trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


DECODINGS = ("greedy", "exact")


def predict_alignments(model, episodes, batch_size=EVAL_BATCH, decoding="greedy", progress=None):
    """The alignment of every episode, as clip_to_text arrays: greedy, or the
    exact best action path (a decoder without history). ``progress`` (a
    console.Progress) counts the videos done."""
    predictions = [None] * len(episodes)
    done = 0
    for batch in make_dataset(episodes, batch_size):
        out = _decode_fn(model, decoding)({k: batch[k] for k in ("clip_features", "text_features", "clip_lengths",
                                                                 "text_lengths")})
        actions, counts = out["actions"].numpy(), out["num_actions"].numpy()
        for row, index in enumerate(batch["index"].numpy()):
            e = episodes[index]
            predictions[index] = actions_to_alignment(actions[row, :counts[row]], e.num_clips, e.num_texts)
        done += len(counts)
        if progress is not None:
            progress.update(done)
    return predictions


def _decode_fn(model, decoding="greedy"):
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
    cache = model.__dict__.setdefault("_tfalign_decoders", {})
    if decoding not in cache:
        cache[decoding] = greedy_function(model, xla=True) if decoding == "greedy" else exact_function(model)
    return cache[decoding]


def _greedy_fn(model):
    return _decode_fn(model, "greedy")


def step_hits(logits, batch):
    """[correct, valid] action steps of a teacher-forced batch: the step accuracy's counts."""
    mask = tf.sequence_mask(batch["action_lengths"], tf.shape(batch["actions"])[1], dtype=tf.float32)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(batch["actions"], tf.int32)),
                      tf.float32)
    return tf.stack([tf.reduce_sum(correct * mask), tf.reduce_sum(mask)])


def validation_decoding(config) -> str:
    """The decoding that selects checkpoints: "auto" selects them decoded exactly."""
    return "exact" if config.decoding == "auto" else config.decoding


def evaluate_model(model, episodes, decoding="greedy", progress=None) -> dict:
    return evaluate_alignments(episodes, predict_alignments(model, episodes, decoding=decoding, progress=progress))


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
        self.early_stopping_patience = early_stopping_patience or config.early_stopping_patience
        with self.strategy.scope():
            self.model = build_model(config, seed=config.seed)
            self.zero_init = diagnostics.zero_initialized(self.model.trainable_variables)
            self.optimizer = make_optimizer(config.optimizer, config.learning_rate,
                                            weight_averaging=config.weight_averaging)
            self.optimizer.build(self.model.trainable_variables)
        self.model.optimizer = self.optimizer  # the schedule callbacks set its learning rate
        # Dropout draws from seed generators whose state Keras does not put in the
        # model's checkpoint; saved beside it, a resumed run draws the same masks.
        seed_states = [v for v in self.model.non_trainable_variables if "seed_generator" in v.path]
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              **({"dropout_seeds": seed_states} if seed_states else {}))
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
        self._remove_leftovers()
        if not state_file.exists() and self._path("config.json").exists():
            # A run killed before its first epoch was saved: start again from nothing.
            for folder in ("checkpoints", "tensorboard"):
                shutil.rmtree(self._path(folder), ignore_errors=True)
        if resume and state_file.exists():
            saved = self.restore_dir / "config.json"
            different = incompatible_fields(read_json_object(saved, "run config"), self.config) \
                if saved.exists() else []
            if different:
                raise UserError(f"--resume: {self.restore_dir} was trained with another config (differs in "
                                f"{', '.join(different[:5])}); only --epochs may change when a run is resumed")
            self.state = read_json_object(state_file, "run state")
            if self.state["last_checkpoint"]:
                self.checkpoint.read(str(self.restore_dir / self.state["last_checkpoint"])).expect_partial()
            self.log(f"resuming {self.restore_dir} after epoch {self.state['epoch']}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path("config.json"), self.config.to_dict())

    def _remove_leftovers(self):
        """What a killed run left half-written: temporary files of this folder's
        atomic writes and TensorFlow's temporary checkpoint folders."""
        for leftover in remove_leftovers(self.run_dir, ".*.tmp-*"):
            self.log(f"removed {leftover.name}, left by a run that was killed")
        for temp in self._path("checkpoints").glob("**/*_temp*"):
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)

    @property
    def trial_id(self) -> str:
        """The run's name in TensorBoard's HParams table: its folder (and stage)."""
        return self.run_dir.name if self.run_dir.name != "pretraining" else f"{self.run_dir.parent.name}/pretraining"

    def checkpoint_name(self, which: str) -> str | None:
        """The checkpoint state.json names for "last" or a best metric (the last
        one while that metric has none)."""
        best = None if which == "last" else self.state["best"][which]["path"]
        return best or self.state["last_checkpoint"]

    def load_best(self, metric: str):
        self.checkpoint.read(self._checkpoint_path(self.checkpoint_name(metric))).expect_partial()

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
            mean = lambda total, count: total / tf.maximum(context.all_reduce(tf.distribute.ReduceOp.SUM, count), 1.0)
            with tf.GradientTape() as tape:
                outputs = model.training_outputs(batch, training=True)
                loss = mean(*masked_cross_entropy_sum(outputs["logits"], batch["actions"], batch["action_lengths"],
                                                      config.label_smoothing))
                if config.lattice_weight:  # tfalign's own terms; off in the paper's experiments
                    loss += config.lattice_weight * mean(*lattice_cross_entropy_sum(
                        outputs["lattice_logits"], batch["clip_to_text"], batch["clip_lengths"],
                        batch["text_lengths"], config.label_smoothing))
                if config.contrastive_weight:
                    for similarity in outputs["similarities"].values():
                        loss += config.contrastive_weight * mean(*contrastive_sum(
                            similarity, batch["clip_to_text"], batch["clip_lengths"], batch["text_lengths"],
                            config.contrastive_temperature))
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
                                                    config.label_smoothing)
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
        config = self.config
        if config.sampling == "paper":
            if self._fixed_samples is None:
                self._fixed_samples = [s for e in videos for s in cut_at_text_boundaries(e, config.max_train_actions)]
            return self._fixed_samples
        rng = np.random.default_rng([config.seed, epoch, 7])
        return random_crops(videos, rng, config.crop_min_actions, config.max_train_actions,
                            config.whole_video_fraction)

    def _epoch_dataset(self, samples, epoch):
        dataset = make_dataset(samples, self.config.batch_size, shuffle=True, seed=self.config.seed * 100003 + epoch,
                               bucket=True)
        return self.strategy.experimental_distribute_dataset(dataset)

    # -------------------------------------------------------------- training
    def fit(self, data: StageData, epochs: int, resume=False) -> dict:
        self.prepare_run_dir(resume)
        if self.state.get("finished") and self.state["epoch"] >= epochs:
            self.log("this stage already finished")
            return self.state
        if self.state.get("finished"):  # resumed with more epochs: training goes on to them
            self.log(f"training on from epoch {self.state['epoch']} to {epochs}")
            self.state["finished"] = False
        self._fixed_samples = None
        if self.max_steps_per_epoch:  # a quick trial: the index says so
            self.state["max_steps_per_epoch"] = self.max_steps_per_epoch
        samples = self._epoch_samples(data.train, self.state["epoch"])
        # Every batch of the epoch: the length buckets end in partial batches, so
        # there are more batches than ceil(samples / batch size).
        steps = count_batches(samples, self.config.batch_size, bucket=True)
        if self.max_steps_per_epoch:
            steps = min(steps, self.max_steps_per_epoch)
        self.log(f"{len(samples)} training samples from {len(data.train)} videos "
                 f"(max {max(s.num_actions for s in samples)} actions), {len(data.val)} validation videos, "
                 f"about {steps} steps an epoch, {count_trainable(self.model):,} trainable parameters")
        callbacks = self._callbacks(steps)
        train_step = None
        writers = None
        if self.chief:  # other workers' event files would be thrown away anyway
            writers = {k: tf.summary.create_file_writer(str(self._path("tensorboard", k))) for k in ("train", "val")}
            diagnostics.write_hparams(self._path("tensorboard"), self.config.to_dict(), trial_id=self.trial_id)
            diagnostics.write_layout(self._path("tensorboard"), [v.path for v in self.model.trainable_variables],
                                     normalized=self.model.video_norm is not None)
        histogram_batch = next(iter(make_dataset(data.val[:EVAL_BATCH], EVAL_BATCH)))
        # The validation videos cut as the training videos are: the teacher-forced loss and step accuracy.
        self._eval_step = None
        val_cuts = self.strategy.experimental_distribute_dataset(make_dataset(
            [s for e in data.val for s in cut_at_text_boundaries(e, self.config.max_train_actions)],
            self.config.batch_size))
        manager = tf.train.CheckpointManager(self.checkpoint, str(self._path("checkpoints", "last")), max_to_keep=2)

        durations = []  # of this process's epochs: the time left for the run
        for epoch in range(self.state["epoch"], epochs):
            started = time.time()
            samples = self._epoch_samples(data.train, epoch)
            epoch_steps = count_batches(samples, self.config.batch_size, bucket=True)
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
                                        f"from epoch {self.state['epoch']}")
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
                val = evaluate_model(self.model, data.val, validation_decoding(self.config))
                logs.update({f"val_{m}": val[m] for m in BEST_METRICS})
                stale = self._save_best(epoch, logs)
            callbacks.on_epoch_end(epoch, logs)
            # Training and validation, over every session of the run (the run's wall time, saving aside).
            self.state["wall_seconds"] = self.state.get("wall_seconds", 0.0) + time.time() - started
            self._end_epoch(epoch, logs, manager, writers, histogram_batch, ratios, stale)
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
                         f"{self.config.plateau_threshold:g} for {self.config.plateau_patience} epochs")
            if self.early_stopping_patience and self.state["since_best"] >= self.early_stopping_patience:
                self.log(f"early stopping: no better validation clip accuracy for {self.state['since_best']} epochs")
                break
        self.state["finished"] = True
        # Equal on every worker of a synchronous run, and between a run and its resumed twin.
        self.state["weights_digest"] = self.weights_digest()
        write_json_atomic(self._path("state.json"), self.state)
        console.detail(f"final weights digest: {self.state['weights_digest']}")
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

    @contextlib.contextmanager
    def averaged_weights(self):
        """With weight averaging on (``weight_averaging``: the EMA momentum), the
        model holds the optimizer's moving averages inside the block, and its
        own weights again after it; without, nothing changes."""
        if not self.config.weight_averaging:
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
        state = self.state
        improved, stale = False, []
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
        return stale

    def _end_epoch(self, epoch, logs, manager, writers, histogram_batch, ratios, stale):
        """Saves everything of a finished epoch; state.json, written last, commits it."""
        state = self.state
        # Every worker saves (saving distributed variables is collective); non-chief
        # workers save into their own temporary run_dir.
        last = manager.save(checkpoint_number=epoch + 1)
        state["last_checkpoint"] = os.path.relpath(last, self.run_dir)
        state["epoch"] = epoch + 1
        state["plateau"] = self._plateau.get_state()
        state["history"].append({"epoch": epoch + 1, **logs})
        if writers:
            self._write_summaries(epoch, logs, writers, histogram_batch, ratios)
        write_json_atomic(self._path("state.json"), state)
        for old in filter(None, stale):  # old best checkpoints go only once state.json no longer names them
            # Exactly this checkpoint's files: "ckpt-1*" would also match ckpt-10 .. ckpt-19.
            for file in self.run_dir.glob(old + ".*"):
                file.unlink(missing_ok=True)

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
        import hashlib

        digest = hashlib.sha1()
        for weight in self.model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        return digest.hexdigest()[:16]
