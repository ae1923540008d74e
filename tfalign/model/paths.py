"""Action sequences as paths through the (clip, text) lattice, in the graph.

An action sequence (0 POP_CLIP, 1 POP_TEXT, 2 MATCH) walks the lattice from
node (0, 0): POP_CLIP and MATCH consume a clip, POP_TEXT a text. These
batched TensorFlow functions give, for such sequences, the node before each
action (the decoder's cursors), the clip-to-text assignment they encode, and
their probabilities under a decoder. The NumPy oracle (data/oracle.py) is the
same walk for one episode.
"""

import tensorflow as tf

from tfalign.data.oracle import MATCH, POP_TEXT


def consumed_before(actions, valid=None):
    """How many clips and texts were consumed before each action: two [B, L] int32
    (``valid`` [B, L] bool: steps after the end consume nothing)."""
    actions = tf.cast(actions, tf.int32)
    pops_text = tf.equal(actions, POP_TEXT)
    pops_clip = tf.logical_not(pops_text)
    if valid is not None:
        pops_text, pops_clip = pops_text & valid, pops_clip & valid
    return (tf.cumsum(tf.cast(pops_clip, tf.int32), axis=1, exclusive=True),
            tf.cumsum(tf.cast(pops_text, tf.int32), axis=1, exclusive=True))


def path_nodes(actions, clip_lengths, text_lengths):
    """The node before each action of a sequence, clamped to the last clip and
    text (as the decoder's cursors are once a stack is empty): two [B, L]."""
    clips, texts = consumed_before(actions)
    return (tf.minimum(clips, tf.cast(clip_lengths, tf.int32)[:, None] - 1),
            tf.minimum(texts, tf.cast(text_lengths, tf.int32)[:, None] - 1))


def alignment_from_actions(actions, num_actions, clip_lengths, max_clips):
    """clip_to_text [B, max_clips] (-1 unmatched and padding) of the first
    ``num_actions`` actions of each row: each MATCH assigns the clip it consumes
    to the current text (the paper's act2align)."""
    actions = tf.cast(actions, tf.int32)
    valid = tf.sequence_mask(num_actions, tf.shape(actions)[1])
    clip_index, text_index = consumed_before(actions, valid)
    is_match = valid & tf.equal(actions, MATCH) & (clip_index < tf.cast(clip_lengths, tf.int32)[:, None])
    rows = tf.broadcast_to(tf.range(tf.shape(actions)[0])[:, None], tf.shape(actions))
    indices = tf.stack([tf.boolean_mask(rows, is_match), tf.boolean_mask(clip_index, is_match)], axis=1)
    shifted = tf.scatter_nd(indices, tf.boolean_mask(text_index, is_match) + 1, [tf.shape(actions)[0], max_clips])
    return shifted - 1


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
