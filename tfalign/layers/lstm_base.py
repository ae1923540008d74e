"""What the two LSTM cells share: state sizes, the two kernels, the step API.

A cell splits its work in two so that a whole sequence's input projection is
one matrix product: ``input_projection(x)`` then ``recurrent_step(projected,
[h, c])``; ``call(x, [h, c])`` is the two in a row (the Keras RNN cell API).
Gates in the order input, forget, cell, output.
"""

import keras
import tensorflow as tf

from tfalign.layers.initializers import lstm_input_kernel_initializer
from tfalign.layers.recurrence import lstm_gates


class LSTMCellBase(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        dim = input_shape[-1]
        self.input_kernel = self.add_weight((dim, 4 * self.units), lstm_input_kernel_initializer(), name="input_kernel")
        self.recurrent_kernel = self.add_weight((self.units, 4 * self.units), keras.initializers.Orthogonal(),
                                                name="recurrent_kernel")

    def weight(self, variable):
        """A weight in the compute dtype (mixed precision: float32 variables,
        bfloat16/float16 math), also when called outside ``__call__``."""
        return tf.cast(variable, self.compute_dtype)

    @staticmethod
    def gates(z):
        """Pre-activations [B, 4H] -> (i, f, g, o) after their nonlinearities."""
        return lstm_gates(z)

    def input_projection(self, inputs):
        raise NotImplementedError

    def recurrent_step(self, projected, states):
        raise NotImplementedError

    def call(self, inputs, states):
        return self.recurrent_step(self.input_projection(inputs), states)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
