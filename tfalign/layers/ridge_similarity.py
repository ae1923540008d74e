"""The classical baselines' similarity as a fixed channel of the network: ``RidgeSimilarity``.

The ridge map of data/ridge.py, fitted in closed form on the training videos
(``set_map``), held as non-trainable weights (so checkpoints, presets and
SavedModels carry it): clips x -> x @ K + b, texts t -> t + c, and their cosine
similarities, the very similarity the DTW baseline aligns on. Computed in
float32 under mixed precision too: it is a handful of products, and its
values are compared with a threshold.
"""

import keras
import numpy as np
import tensorflow as tf

from tfalign.data.ridge import RidgeMap
from tfalign.layers.joint_embedding import cosine_similarities


@keras.saving.register_keras_serializable("tfalign")
class RidgeSimilarity(keras.layers.Layer):
    """Cosine similarities [B, T_v, T_s] (natural order, 0 at padding) of reversed,
    padded clips [B, T_v, D_v] and texts [B, T_s, D_s] through a fixed ridge map.
    Zero until ``set_map`` gives it one (every similarity is then 0)."""

    def build(self, clips_shape, texts_shape=None, clip_lengths_shape=None, text_lengths_shape=None):
        clip_dim, text_dim = clips_shape if texts_shape is None else (clips_shape[-1], texts_shape[-1])
        weight = lambda shape, name: self.add_weight(shape, "zeros", name=name, trainable=False, autocast=False)
        self.clip_kernel = weight((clip_dim, text_dim), "clip_kernel")
        self.clip_bias = weight((text_dim,), "clip_bias")
        self.text_bias = weight((text_dim,), "text_bias")

    def fit(self, episodes, clip_projection=None, text_projection=None) -> None:
        """Fits the map on the training videos' features as the network reads them (through
        its fixed projections, when it has them), as the DTW baseline fits its own."""
        project = lambda layer, x: x if layer is None else x @ layer.matrix
        self.set_map(RidgeMap.fit([e.replace(clip_features=project(clip_projection, e.clip_features),
                                             text_features=project(text_projection, e.text_features))
                                   for e in episodes]))

    def set_map(self, ridge_map) -> None:
        """Holds ``ridge_map`` (a data.ridge.RidgeMap fitted on the training videos' features)."""
        for variable, value in zip((self.clip_kernel, self.clip_bias, self.text_bias), ridge_map.as_affine()):
            variable.assign(np.asarray(value, np.float32))

    def call(self, clips, texts, clip_lengths, text_lengths):
        clips, texts = tf.cast(clips, tf.float32), tf.cast(texts, tf.float32)
        similarity = cosine_similarities(tf.matmul(clips, self.clip_kernel) + self.clip_bias, texts + self.text_bias,
                                         clip_lengths, text_lengths)
        return tf.cast(similarity, self.compute_dtype)

    def compute_output_shape(self, clips_shape, texts_shape, *args, **kwargs):
        return (clips_shape[0], clips_shape[1], texts_shape[1])
