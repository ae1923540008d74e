import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import run_layer_test

from tfalign.layers import LayerNormLSTMCell, StackLSTMCell
from tfalign.layers.recurrence import scan_sequence


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def layer_norm(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_lstm_step(cell, x, h, c):
    w, u = cell.input_kernel.numpy(), cell.recurrent_kernel.numpy()
    if isinstance(cell, StackLSTMCell):
        z = x @ w + cell.input_bias.numpy() + h @ u + cell.recurrent_bias.numpy()
    else:
        norm = lambda layer, v: layer_norm(v, layer.gamma.numpy(), layer.beta.numpy())
        z = norm(cell.input_norm, x @ w) + norm(cell.recurrent_norm, h @ u)
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    if isinstance(cell, LayerNormLSTMCell):
        c = layer_norm(c, cell.cell_norm.gamma.numpy(), cell.cell_norm.beta.numpy())
    return sigmoid(o) * np.tanh(c), c


def numpy_lstm(cell, x):
    h = c = np.zeros((x.shape[0], cell.units))
    outputs = []
    for t in range(x.shape[1]):
        h, c = numpy_lstm_step(cell, x[:, t], h, c)
        outputs.append(h)
    return np.stack(outputs, 1)


def built(cls, units=5, dim=3):
    cell = cls(units)
    cell.build((None, dim))
    if isinstance(cell, LayerNormLSTMCell):  # non-trivial norm parameters
        rng = np.random.default_rng(0)
        for norm in (cell.input_norm, cell.recurrent_norm, cell.cell_norm):
            norm.gamma.assign(rng.uniform(0.5, 1.5, norm.gamma.shape))
            norm.beta.assign(rng.normal(0, 0.3, norm.beta.shape))
    return cell


CELLS = [StackLSTMCell, LayerNormLSTMCell]


@pytest.mark.parametrize("cls", CELLS)
def test_sequence_matches_numpy_and_step_api(cls):
    cell = built(cls)
    x = np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32)
    out = cell.run_sequence(tf.constant(x)).numpy()
    assert out.shape == (2, 6, 5)
    assert np.allclose(out, numpy_lstm(cell, x), atol=1e-5)
    h, (h2, c) = cell(x[:, 0], [tf.zeros((2, 5)), tf.zeros((2, 5))])
    assert np.allclose(h, out[:, 0], atol=1e-6) and np.allclose(h, h2)


@pytest.mark.parametrize("cls", CELLS)
def test_padding_after_the_sequence_changes_nothing(cls):
    cell = built(cls)
    x = np.random.default_rng(2).normal(size=(1, 4, 3)).astype(np.float32)
    padded = np.concatenate([x, 100 * np.ones((1, 3, 3), np.float32)], axis=1)
    assert np.allclose(cell.run_sequence(x).numpy(), cell.run_sequence(padded).numpy()[:, :4], atol=1e-6)


def test_parameter_counts_and_initialization():
    cell = built(StackLSTMCell, units=300, dim=300)
    assert sum(np.prod(w.shape) for w in cell.trainable_weights) == 722_400  # torch.nn.LSTMCell(300, 300)
    for bias in (cell.input_bias.numpy(), cell.recurrent_bias.numpy()):
        assert np.all(bias[300:600] == 1.0)  # forget gate: 1.0 + 1.0 = 2.0 in total
        assert 0.07 < np.std(np.delete(bias, np.s_[300:600])) < 0.13
    u = cell.recurrent_kernel.numpy()
    assert np.allclose(u @ u.T, np.eye(300), atol=1e-4)  # orthogonal, as torch orthogonal_ on [4H, H]
    ln = built(LayerNormLSTMCell, units=300, dim=300)
    assert sum(np.prod(w.shape) for w in ln.trainable_weights) == 725_400  # the paper's LN cell


@pytest.mark.parametrize("cls, weights", [(StackLSTMCell, 4), (LayerNormLSTMCell, 8)])
def test_layer_harness(cls, weights):
    rng = np.random.default_rng(0)
    x, h, c = (rng.normal(size=(2, d)).astype(np.float32) for d in (3, 5, 5))
    cell, (out, (h2, c2)) = run_layer_test(cls, {"units": 5}, {"inputs": x, "states": [h, c]},
                                           [(2, 5), (2, 5), (2, 5)], expected_num_trainable_weights=weights)
    expected = numpy_lstm_step(cell, x, h, c)
    assert np.allclose(out, expected[0], atol=1e-5) and np.allclose(c2, expected[1], atol=1e-5)


def test_hand_written_gradient_equals_automatic_one():
    cell = built(StackLSTMCell, units=6, dim=4)
    x = tf.constant(np.random.default_rng(3).normal(size=(3, 7, 4)), tf.float32)
    weights = tf.constant(np.random.default_rng(4).normal(size=(3, 7, 6)), tf.float32)

    def gradients(run):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(run(x) * weights)
        return tape.gradient(loss, [x] + cell.trainable_variables)

    fast = gradients(cell.run_sequence)
    reference = gradients(lambda inputs: scan_sequence(cell, inputs))
    for a, b in zip(fast, reference):
        assert np.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cls", CELLS)
def test_gradient_matches_finite_differences(cls):
    cell = built(cls, units=3, dim=2)
    x = np.random.default_rng(5).normal(size=(2, 3, 2))

    def f(inputs):
        return tf.reduce_sum(tf.sin(cell.run_sequence(tf.cast(inputs, tf.float32))))

    theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(x, tf.float64)], delta=1e-3)
    assert np.allclose(theoretical[0], numerical[0], atol=5e-3)


@pytest.mark.parametrize("cls", CELLS)
def test_one_step_fit_inside_keras_rnn(cls):
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.RNN(cls(4)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(np.ones((4, 5, 3), np.float32), np.zeros((4, 1)), epochs=1, verbose=0)
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights))


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("shape", [(1, 6), (3, 70), (5, 1)])
def test_compiled_sequence_matches_numpy(cls, shape):
    """Decoding's compiled loop (XLA, time and batch axes padded to their buckets) gives
    the plain LSTM's outputs, inside a tf.function of unknown shapes too."""
    cell = built(cls)
    x = np.random.default_rng(3).normal(size=(*shape, 3)).astype(np.float32)
    eager = cell.run_sequence(tf.constant(x), compiled=True).numpy()
    graph = tf.function(lambda v: cell.run_sequence(v, compiled=True),
                        input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])(tf.constant(x)).numpy()
    assert eager.shape == (*shape, 5)
    assert np.allclose(eager, numpy_lstm(cell, x), atol=1e-5) and np.allclose(graph, eager, atol=1e-5)
