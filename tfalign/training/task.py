"""What a training run learns, as Model Garden's ``Task``: ``AlignmentTask``.

The task owns the inputs of an epoch (the paper's fixed cuts, or tfalign's
random crops drawn anew each epoch), the loss and its terms, one training
step's maths and the validation step; the ``Trainer`` (training/loop.py)
runs any task under any ``tf.distribute`` strategy, with the checkpoints, the
schedule and the summaries.

A step, on every replica: the loss terms are sums over the replica's valid
steps (or nodes, or pairs), each divided by its *global* count across
replicas; the gradients are all-reduced, clipped to the global norm, L2
weight decay is added (after clipping, as PyTorch's Adam does) and the
optimizer is applied. So a step on N replicas equals a step on one device
with the same global batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfalign.data.batching import count_batches, make_dataset
from tfalign.data.cutting import cut_at_text_boundaries, random_crops
from tfalign.model.objective import LossWeights, alignment_loss, path_term_sum
from tfalign.training.pseudo_labels import kept_accuracy, pseudo_labelled, round_of, round_weight


def step_hits(logits, batch):
    """[correct, valid] action steps of a teacher-forced batch: the step accuracy's counts."""
    mask = tf.sequence_mask(batch["action_lengths"], tf.shape(batch["actions"])[1], dtype=tf.float32)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(batch["actions"], tf.int32)),
                      tf.float32)
    return tf.stack([tf.reduce_sum(correct * mask), tf.reduce_sum(mask)])


def global_mean(total, count):
    """A loss term's mean over the global batch: its count summed over the replicas."""
    context = tf.distribute.get_replica_context()
    return total / tf.maximum(context.all_reduce(tf.distribute.ReduceOp.SUM, count), 1.0)


@dataclasses.dataclass
class StageData:
    """A stage's episodes: labelled ``train``, ``val`` (and ``test``) splits, and
    ``unlabelled`` videos (no ``clip_to_text``) that the closed form's
    self-training reads (model.dtw_start), and with ``task.unlabelled_weight`` the
    CRF's training too (training/pseudo_labels.py)."""

    train: list
    val: list
    test: list | None = None
    unlabelled: list | None = None


