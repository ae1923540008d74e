"""The layer-norm LSTM cell of the paper's LN baselines (docs/network.md).

The input projection and the recurrent projection are layer-normalized
separately (their LayerNorm shifts replace the biases), and the new cell
state is layer-normalized too and carried forward:
    gates = LN_i(x W) + LN_h(h U);  c' = LN_c(f * c + i * g);  h' = o * tanh(c').
"""

import keras
import tensorflow as tf

from tfalign.layers.lstm_base import LSTMCellBase
from tfalign.layers.recurrence import scan_sequence


@keras.saving.register_keras_serializable("tfalign")
class LayerNormLSTMCell(LSTMCellBase):
    def __init__(self, units, epsilon=1e-5, **kwargs):
        super().__init__(units, **kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        super().build(input_shape)
        norm = lambda name: keras.layers.LayerNormalization(epsilon=self.epsilon, name=name, dtype=self.dtype_policy)
        self.input_norm, self.recurrent_norm, self.cell_norm = norm("input_norm"), norm("recurrent_norm"), \
            norm("cell_norm")
        self.input_norm.build((None, 4 * self.units))
        self.recurrent_norm.build((None, 4 * self.units))
        self.cell_norm.build((None, self.units))

    def input_projection(self, inputs):
        return self.input_norm(tf.matmul(inputs, self.weight(self.input_kernel)))

    def recurrent_step(self, projected, states):
        h, c = states
        i, f, g, o = self.gates(projected + self.recurrent_norm(tf.matmul(h, self.weight(self.recurrent_kernel))))
        c = self.cell_norm(f * c + i * g)
        h = o * tf.tanh(c)
        return h, [h, c]

    def run_sequence(self, inputs, compiled=False):
        """[B, T, D] -> [B, T, units] from zero state (op by op: ``compiled`` changes nothing)."""
        return scan_sequence(self, tf.cast(inputs, self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
