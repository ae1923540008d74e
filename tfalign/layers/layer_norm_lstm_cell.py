"""The layer-norm LSTM cell of the paper's LN baselines (DESIGN.md 2.4).

The input projection and the recurrent projection are layer-normalized
separately (their LayerNorm shifts replace the biases), and the new cell
state is layer-normalized too and carried forward:
    gates = LN_i(x W) + LN_h(h U);  c' = LN_c(f * c + i * g);  h' = o * tanh(c').
"""

import keras
import tensorflow as tf

from tfalign.layers.initializers import lstm_input_kernel_initializer
from tfalign.layers.recurrence import scan_sequence


@keras.saving.register_keras_serializable("tfalign")
class LayerNormLSTMCell(keras.layers.Layer):
    def __init__(self, units, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.epsilon = units, epsilon
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        dim = input_shape[-1]
        self.input_kernel = self.add_weight((dim, 4 * self.units), lstm_input_kernel_initializer(), name="input_kernel")
        self.recurrent_kernel = self.add_weight((self.units, 4 * self.units), keras.initializers.Orthogonal(),
                                                name="recurrent_kernel")
        self.input_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="input_norm")
        self.recurrent_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="recurrent_norm")
        self.cell_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, name="cell_norm")
        self.input_norm.build((None, 4 * self.units))
        self.recurrent_norm.build((None, 4 * self.units))
        self.cell_norm.build((None, self.units))

    def input_projection(self, inputs):
        return self.input_norm(tf.matmul(inputs, self.input_kernel))

    def recurrent_step(self, projected, states):
        h, c = states
        gates = projected + self.recurrent_norm(tf.matmul(h, self.recurrent_kernel))
        i, f, g, o = tf.split(gates, 4, axis=-1)
        c = self.cell_norm(tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g))
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, [h, c]

    def run_sequence(self, inputs):
        """[B, T, D] -> [B, T, units] from zero state."""
        return scan_sequence(self, inputs)

    def call(self, inputs, states):
        return self.recurrent_step(self.input_projection(inputs), states)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "epsilon": self.epsilon}
