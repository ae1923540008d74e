"""Label-smoothed cross-entropy over the valid action steps."""

import tensorflow as tf

from tfalign.data.oracle import NUM_ACTIONS


def smoothed_targets(actions, label_smoothing):
    """(1 - eps) * one_hot + eps / K."""
    return tf.one_hot(actions, NUM_ACTIONS) * (1.0 - label_smoothing) + label_smoothing / NUM_ACTIONS


def masked_cross_entropy_sum(logits, actions, action_lengths, label_smoothing=0.0):
    """Sum of per-step cross-entropies over valid steps, and the step count.

    Dividing the sum by the (global) count gives the loss averaged over all
    valid action steps of the batch; the trainer all-reduces the count so a
    step on N replicas equals one on a single device.
    """
    mask = tf.sequence_mask(action_lengths, tf.shape(actions)[1], dtype=logits.dtype)
    targets = smoothed_targets(tf.cast(actions, tf.int32), label_smoothing)
    per_step = -tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=-1)
    return tf.reduce_sum(per_step * mask), tf.reduce_sum(mask)


def masked_cross_entropy(logits, actions, action_lengths, label_smoothing=0.0):
    total, count = masked_cross_entropy_sum(logits, actions, action_lengths, label_smoothing)
    return total / tf.maximum(count, 1.0)
