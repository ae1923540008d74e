import keras
import numpy as np
import pytest
import tensorflow as tf

from tfalign.optimizers import AdamLARS, make_optimizer


def numpy_adam_lars(weights, gradients, lr, b1=0.9, b2=0.999, eps=1e-8, clipnorm=2.0):
    """The rule of docs/training.md, step by step, in float64."""
    weights = [w.astype(np.float64).copy() for w in weights]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, grads in enumerate(gradients, 1):
        norm = np.sqrt(sum(np.sum(g**2) for g in grads))
        scale = min(1.0, clipnorm / norm) if clipnorm and norm > 0 else 1.0
        for i, g in enumerate(grads):
            g = g * scale
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            u = (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            w_norm, u_norm = np.linalg.norm(weights[i]), np.linalg.norm(u)
            trust = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            weights[i] -= lr * trust * u
    return weights


def test_matches_numpy_reference_with_zero_norm_variables_and_clipping():
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(4, 3)), np.zeros(3), rng.normal(size=(5,))]  # the bias starts at norm 0
    gradients = [[rng.normal(size=w.shape) * s for w in initial] for s in (0.1, 5.0, 1.0, 0.0, 2.0)]
    gradients[1][2] = np.zeros(5)  # a zero gradient: ||u|| = 0 on a fresh variable
    variables = [keras.Variable(w.astype(np.float32)) for w in initial]
    optimizer = AdamLARS(learning_rate=0.01, global_clipnorm=2.0)  # Keras's clipping, asked for
    for grads in gradients:
        optimizer.apply([tf.constant(g, tf.float32) for g in grads], variables)
    expected = numpy_adam_lars(initial, gradients, 0.01)
    for variable, reference in zip(variables, expected):
        assert np.allclose(variable.numpy(), reference, rtol=1e-4, atol=1e-6)


def test_every_variable_moves_by_the_same_fraction_of_its_norm():
    rng = np.random.default_rng(1)
    variables = [keras.Variable(rng.normal(size=s).astype(np.float32) * k) for s, k in (((30, 20), 5.0), ((20,), 0.01))]
    before = [v.numpy().copy() for v in variables]
    AdamLARS(learning_rate=0.003, global_clipnorm=None).apply(
        [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables], variables)
    ratios = [np.linalg.norm(v.numpy() - b) / np.linalg.norm(b) for v, b in zip(variables, before)]
    assert ratios == pytest.approx([0.003, 0.003], rel=1e-4)


def test_config_round_trip_and_factory():
    optimizer = AdamLARS(learning_rate=0.005, beta_1=0.8)
    clone = AdamLARS.from_config(optimizer.get_config())
    assert clone.beta_1 == 0.8 and clone.global_clipnorm is None  # clipping is the trainer's
    assert float(clone.learning_rate) == pytest.approx(0.005)
    assert isinstance(make_optimizer("lamb", 1e-3), keras.optimizers.Lamb)
    assert make_optimizer("lars", 1e-3).global_clipnorm is None  # the loop clips all-reduced gradients
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("sgd", 1.0)


def test_one_step_fit():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(AdamLARS(learning_rate=0.01), "mse")
    before = model.get_weights()[0].copy()
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    ratio = np.linalg.norm(model.get_weights()[0] - before) / np.linalg.norm(before)
    assert ratio == pytest.approx(0.01, rel=1e-3)


def test_it_does_not_clip_unless_asked():
    """The trainer clips after the all-reduce; the optimizer alone clips nothing by default."""
    variables = [keras.Variable(np.ones(3, np.float32))]
    AdamLARS(learning_rate=0.01).apply([tf.constant([30.0, 40.0, 0.0])], variables)
    expected = numpy_adam_lars([np.ones(3)], [[np.array([30.0, 40.0, 0.0])]], 0.01, clipnorm=None)
    assert np.allclose(variables[0].numpy(), expected[0], rtol=1e-5)
