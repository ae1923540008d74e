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

import numpy as np
import tensorflow as tf

from tfalign.data.batching import count_batches, make_dataset
from tfalign.data.cutting import cut_at_text_boundaries, random_crops
from tfalign.model.losses import LossWeights, alignment_loss, masked_cross_entropy_sum


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


class AlignmentTask:
    """NeuMATCH's training task for one experiment config (its task, trainer and optimizer groups).

    Example:
    >>> task = AlignmentTask(tfalign.configure("tfalign_rp_sbn"))              # doctest: +SKIP
    >>> dataset = task.epoch_dataset(task.epoch_samples(train_episodes, epoch=0), epoch=0)  # doctest: +SKIP
    """

    def __init__(self, config):
        self.config = config
        self.terms = LossWeights(label_smoothing=config.trainer.label_smoothing,
                                 lattice_weight=config.task.lattice_weight,
                                 contrastive_weight=config.task.contrastive_weight,
                                 contrastive_temperature=config.task.contrastive_temperature)
        self._fixed_samples = None  # the paper's cuts of the training videos, made on first use

    def prepare(self, model, videos) -> None:
        """What the model fits in closed form on the training videos before its first step
        (the fixed ridge channel, when it has one)."""
        if getattr(model, "ridge", None) is not None:
            model.ridge.fit(videos, model.clip_projection, model.text_projection)

    # ------------------------------------------------------------- inputs
    def epoch_samples(self, videos, epoch: int) -> list:
        """The training samples of an epoch: the paper's fixed cuts, or (sampling
        "crops") random crops drawn anew each epoch, reproducibly from (seed, epoch)."""
        task = self.config.task
        if task.sampling == "paper":
            if self._fixed_samples is None:
                self._fixed_samples = [s for e in videos for s in cut_at_text_boundaries(e, task.max_train_actions)]
            return self._fixed_samples
        rng = np.random.default_rng([self.config.trainer.seed, epoch, 7])
        return random_crops(videos, rng, task.crop_min_actions, task.max_train_actions, task.whole_video_fraction)

    def epoch_dataset(self, samples, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """An epoch's batches, shuffled by (seed, epoch) and bucketed by length;
        ``skip``: leave out the first batches (a run resumed mid-epoch)."""
        trainer = self.config.trainer
        dataset = make_dataset(samples, trainer.batch_size, shuffle=True, seed=trainer.seed * 100003 + epoch,
                               bucket=True)
        return dataset.skip(skip) if skip else dataset

    def steps(self, samples) -> int:
        """How many batches ``epoch_dataset`` yields (each length bucket ends in a partial batch)."""
        return count_batches(samples, self.config.trainer.batch_size, bucket=True)

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
        """Teacher-forced, without dropout: the path's cross-entropy (label-smoothed as in
        training) summed, and [correct, valid] action steps."""
        logits = model.training_outputs(batch, training=False)["logits"]
        total, _ = masked_cross_entropy_sum(logits, batch["actions"], batch["action_lengths"],
                                            self.terms.label_smoothing)
        return total, step_hits(logits, batch)
