"""Mixed precision (trainer.precision): bf16 and fp16 train, decode and export;
fp16's dynamic loss scale against a hand computation."""

import numpy as np
import pytest
import tensorflow as tf

from tfalign.data.batching import make_dataset
from tfalign.data.datasets import load_episodes
from tfalign.experiments import get_experiment
from tfalign.model import build_model
from tfalign.training.loop import Trainer
from tfalign.training.loss_scale import DynamicLossScale


def test_the_loss_scale_halves_on_overflow_and_doubles_after_a_period():
    scale = DynamicLossScale(initial=8.0, period=3)
    assert float(scale.scaled(tf.constant(2.0))) == 16.0
    grads, finite = scale.unscaled([tf.constant([8.0, 16.0])])
    assert bool(finite) and np.allclose(grads[0], [1.0, 2.0])
    _, finite = scale.unscaled([tf.constant([np.inf, 1.0])])
    assert not bool(finite)
    history = []
    for ok in (True, True, False, True, True, True, True):
        scale.update(tf.constant(ok))
        history.append((float(scale.scale.numpy()), int(scale.finite_steps.numpy())))
    assert history == [(8.0, 1), (8.0, 2), (4.0, 0), (4.0, 1), (4.0, 2), (8.0, 0), (8.0, 1)]


def small_data():
    config = get_experiment("rp_lars_sbn").override({"data.dataset": "synthetic"})
    return make_dataset(load_episodes(config.data, "val")[:4], 4)


@pytest.mark.large  # training steps in three precisions
@pytest.mark.parametrize("precision, compute", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_a_mixed_precision_model_stays_close_to_float32(precision, compute):
    config = get_experiment("rp_lars_sbn").model
    full, mixed = build_model(config, seed=0), build_model(config, seed=0, precision=precision)
    mixed.set_weights(full.get_weights())
    assert mixed.compute_dtype == compute and all(w.dtype == "float32" for w in mixed.weights)
    batch = next(iter(small_data()))
    want = tf.nn.softmax(full(batch, training=False)).numpy()
    got = mixed(batch, training=False)
    assert got.dtype == tf.float32  # logits and losses stay float32
    mask = np.arange(want.shape[1])[None] < batch["action_lengths"].numpy()[:, None]
    assert np.abs(tf.nn.softmax(got).numpy() - want)[mask].max() < 0.05
    out = mixed.align(_natural(batch))
    assert out["probabilities"].dtype == tf.float32 and np.all(out["num_actions"].numpy() > 0)


@pytest.mark.large
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_mixed_precision_trainer_steps_and_exports(precision, tmp_path):
    from tfalign.serving.saved_model import export_saved_model

    config = get_experiment("rp_lars_sbn").override({"data.dataset": "synthetic", "trainer.precision": precision},
                                                    batch_size=4)
    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None)
    data = small_data()
    step = trainer._make_train_step(data.element_spec)
    before = [v.numpy().copy() for v in trainer.model.trainable_variables]
    moved = lambda: any(not np.allclose(a, v.numpy()) for a, v in zip(before, trainer.model.trainable_variables))
    for batch in data.repeat(20):  # fp16: the first steps may overflow, be skipped and halve the scale
        assert np.isfinite(float(step(batch)[0]))
        if moved():
            break
    assert moved()
    if precision == "fp16":  # the scale is part of the resume checkpoint
        assert trainer.loss_scale is not None and "loss_scale" in trainer.checkpoint._trackable_children()
    path = export_saved_model(trainer.model, tmp_path / "model")
    batch = next(iter(data))
    served = tf.saved_model.load(str(path)).signatures["serving_default"](**{
        k: tf.constant(v) for k, v in _natural(batch).items()})
    local = trainer.model.align(_natural(batch))
    for i, n in enumerate(local["num_actions"].numpy()):
        assert served["actions"][i, :n].numpy().tolist() == local["actions"][i, :n].numpy().tolist()


def _natural(batch):
    """The serving signatures take natural order; the pipeline gives reversed sequences."""
    from tfalign.data.batching import to_natural

    return {"clip_features": to_natural(batch["clip_features"], batch["clip_lengths"]).numpy(),
            "text_features": to_natural(batch["text_features"], batch["text_lengths"]).numpy(),
            "clip_lengths": batch["clip_lengths"].numpy().astype(np.int32),
            "text_lengths": batch["text_lengths"].numpy().astype(np.int32)}
