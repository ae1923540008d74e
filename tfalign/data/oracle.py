"""The action oracle (alignment -> actions) and its inverse (actions -> alignment).

The inverse is one batched TensorFlow function, ``alignment_from_actions``,
used in the graph (exports, the exact decoder) and for single episodes alike.

Three actions act on a clip stack and a text stack whose tops are the first
remaining clip and the first remaining text (docs/task.md).
"""

from __future__ import annotations

import numpy as np

POP_CLIP = 0
POP_TEXT = 1
MATCH = 2
NUM_ACTIONS = 3
ACTION_NAMES = ("POP_CLIP", "POP_TEXT", "MATCH")


def alignment_to_actions(clip_to_text, num_texts: int) -> np.ndarray:
    """The canonical oracle: MATCH, else POP_CLIP if unmatched, else POP_TEXT.

    Returns int32 actions of length T_v + T_s for a valid (monotone)
    alignment; when one stack is empty the rest of the other is popped.
    """
    clip_to_text = np.asarray(clip_to_text)
    num_clips = len(clip_to_text)
    actions = []
    clip, text = 0, 0
    while clip < num_clips and text < num_texts:
        target = clip_to_text[clip]
        if target == text:
            actions.append(MATCH)
            clip += 1
        elif target == -1:
            actions.append(POP_CLIP)
            clip += 1
        elif target > text:
            actions.append(POP_TEXT)
            text += 1
        else:
            raise ValueError(f"alignment is not monotone at clip {clip}: text {target} after text {text}")
    actions.extend([POP_CLIP] * (num_clips - clip))
    actions.extend([POP_TEXT] * (num_texts - text))
    return np.asarray(actions, np.int32)


def actions_to_alignment(actions, num_clips: int, num_texts: int) -> np.ndarray:
    """Decodes one episode's actions back to clip_to_text (the paper's act2align):
    ``alignment_from_actions`` on a batch of one. Actions after either stack is
    empty change nothing; clips left over are unmatched."""
    actions = np.asarray(actions, np.int64).reshape(-1)
    unknown = actions[(actions < 0) | (actions >= NUM_ACTIONS)]
    if len(unknown):
        raise ValueError(f"unknown action {int(unknown[0])}: expected 0 (POP_CLIP), 1 (POP_TEXT) or 2 (MATCH)")
    if num_clips == 0:
        return np.zeros(0, np.int64)
    return alignment_from_actions(actions[None].astype(np.int32), [len(actions)], [num_clips], [num_texts],
                                  num_clips).numpy()[0].astype(np.int64)


def consumed_before(actions, valid=None):
    """How many clips and texts were consumed before each action of a batch of
    sequences [B, L]: two [B, L] int32 tensors (``valid`` [B, L] bool: steps
    after a row's end consume nothing). POP_CLIP and MATCH consume a clip,
    POP_TEXT a text: the cursors of the lattice walk."""
    import tensorflow as tf

    actions = tf.cast(actions, tf.int32)
    pops_text = tf.equal(actions, POP_TEXT)
    pops_clip = tf.logical_not(pops_text)
    if valid is not None:
        pops_text, pops_clip = pops_text & valid, pops_clip & valid
    return (tf.cumsum(tf.cast(pops_clip, tf.int32), axis=1, exclusive=True),
            tf.cumsum(tf.cast(pops_text, tf.int32), axis=1, exclusive=True))


def alignment_from_actions(actions, num_actions, clip_lengths, text_lengths, max_clips):
    """The one actions-to-alignment function: clip_to_text [B, max_clips] (-1
    unmatched and padding) of the first ``num_actions`` actions of each row.
    Each MATCH assigns the clip it consumes to the current text, while both
    stacks still hold something. Batched TensorFlow, for the graph (the
    SavedModel, the exact decoder's path) as for one episode (``actions_to_alignment``)."""
    import tensorflow as tf

    actions = tf.cast(actions, tf.int32)
    valid = tf.sequence_mask(num_actions, tf.shape(actions)[1])
    clip_index, text_index = consumed_before(actions, valid)
    is_match = (valid & tf.equal(actions, MATCH) & (clip_index < tf.cast(clip_lengths, tf.int32)[:, None])
                & (text_index < tf.cast(text_lengths, tf.int32)[:, None]))
    rows = tf.broadcast_to(tf.range(tf.shape(actions)[0])[:, None], tf.shape(actions))
    indices = tf.stack([tf.boolean_mask(rows, is_match), tf.boolean_mask(clip_index, is_match)], axis=1)
    shifted = tf.scatter_nd(indices, tf.boolean_mask(text_index, is_match) + 1, [tf.shape(actions)[0], max_clips])
    return shifted - 1


def decoded_length(actions, num_clips: int, num_texts: int) -> int:
    """Number of actions consumed before one of the stacks ran empty.

    The network's greedy decoder stops at the same point: when it consumes the
    last clip or the last text.
    """
    clip, text = 0, 0
    for step, action in enumerate(np.asarray(actions).reshape(-1)):
        if action == POP_TEXT:
            text += 1
        else:
            clip += 1
        if clip >= num_clips or text >= num_texts:
            return step + 1
    return len(actions)
