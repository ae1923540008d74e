"""Lattice scores that start as DTW's own: ``DTWPotentials``.

The DTW baseline (data/classical.py) is the best path over the (clip, text)
lattice under the scores MATCH = cos - 1, POP_CLIP = -drop_cost, POP_TEXT = 0
(cos: the ridge similarity of clip i and text j). This layer gives the
lattice exactly those scores, times a scale (which changes no best path), plus
learned corrections that are all zero at the start:

    MATCH(i, j)    = scale * (cos_ij - 1)                  + context_ij . W[:, MATCH]    + gate * residual
    POP_CLIP(i, j) = -scale * (drop_cost + rows_i . w)     + context_ij . W[:, POP_CLIP] + gate * residual
    POP_TEXT(i, j) =                                         context_ij . W[:, POP_TEXT] + gate * residual

- a drop cost of each clip from its similarity row (its best, mean, spread,
  margin of the best over the second best; as Drop-DTW learns one), starting
  at the tuned value;
- a linear function of the similarities around the node (a 3 x 3 window, the
  similarity against its row's and its column's mean and best, the node's
  distance from the diagonal), a few dozen weights that generalize from a
  handful of videos;
- ``residual``: the network's own scores (log-probabilities of its
  classifier) behind a ``gate`` that starts at 0.

Before the first step, exact decoding returns the DTW baseline's alignment;
trained as a CRF (model/objective.py), the corrections move only as far as the
data carry them, and ``start_distance`` (the L2-SP penalty) pulls them back
toward the start.
"""

import keras
import numpy as np
import tensorflow as tf

from tfalign.data.oracle import MATCH, NUM_ACTIONS, POP_CLIP, POP_TEXT

INITIAL_SCALE = 10.0  # of the DTW scores: a CRF's temperature (best paths do not depend on it)
ROW_FEATURES = 5
CONTEXT_FEATURES = 15
_OUTSIDE = -2.0  # below any cosine: what a maximum reads outside the episode


def row_features(similarity, mask):
    """[B, T_v, 5] of each clip's similarity row: best, mean, standard deviation,
    best minus second best (0 with one text) and best minus mean."""
    mask_f = tf.cast(mask, similarity.dtype)
    count = tf.maximum(tf.reduce_sum(mask_f, axis=2), 1.0)
    mean = tf.reduce_sum(similarity * mask_f, axis=2) / count
    spread = tf.sqrt(tf.maximum(tf.reduce_sum(mask_f * (similarity - mean[..., None]) ** 2, axis=2) / count, 0.0))
    outside = tf.pad(tf.where(mask, similarity, _OUTSIDE), [[0, 0], [0, 0], [0, 1]], constant_values=_OUTSIDE)
    top = tf.math.top_k(outside, 2).values
    best, second = top[..., 0], tf.where(top[..., 1] > _OUTSIDE, top[..., 1], top[..., 0])
    rows = tf.stack([best, mean, spread, best - second, best - mean], axis=-1)
    return rows * tf.cast(tf.reduce_any(mask, axis=2), similarity.dtype)[..., None]


def context_features(similarity, mask, clip_lengths, text_lengths):
    """[B, T_v, T_s, 15] at every node: the 3 x 3 window of similarities around it
    (0 outside the episode), its similarity minus its row's mean and best and
    its column's mean and best, and its distance from the diagonal |i/T_v - j/T_s|
    and that squared."""
    mask_f = tf.cast(mask, similarity.dtype)
    similarity = similarity * mask_f
    num_clips, num_texts = tf.shape(similarity)[1], tf.shape(similarity)[2]
    padded = tf.pad(similarity, [[0, 0], [1, 1], [1, 1]])
    window = [padded[:, 1 + a:1 + a + num_clips, 1 + b:1 + b + num_texts] for a in (-1, 0, 1) for b in (-1, 0, 1)]
    outside = tf.where(mask, similarity, _OUTSIDE)
    row_mean = tf.reduce_sum(similarity, 2, keepdims=True) / tf.maximum(tf.reduce_sum(mask_f, 2, keepdims=True), 1.0)
    column_mean = tf.reduce_sum(similarity, 1, keepdims=True) / tf.maximum(tf.reduce_sum(mask_f, 1, keepdims=True),
                                                                           1.0)
    row_best, column_best = tf.reduce_max(outside, 2, keepdims=True), tf.reduce_max(outside, 1, keepdims=True)
    clip_position = (tf.cast(tf.range(num_clips), tf.float32)[None, :, None] + 0.5) / tf.cast(
        clip_lengths, tf.float32)[:, None, None]
    text_position = (tf.cast(tf.range(num_texts), tf.float32)[None, None, :] + 0.5) / tf.cast(
        text_lengths, tf.float32)[:, None, None]
    diagonal = tf.abs(clip_position - text_position)
    features = window + [similarity - row_mean, similarity - column_mean, similarity - row_best,
                         similarity - column_best, diagonal, diagonal ** 2]
    return tf.stack(features, axis=-1) * mask_f[..., None]


