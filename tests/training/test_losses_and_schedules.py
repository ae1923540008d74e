import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st

from tfalign.training.losses import masked_cross_entropy
from tfalign.training.schedules import LinearWarmup, PlateauHalving


def numpy_loss(logits, actions, lengths, eps):
    total, count = 0.0, 0
    for b, n in enumerate(lengths):
        for t in range(n):
            z = logits[b, t] - logits[b, t].max()
            log_p = z - np.log(np.exp(z).sum())
            target = np.full(3, eps / 3)
            target[actions[b, t]] += 1 - eps
            total -= (target * log_p).sum()
            count += 1
    return total / count


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.floats(0, 0.3), st.integers(0, 10_000))
def test_loss_matches_numpy(batch, steps, eps, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, steps, 3)).astype(np.float32) * 3
    actions = rng.integers(0, 3, size=(batch, steps))
    lengths = rng.integers(1, steps + 1, size=batch)
    value = masked_cross_entropy(tf.constant(logits), tf.constant(actions), tf.constant(lengths), eps)
    assert float(value) == pytest.approx(numpy_loss(logits, actions, lengths, eps), rel=1e-5)


class _Model:
    def __init__(self, lr):
        self.optimizer = keras.optimizers.Adam(learning_rate=lr)


def test_plateau_halves_after_patience_with_relative_threshold():
    callback = PlateauHalving(patience=3, threshold=1e-4)
    callback.set_model(_Model(1.0))
    losses = [1.0, 0.99995, 0.99999, 0.99996, 0.5, 0.5, 0.5, 0.5]  # 5e-5 relative is not an improvement
    lrs = []
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"loss": loss})
        lrs.append(float(callback.model.optimizer.learning_rate.numpy()))
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    restored = PlateauHalving(patience=3)
    restored.set_state(callback.get_state())
    assert restored.get_state() == callback.get_state()


def test_linear_warmup_per_step():
    callback = LinearWarmup(start=5e-5, target=5e-4, epochs=5, steps_per_epoch=4)
    callback.set_model(_Model(5e-4))
    seen = []
    for epoch in range(6):
        callback.on_epoch_begin(epoch)
        for step in range(4):
            callback.on_train_batch_begin(step)
            seen.append(float(callback.model.optimizer.learning_rate.numpy()))
    assert seen[0] == pytest.approx(5e-5)
    assert seen[2] == pytest.approx(5e-5 + (5e-4 - 5e-5) * 0.5 / 5)
    assert np.all(np.diff(seen[:20]) > 0) and seen[20:] == pytest.approx([5e-4] * 4)
