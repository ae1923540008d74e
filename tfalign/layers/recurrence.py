"""Running recurrent cells over padded sequences.

Padding sits after the valid positions (sequences are reversed and
left-aligned), so it never reaches a valid output and needs no mask.

``lstm_sequence`` is the plain LSTM recurrence with a hand-written gradient.
TensorFlow's automatic gradient of a while loop accumulates the recurrent
kernel's gradient with one [H, B] x [B, 4H] product per time step; here the
backward loop only propagates dh (one [B, 4H] x [4H, H] product a step) and
the kernel's gradient is a single large product over all steps afterwards.
It saves about 10% of a training step on CPU (benchmarks/train_throughput.py);
XLA-compiling the loops was tried for training and is slower there (it
recompiles for every new padded length). At inference (``lstm_hidden``, the
loop without its backward) it is compiled: one kernel for the whole loop runs
a film's 4000 steps about 4x faster on CPU than op by op, compiled once per
geometric length bucket (data/length_buckets.py) in a fraction of a second.
"""

import tensorflow as tf

from tfalign.data.length_buckets import pad_batch_to_bucket, pad_to_bucket


def lstm_gates(z):
    """Pre-activations [B, 4H] -> (i, f, g, o) after their nonlinearities (gates in that order)."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    return tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)


def lstm_update(z, c):
    """One LSTM step from the pre-activations ``z`` and the cell state ``c``:
    (h, c', (i, f, g, o))."""
    i, f, g, o = lstm_gates(z)
    c = f * c + i * g
    return o * tf.tanh(c), c, (i, f, g, o)


def scan_sequence(cell, inputs):
    """Any cell with input_projection/recurrent_step: [B, T, D] -> [B, T, units]."""
    projected = tf.transpose(cell.input_projection(inputs), [1, 0, 2])  # time-major
    zeros = tf.zeros([tf.shape(inputs)[0], cell.units], inputs.dtype)

    def step(carry, x):
        _, (h, c) = cell.recurrent_step(x, list(carry))
        return h, c

    hidden, _ = tf.scan(step, projected, initializer=(zeros, zeros))
    return tf.transpose(hidden, [1, 0, 2])


def _lstm_forward(projected, recurrent_kernel):
    units = tf.shape(recurrent_kernel)[0]
    zeros = tf.zeros([tf.shape(projected)[1], units], projected.dtype)

    def step(carry, x):
        h, c, _ = carry
        h, c, gates = lstm_update(x + tf.matmul(h, recurrent_kernel), c)
        return h, c, tf.concat(gates, axis=-1)

    return tf.scan(step, projected, initializer=(zeros, zeros, tf.zeros_like(projected[0])))


def _lstm_backward(d_hidden, hidden, cells, gates, recurrent_kernel):
    units = tf.shape(recurrent_kernel)[0]
    zeros = tf.zeros_like(hidden[0])
    previous_cells = tf.concat([zeros[None], cells[:-1]], axis=0)
    kernel_t = tf.transpose(recurrent_kernel)

    def step(carry, slices):
        dh_next, dc_next, _ = carry
        dh_out, gate, c, c_prev = slices
        i, f, g, o = tf.split(gate, 4, axis=-1)
        tanh_c = tf.tanh(c)
        dh = dh_out + dh_next
        dc = dc_next + dh * o * (1.0 - tf.square(tanh_c))
        dz = tf.concat([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                        dc * i * (1.0 - tf.square(g)), dh * tanh_c * o * (1.0 - o)], axis=-1)
        return tf.matmul(dz, kernel_t), dc * f, dz

    _, _, d_projected = tf.scan(step, (d_hidden, gates, cells, previous_cells),
                                initializer=(zeros, zeros, tf.zeros_like(gates[0])), reverse=True)
    previous_hidden = tf.concat([zeros[None], hidden[:-1]], axis=0)
    d_kernel = tf.matmul(tf.reshape(previous_hidden, [-1, units]), tf.reshape(d_projected, [-1, 4 * units]),
                         transpose_a=True)
    return d_projected, d_kernel


@tf.function(jit_compile=True, autograph=False)
def _compiled_hidden(projected, recurrent_kernel):
    return _lstm_forward(projected, recurrent_kernel)[0]


def lstm_hidden(projected, recurrent_kernel):
    """``lstm_sequence``'s h for inference (no gradient): the loop XLA-compiled, on the
    time axis padded to its bucket (the padding follows the valid steps) and the batch
    axis to a power of two (rows are independent), so that few shapes are compiled."""
    steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    padded = pad_batch_to_bucket(pad_to_bucket(projected, axis=0), axis=1)
    return _compiled_hidden(padded, recurrent_kernel)[:steps, :batch]


@tf.custom_gradient
def lstm_sequence(projected, recurrent_kernel):
    """LSTM over time-major gate pre-activations [T, B, 4H] (input part, both
    biases included) from zero state; returns h [T, B, H]. Gates i, f, g, o."""
    hidden, cells, gates = _lstm_forward(projected, recurrent_kernel)

    def backward(d_hidden):
        return _lstm_backward(d_hidden, hidden, cells, gates, recurrent_kernel)

    return hidden, backward


def run_stack(cells, inputs, compiled=False):
    """Top layer's h at every position of a multi-layer recurrent stack; ``compiled``:
    inference, each loop XLA-compiled where the cell can (``lstm_hidden``)."""
    outputs = inputs
    for cell in cells:
        if not cell.built:
            cell.build(outputs.shape)
        outputs = cell.run_sequence(outputs, compiled=compiled)
    return outputs
