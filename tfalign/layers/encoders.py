"""Per-element feature encoders: Full, RP and LXMERT (docs/network.md).

Every layer is followed by a ReLU.
- full:   text 768 -> 300 (no bias) -> 300;  video 2048 -> 300 (no bias) -> 300 -> 300
- rp:     the first, bias-free layer of each branch is a fixed random
          projection to 300 (done in the data, or in the graph with
          ``FixedProjection``); then text 300 -> 300, video 300 -> 300 -> 300
- lxmert: as full, with 768-d input on both sides
"""

import keras
import tensorflow as tf

from tfalign.layers import initializers
from tfalign.layers.tracking import CheckpointedCollections

ENCODER_KINDS = ("full", "rp", "lxmert")


@keras.saving.register_keras_serializable("tfalign")
class FixedProjection(keras.layers.Layer):
    """x -> x @ R with R the seeded Achlioptas matrix: a constant, not a weight.

    Puts the random projection inside the graph (for a SavedModel that takes
    raw 2048/768-d features); R is rebuilt from (input_dim, output_dim, seed).
    """

    def __init__(self, input_dim, output_dim=300, seed=0, **kwargs):
        super().__init__(**kwargs)
        from tfalign.data.projection import achlioptas_matrix

        self.input_dim, self.output_dim, self.seed = input_dim, output_dim, seed
        self._matrix = tf.constant(achlioptas_matrix(input_dim, output_dim, seed))

    @property
    def matrix(self):
        """The projection matrix [input_dim, output_dim] (NumPy)."""
        return self._matrix.numpy()

    def call(self, inputs):
        return tf.matmul(inputs, tf.cast(self._matrix, inputs.dtype))  # a constant: cast by hand under mixed precision

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim, "seed": self.seed}


@keras.saving.register_keras_serializable("tfalign")
class FeatureEncoder(CheckpointedCollections, keras.layers.Layer):
    """Encodes clip and text features, element by element, to ``units`` dims."""

    def __init__(self, kind="rp", units=300, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if kind not in ENCODER_KINDS:
            raise ValueError(f"encoder kind must be one of {ENCODER_KINDS}, got {kind!r}")
        self.kind, self.units, self.dropout = kind, units, dropout
        policy = self.dtype_policy  # sublayers compute in this layer's dtype (mixed precision)
        dense = lambda name, use_bias=True: initializers.dense(units, "relu", use_bias, name=name, dtype=policy)
        if kind == "rp":  # the fixed projection stands in for the first, bias-free layer
            self.text_layers = [dense("text_1")]
            self.video_layers = [dense("video_1"), dense("video_2")]
        else:
            self.text_layers = [dense("text_1", use_bias=False), dense("text_2")]
            self.video_layers = [dense("video_1", use_bias=False), dense("video_2"), dense("video_3")]
        self.drop = keras.layers.Dropout(dropout, dtype=policy) if dropout else None

    def build(self, input_shapes):
        clip_shape, text_shape = input_shapes
        for layers, shape in ((self.video_layers, clip_shape), (self.text_layers, text_shape)):
            dim = shape[-1]
            for layer in layers:
                layer.build((None, dim))
                dim = self.units

    def _branch(self, layers, x, training):
        for layer in layers:
            if self.drop is not None:
                x = self.drop(x, training=training)
            x = layer(x)
        return x

    def call(self, inputs, training=False):
        clips, texts = inputs
        return self._branch(self.video_layers, clips, training), self._branch(self.text_layers, texts, training)

    def compute_output_shape(self, input_shapes):
        clip_shape, text_shape = input_shapes
        return (*clip_shape[:-1], self.units), (*text_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "units": self.units, "dropout": self.dropout}
