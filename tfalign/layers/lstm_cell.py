"""An LSTM cell with the paper code's parametrization (PyTorch's LSTMCell).

It keeps two bias vectors, one on the input projection and one on the
recurrent projection, as torch.nn.LSTMCell does; the paper's parameter counts
(docs/network.md) depend on it. Gates in the order input, forget, cell, output.
Each bias starts N(0, 0.1^2) with its forget slice at 1.0, so the forget gate
starts at a total bias of 2.0, as in the paper's code.
"""

import keras
import tensorflow as tf

from tfalign.layers.initializers import bias_initializer
from tfalign.layers.lstm_base import LSTMCellBase
from tfalign.layers.recurrence import lstm_hidden, lstm_sequence, lstm_update


class ForgetBiasInitializer(keras.initializers.Initializer):
    """N(0, 0.1^2) with the forget-gate slice set to ``forget_bias``."""

    def __init__(self, forget_bias=1.0, seed=None):
        self.forget_bias, self.seed = forget_bias, seed

    def __call__(self, shape, dtype=None):
        units = shape[0] // 4
        values = bias_initializer(self.seed)(shape, dtype=dtype)
        mask = tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], 0)
        return values * (1 - mask) + self.forget_bias * mask

    def get_config(self):
        return {"forget_bias": self.forget_bias, "seed": self.seed}


@keras.saving.register_keras_serializable("tfalign")
class StackLSTMCell(LSTMCellBase):
    """LSTM cell with PyTorch's two bias vectors (lstm_base.py: the step API)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.input_bias = self.add_weight((4 * self.units,), ForgetBiasInitializer(1.0), name="input_bias")
        self.recurrent_bias = self.add_weight((4 * self.units,), ForgetBiasInitializer(1.0), name="recurrent_bias")

    def input_projection(self, inputs):
        return tf.matmul(inputs, self.weight(self.input_kernel)) + self.weight(self.input_bias)

    def recurrent_step(self, projected, states):
        h, c = states
        h, c, _ = lstm_update(projected + tf.matmul(h, self.weight(self.recurrent_kernel))
                              + self.weight(self.recurrent_bias), c)
        return h, [h, c]

    def run_sequence(self, inputs, compiled=False):
        """[B, T, D] -> [B, T, units] from zero state (fast, hand-written gradient);
        ``compiled``: inference, the loop XLA-compiled (no gradient)."""
        inputs = tf.cast(inputs, self.compute_dtype)
        projected = self.input_projection(inputs) + self.weight(self.recurrent_bias)
        run = lstm_hidden if compiled else lstm_sequence
        hidden = run(tf.transpose(projected, [1, 0, 2]), self.weight(self.recurrent_kernel))
        return tf.transpose(hidden, [1, 0, 2])
