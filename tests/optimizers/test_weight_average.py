"""The weight average that validation, tests, exports and the pseudo-labels' teacher read."""

import keras
import numpy as np

from tfalign.optimizers import make_optimizer
from tfalign.optimizers.weight_average import averaged_weights


def test_the_block_holds_the_moving_average_and_the_weights_come_back():
    """Inside: a NumPy EMA of the weights after each step (the first step sets it to the
    weights); after: the trained weights. Before any step the averages hold nothing (Keras
    keeps zeros until the first step): the model keeps its own weights."""
    layer = keras.layers.Dense(3, kernel_initializer="ones")
    layer.build((None, 2))
    optimizer = make_optimizer("adam", 0.1, weight_averaging=0.9)
    optimizer.build(layer.trainable_variables)
    start = [v.numpy().copy() for v in layer.trainable_variables]
    with averaged_weights(layer, optimizer, 0.9):
        np.testing.assert_array_equal(layer.kernel.numpy(), start[0])  # not Keras's zeros
    rng = np.random.default_rng(0)
    average = None
    for _ in range(4):
        optimizer.apply([rng.normal(size=v.shape).astype(np.float32) for v in layer.trainable_variables],
                        layer.trainable_variables)
        weights = [v.numpy().copy() for v in layer.trainable_variables]
        average = weights if average is None else [0.9 * a + 0.1 * w for a, w in zip(average, weights)]
    with averaged_weights(layer, optimizer, 0.9):
        for variable, expected in zip(layer.trainable_variables, average):
            np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    for variable, expected in zip(layer.trainable_variables, weights):
        np.testing.assert_array_equal(variable.numpy(), expected)