@keras.saving.register_keras_serializable("tfalign")
class DTWPotentials(keras.layers.Layer):
    """Scores [B, T_v, T_s, 3] of the lattice's actions (POP_CLIP, POP_TEXT, MATCH) at
    every node, from the ridge similarities [B, T_v, T_s] (natural order), the
    episodes' lengths and, optionally, a residual [B, T_v, T_s, 3] of the network's.
    At the start (``set_start``) they are the DTW baseline's scores, times ``scale``.

    Example:
    >>> layer = DTWPotentials()
    >>> layer.build((None, None, None))
    >>> layer.set_start(drop_cost=0.88)                                     # DTW's tuned value
    >>> similarity = np.array([[[0.9, 0.1], [0.2, 0.8], [0.3, 0.2]]], np.float32)
    >>> scores = layer(similarity, np.array([3]), np.array([2]))           # [B, T_v, T_s, 3]
    >>> scores.shape
    TensorShape([1, 3, 2, 3])
    """

    def build(self, *shapes, **kwargs):
        scalar = lambda name, value, trainable=True: self.add_weight(
            (), keras.initializers.Constant(value), name=name, trainable=trainable, autocast=False)
        self.drop_cost = scalar("drop_cost", 1.0)
        self.start_drop_cost = scalar("start_drop_cost", 1.0, trainable=False)
        self.log_scale = scalar("log_scale", float(np.log(INITIAL_SCALE)))
        zeros = lambda shape, name: self.add_weight(shape, "zeros", name=name, autocast=False)
        self.drop_kernel = zeros((ROW_FEATURES,), "drop_kernel")
        self.context_kernel = zeros((CONTEXT_FEATURES, NUM_ACTIONS), "context_kernel")
        self.residual_gate = zeros((), "residual_gate")

    def set_start(self, drop_cost: float) -> None:
        """Starts at the DTW baseline with this (tuned) drop cost: every correction zero."""
        for variable in (self.drop_cost, self.start_drop_cost):
            variable.assign(float(drop_cost))
        for variable in (self.drop_kernel, self.context_kernel, self.residual_gate):
            variable.assign(tf.zeros_like(variable))

    def start_distance(self):
        """The squared distance of the learned corrections from the start (the L2-SP penalty)."""
        return ((self.drop_cost - self.start_drop_cost) ** 2 + tf.reduce_sum(self.drop_kernel ** 2)
                + tf.reduce_sum(self.context_kernel ** 2) + self.residual_gate ** 2)

    def call(self, similarity, clip_lengths, text_lengths, residual=None):
        similarity = tf.cast(similarity, tf.float32)
        clip_lengths, text_lengths = tf.cast(clip_lengths, tf.int32), tf.cast(text_lengths, tf.int32)
        mask = (tf.sequence_mask(clip_lengths, tf.shape(similarity)[1])[:, :, None]
                & tf.sequence_mask(text_lengths, tf.shape(similarity)[2])[:, None, :])
        scale = tf.exp(self.log_scale)
        drop = self.drop_cost + tf.tensordot(row_features(similarity, mask), self.drop_kernel, axes=1)
        by_action = {POP_CLIP: -scale * tf.broadcast_to(drop[:, :, None], tf.shape(similarity)),
                     POP_TEXT: tf.zeros_like(similarity), MATCH: scale * (similarity - 1.0)}
        scores = tf.stack([by_action[a] for a in range(NUM_ACTIONS)], axis=-1)
        scores += tf.tensordot(context_features(similarity, mask, clip_lengths, text_lengths), self.context_kernel,
                               axes=1)
        if residual is not None:
            scores += self.residual_gate * tf.cast(residual, tf.float32)
        return scores

    def compute_output_shape(self, similarity_shape, *args, **kwargs):
        return (*similarity_shape, NUM_ACTIONS)
