import keras
import numpy as np
import tensorflow as tf
from harness import run_layer_test

from tfalign.layers import SequenceBatchNormalization


def reference(x, lengths, gamma, beta, eps=1e-5):
    valid = np.concatenate([x[b, :n] for b, n in enumerate(lengths)])
    mean, var = valid.mean(0), valid.var(0, ddof=1)  # unbiased, as the paper's code
    return (x - mean) / np.sqrt(var + eps) * gamma + beta, mean, var


def make_batch(seed=0, lengths=(5, 2, 4), channels=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, size=(len(lengths), max(lengths), channels)).astype(np.float32)
    mask = np.arange(max(lengths))[None] < np.asarray(lengths)[:, None]
    return x, mask


def test_training_output_and_running_statistics_match_numpy():
    x, mask = make_batch()
    layer = SequenceBatchNormalization()
    out = layer(x, mask=mask, training=True).numpy()
    ref, mean, var = reference(x, [5, 2, 4], 1.0, 0.0)
    assert np.allclose(out[mask], ref[mask], atol=1e-5)
    assert np.allclose(layer.moving_mean.numpy(), 0.1 * mean, atol=1e-6)
    assert np.allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * var, atol=1e-5)


def test_inference_uses_running_statistics():
    x, mask = make_batch()
    layer = SequenceBatchNormalization()
    layer.build(x.shape)
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 1.0, 0.25])
    out = layer(x, mask=mask, training=False).numpy()
    assert np.allclose(out, (x - [1, 2, 3]) / np.sqrt(np.array([4, 1, 0.25]) + 1e-5), atol=1e-5)


def test_padding_does_not_change_valid_outputs():
    x, mask = make_batch()
    noisy = np.where(mask[..., None], x, 1e3 * np.random.default_rng(1).normal(size=x.shape)).astype(np.float32)
    longer = np.concatenate([noisy, np.full((3, 4, 3), 7.0, np.float32)], axis=1)
    longer_mask = np.concatenate([mask, np.zeros((3, 4), bool)], axis=1)
    a = SequenceBatchNormalization()(x, mask=mask, training=True).numpy()
    b = SequenceBatchNormalization()(longer, mask=longer_mask, training=True).numpy()
    assert np.allclose(a[mask], b[:, :5][mask], atol=1e-5)


def test_layer_harness():
    x, mask = make_batch()
    expected, _, _ = reference(x, [5, 2, 4], 1.0, 0.0)
    _, out = run_layer_test(SequenceBatchNormalization, {"momentum": 0.2, "epsilon": 1e-5},
                            {"inputs": x, "mask": mask}, (3, 5, 3), call_kwargs={"training": True},
                            expected_num_trainable_weights=2, expected_num_non_trainable_weights=2)
    assert np.allclose(out.numpy()[mask], expected[mask], atol=1e-5)


def test_gradient_matches_finite_differences():
    x, mask = make_batch(lengths=(3, 2), channels=2)
    layer = SequenceBatchNormalization()
    weights = tf.constant(np.random.default_rng(2).normal(size=x.shape), tf.float64)

    def f(inputs):
        out = layer(tf.cast(inputs, tf.float32), mask=mask, training=True)
        return tf.reduce_sum(tf.cast(out, tf.float64) * weights * mask[..., None])

    theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(x, tf.float64)], delta=1e-3)
    assert np.allclose(theoretical[0], numerical[0], atol=2e-2)


def test_one_step_fit_with_keras_masking():
    inputs = keras.Input((None, 4))
    x = keras.layers.Masking(0.0)(inputs)
    x = SequenceBatchNormalization()(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse")
    data = np.random.default_rng(0).normal(size=(8, 6, 4)).astype(np.float32)
    data[:, 4:] = 0.0
    history = model.fit(data, np.ones((8, 6, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    sbn = model.layers[2]
    assert not np.allclose(sbn.moving_mean.numpy(), 0.0)