class AlignmentTask:
    """NeuMATCH's training task for one experiment config (its task, trainer and optimizer groups).

    Example:
    >>> task = AlignmentTask(tfalign.configure("tfalign_rp_sbn"))              # doctest: +SKIP
    >>> dataset = task.epoch_dataset(task.epoch_samples(train_episodes, epoch=0), epoch=0)  # doctest: +SKIP
    """

    def __init__(self, config):
        self.config = config
        self.terms = LossWeights(path_loss=config.task.path_loss, label_smoothing=config.trainer.label_smoothing,
                                 lattice_weight=config.task.lattice_weight,
                                 contrastive_weight=config.task.contrastive_weight,
                                 contrastive_temperature=config.task.contrastive_temperature)
        self._fixed_samples = None  # the paper's cuts of the training videos, made on first use
        self._video_folds: dict[str, int] = {}  # training video id -> its cross-fitting fold (the model's)
        self.unlabelled: list = []  # the unlabelled videos the CRF trains on (task.unlabelled_weight)
        self.pseudo: list = []  # them with the teacher's pseudo-labels of this round
        self.pseudo_round: int | None = None
        self.pseudo_weight = 0.0
        self.rounds: list[dict] = []  # this session's relabellings: epoch, weight, kept clips (and, given
        # the truth, how right they are)
        # A measurement's (benchmarks/pseudo_labels.py): the unlabelled videos' true labels {video_id:
        # clip_to_text}; the log says how right the kept pseudo-labels are, and with ``ceiling`` they
        # fill the kept clips instead of the teacher's guesses (the method's ceiling). None in training.
        self.truth: dict | None = None
        self.ceiling = False

    def begin(self, model, data: StageData, fresh: bool = True) -> list:
        """At the start of every training session (a resumed one too): the model's
        ``initialize`` on the data (the closed form of a model that starts at DTW, the
        cross-fitting folds); ``fresh`` (a run's first session) sets the weights it gives.

        Returns:
            The videos to train on (with no labelled video, a model that starts at DTW
            trains on the unlabelled ones with the closed form's pseudo-labels).
        """
        videos, self._video_folds = model.initialize(data.train, data.val, data.unlabelled or (), set_start=fresh)
        # Without labelled videos the unlabelled ones already train, with the closed form's labels.
        self.unlabelled = list(data.unlabelled or ()) if self.config.task.unlabelled_weight and data.train else []
        self.pseudo, self.pseudo_round = [], None  # a resumed session relabels with the teacher it resumes with
        return videos

    def needs_relabelling(self, epoch: int, epochs: int) -> bool:
        """Whether an epoch begins a round of pseudo-labels (or the session's first)."""
        return bool(self.unlabelled) and self.pseudo_round != round_of(epoch, epochs,
                                                                       self.config.task.pseudo_label_rounds)

    def relabel(self, teacher, epoch: int, epochs: int) -> str:
        """The unlabelled videos pseudo-labelled by ``teacher`` for the round of ``epoch``
        (training/pseudo_labels.py); returns a line for the log."""
        task = self.config.task
        rounds = min(task.pseudo_label_rounds, epochs)
        self.pseudo_round = round_of(epoch, epochs, rounds)
        self.pseudo = pseudo_labelled(teacher, self.unlabelled, task.pseudo_label_fraction,
                                      truth=self.truth if self.ceiling else None)
        self.pseudo_weight = round_weight(task.unlabelled_weight, self.pseudo_round, rounds)
        kept = sum(int(e.known_clips.sum()) for e in self.pseudo)
        record = {"epoch": epoch, "weight": self.pseudo_weight, "kept": kept}
        line = (f"round {self.pseudo_round + 1}/{rounds}: {len(self.pseudo)} unlabelled videos pseudo-labelled, "
                f"{kept} clips kept, weight {self.pseudo_weight:g}")
        if self.truth is not None:
            record["kept_accuracy"] = kept_accuracy(self.pseudo, self.truth)
            line += ("; the true labels (the ceiling)" if self.ceiling else
                     f"; {record['kept_accuracy']:.1%} of the kept ones right")
        self.rounds.append(record)
        return line

    def training_videos(self, videos) -> list:
        """The labelled videos and this round's pseudo-labelled ones."""
        return list(videos) + self.pseudo

    def sample_folds(self, samples) -> list[int] | None:
        """The cross-fitting fold of each sample's video (crops are named ``<video>#<k>``)."""
        if not self._video_folds:
            return None
        folds = self._video_folds
        return [folds.get(s.video_id, folds.get(s.video_id.rpartition("#")[0], -1)) for s in samples]

    # ------------------------------------------------------------- inputs
    def epoch_samples(self, videos, epoch: int) -> list:
        """The training samples of an epoch: the paper's fixed cuts, or (sampling
        "crops") random crops drawn anew each epoch, reproducibly from (seed, epoch)."""
        task = self.config.task
        if task.sampling == "paper":
            if self._fixed_samples is None:
                self._fixed_samples = [s for e in videos for s in cut_at_text_boundaries(e, task.max_train_actions)]
            samples = self._fixed_samples
            while task.epoch_steps and self.steps(samples) < task.epoch_steps:
                samples = samples + self._fixed_samples
            return samples
        rng = np.random.default_rng([self.config.trainer.seed, epoch, 7])
        samples = []
        # Passes of fresh crops until the epoch holds its steps (few videos: several passes).
        while not samples or (task.epoch_steps and self.steps(samples) < task.epoch_steps):
            samples += random_crops(videos, rng, task.crop_min_actions, task.max_train_actions,
                                    task.whole_video_fraction)
        return samples

    def epoch_dataset(self, samples, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """An epoch's batches, shuffled by (seed, epoch) and bucketed by length (long
        videos in smaller batches under ``trainer.batch_nodes`` / ``batch_actions``);
        ``skip``: leave out the first batches (a run resumed mid-epoch)."""
        trainer = self.config.trainer
        dataset = make_dataset(samples, trainer.batch_size, shuffle=True, seed=trainer.seed * 100003 + epoch,
                               bucket=True, folds=self.sample_folds(samples), batch_nodes=trainer.batch_nodes,
                               batch_actions=trainer.batch_actions, pseudo_weight=self.pseudo_weight)
        return dataset.skip(skip) if skip else dataset

    def steps(self, samples) -> int:
        """How many batches ``epoch_dataset`` yields (each length bucket ends in a partial batch)."""
        trainer = self.config.trainer
        return count_batches(samples, trainer.batch_size, bucket=True, batch_nodes=trainer.batch_nodes,
                             batch_actions=trainer.batch_actions)

    def validation_dataset(self, videos) -> tf.data.Dataset:
        """The validation videos cut as the training videos are: the teacher-forced loss and step accuracy."""
        cuts = [s for e in videos for s in cut_at_text_boundaries(e, self.config.task.max_train_actions)]
        return make_dataset(cuts, self.config.trainer.batch_size)

    # -------------------------------------------------------------- steps
    def train_step(self, model, optimizer, batch, loss_scale=None):
        """One step on one replica (inside ``strategy.run``): (loss, gradient norm, [correct, valid] steps)."""
        optimizer_config = self.config.optimizer
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = model.training_outputs(batch, training=True)
            loss = alignment_loss(outputs, batch, self.terms, mean=global_mean)
            if self.config.task.start_penalty:  # L2-SP, once over the replicas (their gradients are summed)
                context = tf.distribute.get_replica_context()
                loss += self.config.task.start_penalty * model.start_distance() / context.num_replicas_in_sync
            differentiated = loss if loss_scale is None else loss_scale.scaled(loss)  # on the tape
        grads = tape.gradient(differentiated, variables)
        grads = [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype) for g, v in zip(grads, variables)]
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if loss_scale is not None:
            grads, finite = loss_scale.unscaled(grads)
        grads, norm = tf.clip_by_global_norm(grads, optimizer_config.clip_global_norm)
        if optimizer_config.weight_decay:
            grads = [g + optimizer_config.weight_decay * v for g, v in zip(grads, variables)]
        if context.num_replicas_in_sync > 1:  # Keras's apply() sums over replicas once more
            grads = [g / context.num_replicas_in_sync for g in grads]

        def apply():
            optimizer.apply(grads, variables)

        if loss_scale is None:
            apply()
        else:  # a step with overflowing gradients is skipped
            tf.cond(finite, apply, lambda: None)
            loss_scale.update(finite)
        return loss, norm, step_hits(outputs["logits"], batch)

    def validation_step(self, model, batch):
        """Teacher-forced, without dropout: the path's term (the cross-entropy, label-smoothed
        as in training, or the CRF's) summed, and [correct, valid] action steps."""
        outputs = model.training_outputs(batch, training=False)
        total, _ = path_term_sum(outputs, batch, self.terms)
        return total, step_hits(outputs["logits"], batch)
