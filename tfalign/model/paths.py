"""Action sequences as paths through the (clip, text) lattice, in the graph.

An action sequence (0 POP_CLIP, 1 POP_TEXT, 2 MATCH) walks the lattice from
node (0, 0): POP_CLIP and MATCH consume a clip, POP_TEXT a text
(``data.oracle.consumed_before``). These batched TensorFlow functions give the
node before each action (the decoder's cursors, clamped) and a path's
probabilities under a decoder; the alignment a path encodes is
``data.oracle.alignment_from_actions``.
"""

import tensorflow as tf

from tfalign.data.oracle import consumed_before


def path_nodes(actions, clip_lengths, text_lengths):
    """The node before each action of a sequence, clamped to the last clip and
    text (as the decoder's cursors are once a stack is empty): two [B, L]."""
    clips, texts = consumed_before(actions)
    return (tf.minimum(clips, tf.cast(clip_lengths, tf.int32)[:, None] - 1),
            tf.minimum(texts, tf.cast(text_lengths, tf.int32)[:, None] - 1))


def greedy_score(probabilities, actions, num_actions):
    """The total log-probability [B] of the actions a greedy decoder took."""
    steps = tf.shape(probabilities)[1]
    chosen = tf.gather(probabilities, tf.maximum(tf.cast(actions[:, :steps], tf.int32), 0), axis=2, batch_dims=2)
    valid = tf.sequence_mask(num_actions, steps)
    return tf.reduce_sum(tf.where(valid, tf.math.log(tf.maximum(chosen, 1e-30)), 0.0), axis=1)


def probabilities_along(log_probs, actions, num_actions, clip_lengths, text_lengths):
    """The action probabilities [B, L, 3] at the nodes a path visits (zeros after
    its ``num_actions``), from lattice log-probabilities [B, T_v, T_s, 3]."""
    clips, texts = path_nodes(tf.maximum(actions, 0), clip_lengths, text_lengths)
    nodes = tf.gather_nd(log_probs, tf.stack([clips, texts], axis=-1), batch_dims=1)
    valid = tf.sequence_mask(num_actions, tf.shape(actions)[1])
    return tf.where(valid[:, :, None], tf.exp(nodes), 0.0)
