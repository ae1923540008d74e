"""The classical baselines' similarity as a fixed channel of the network: ``RidgeSimilarity``.

The ridge map of data/ridge.py, fitted in closed form on the training videos'
input features (``fit`` or ``set_map``), held as non-trainable weights (so
checkpoints, presets and SavedModels carry it): clips x -> x @ K + b, texts
t -> t + c, and their cosine similarities, the very similarity the DTW
baseline aligns on. Held and computed in float64 (its output cast to the
layer's dtype): it is a handful of products, and features whose texts differ
only in their last digits (a small text encoder) must keep their differences
after the centring, or exact decoding at the start is not the DTW baseline's.

Cross-fitting (data/classical.py): ``set_fold_maps`` gives it one map per fold
of the training videos; a training batch that names each episode's ``folds``
sees every video through the map fitted without it, as new videos are seen.
The fold maps are training-time state, refitted at the start of every training
session: not weights, so no checkpoint or SavedModel holds them.
"""

import keras
import numpy as np
import tensorflow as tf

from tfalign.data.batching import to_natural
from tfalign.data.ridge import RidgeMap


@keras.saving.register_keras_serializable("tfalign")
class RidgeSimilarity(keras.layers.Layer):
    """Cosine similarities [B, T_v, T_s] (natural order, 0 at padding) of reversed,
    padded clips [B, T_v, D_v] and texts [B, T_s, D_s] through a fixed ridge map.
    Zero until ``set_map`` gives it one (every similarity is then 0).

    Example:
    >>> from tfalign.data.datasets import DataConfig, load_episodes
    >>> train = load_episodes(DataConfig(train_videos=4), "train")
    >>> layer = RidgeSimilarity()
    >>> layer.build((None, None, 300), (None, None, 300))
    >>> layer.fit(train)                                                   # the DTW baseline's map
    >>> video = train[0]                                                   # a batch of one, reversed
    >>> similarity = layer(video.clip_features[None, ::-1], video.text_features[None, ::-1],
    ...                    np.array([video.num_clips]), np.array([video.num_texts]))  # [B, T_v, T_s]
    >>> bool(np.allclose(similarity[0], RidgeMap.fit(train).similarity(video), atol=1e-5))
    True
    """

    def build(self, clips_shape, texts_shape=None, clip_lengths_shape=None, text_lengths_shape=None,
              folds_shape=None):
        clip_dim, text_dim = clips_shape if texts_shape is None else (clips_shape[-1], texts_shape[-1])
        weight = lambda shape, name: self.add_weight(shape, "zeros", name=name, trainable=False, autocast=False,
                                                       dtype="float64")
        self.clip_kernel = weight((clip_dim, text_dim), "clip_kernel")
        self.clip_bias = weight((text_dim,), "clip_bias")
        self.text_bias = weight((text_dim,), "text_bias")
        self.__dict__["_fold_maps"] = None  # (kernels [K, D_v, D_s], clip biases [K, D_s], text biases [K, D_s])

    def fit(self, episodes) -> None:
        """Fits the map on the training videos' features, as the DTW baseline fits its own."""
        self.set_map(RidgeMap.fit(episodes))

    def set_map(self, ridge_map) -> None:
        """Holds ``ridge_map`` (a data.ridge.RidgeMap fitted on the training videos' features)."""
        for variable, value in zip((self.clip_kernel, self.clip_bias, self.text_bias), ridge_map.as_affine()):
            variable.assign(np.asarray(value, np.float64))

    def set_fold_maps(self, ridge_maps) -> None:
        """One map per cross-fitting fold (``data.classical.cross_fitted_maps``); none: off."""
        if not ridge_maps:
            self.__dict__["_fold_maps"] = None
            return
        parts = zip(*(m.as_affine() for m in ridge_maps))
        self.__dict__["_fold_maps"] = tuple(tf.Variable(np.stack(p).astype(np.float64), trainable=False)
                                            for p in parts)

    def call(self, clips, texts, clip_lengths, text_lengths, folds=None):
        """``folds`` [B] int: each episode's cross-fitting fold, -1 for the full map (default)."""
        clips, texts = tf.cast(clips, tf.float64), tf.cast(texts, tf.float64)
        fold_maps = self.__dict__.get("_fold_maps")
        if folds is None or fold_maps is None:
            embedded = (tf.matmul(clips, self.clip_kernel) + self.clip_bias, texts + self.text_bias)
        else:
            kernels, clip_biases, text_biases = (tf.concat([maps, full[None]], axis=0) for maps, full in
                                                 zip(fold_maps, (self.clip_kernel, self.clip_bias, self.text_bias)))
            index = tf.where(folds < 0, tf.shape(fold_maps[0])[0], tf.cast(folds, tf.int32))  # -1: the full map
            embedded = (tf.matmul(clips, tf.gather(kernels, index)) + tf.gather(clip_biases, index)[:, None, :],
                        texts + tf.gather(text_biases, index)[:, None, :])
        similarity = tf.matmul(_unit_rows(embedded[0], clip_lengths), _unit_rows(embedded[1], text_lengths),
                               transpose_b=True)
        return tf.cast(similarity, self.compute_dtype)

    def compute_output_shape(self, clips_shape, texts_shape, *args, **kwargs):
        return (clips_shape[0], clips_shape[1], texts_shape[1])


def _unit_rows(embedded, lengths):
    """Rows in natural order divided by their norm + 1e-9 (as data.ridge's similarity), 0 at padding."""
    mask = tf.sequence_mask(lengths, tf.shape(embedded)[1], dtype=embedded.dtype)[:, :, None]
    rows = to_natural(embedded, lengths)
    return rows / (tf.norm(rows, axis=-1, keepdims=True) + 1e-9) * mask
