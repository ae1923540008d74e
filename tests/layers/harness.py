"""One layer-test harness, in the style of keras-hub's ``TestCase.run_layer_test``.

``run_layer_test`` checks, for a layer class and its constructor arguments:
- the serialization round trip (``get_config``/``from_config`` and Keras's
  serialize/deserialize give a layer of the same config);
- build and weight counts (trainable, non-trainable);
- an eager call (output shapes, and values when given) and a symbolic call on
  ``keras.Input`` tensors (the same output shapes, batch and time unknown);
- under a mixed dtype policy (``mixed_bfloat16``): variables stay float32, the
  outputs are the compute dtype, and they stay close to the float32 outputs;
- one fit step of a functional model around the layer moves its weights.

Each layer's test calls it beside its own NumPy reference of the numerics.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _flat(output):
    return list(tf.nest.flatten(output))


def _call(layer, inputs: dict, **extra):
    return layer(**inputs, **extra)


def _symbolic(value):
    """A keras.Input like ``value``: batch unknown, and time too for a [B, T, D] input."""
    value = np.asarray(value)
    shape = (None, *value.shape[2:]) if value.ndim >= 3 else value.shape[1:]
    return keras.Input(shape=shape, dtype=value.dtype.name)


def run_layer_test(cls, init_kwargs: dict, inputs: dict, expected_output_shapes, *, build_shape=None,
                   call_kwargs: dict | None = None, expected_output=None, expected_num_trainable_weights=None,
                   expected_num_non_trainable_weights=0, run_mixed_precision_check=True,
                   mixed_precision_atol=0.1, run_training_check=True, output_index=0,
                   variable_dtype="float32"):
    """``inputs``: the call's tensor arguments by name (``{"inputs": x}``, or
    ``{"inputs": x, "states": [h, c]}`` for a cell); ``call_kwargs``: others
    (``training``); ``expected_output_shapes``: one shape or a list, in the
    order of ``tf.nest.flatten(output)``; ``output_index``: the output a fit
    step trains on; ``variable_dtype``: what every variable holds under mixed
    precision (a layer that computes in float64 keeps float64)."""
    call_kwargs = call_kwargs or {}
    expected_shapes = [tuple(s) for s in (expected_output_shapes if isinstance(expected_output_shapes[0],
                                                                              (tuple, list))
                                          else [expected_output_shapes])]

    # Serialization round trip.
    layer = cls(**init_kwargs)
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, cls) and revived.get_config() == config

    # Build and weight counts.
    if build_shape is not None:
        layer.build(build_shape)
        assert layer.built
    output = _call(layer, inputs, **call_kwargs)
    assert layer.built
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, [w.path for w in
                                                                             layer.trainable_weights]
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, [
        w.path for w in layer.non_trainable_weights]

    # Eager call.
    outputs = _flat(output)
    assert [tuple(t.shape) for t in outputs] == expected_shapes
    if expected_output is not None:
        for got, want in zip(outputs, tf.nest.flatten(expected_output)):
            np.testing.assert_allclose(got, want, atol=1e-5)

    # Symbolic call: the same shapes with batch (and time) unknown.
    symbolic_inputs = tf.nest.map_structure(_symbolic, inputs)
    symbolic = _flat(_call(cls(**init_kwargs), symbolic_inputs, **call_kwargs))
    assert len(symbolic) == len(expected_shapes)
    for tensor, shape in zip(symbolic, expected_shapes):
        # A last axis that is a time axis (a similarity map's) is unknown too.
        assert tensor.shape[-1] in (shape[-1], None) and len(tensor.shape) == len(shape)

    # Mixed precision: float32 (variable_dtype) variables, outputs in the compute dtype, close to float32.
    if run_mixed_precision_check:
        mixed = cls(**init_kwargs, dtype="mixed_bfloat16")
        if build_shape is not None:
            mixed.build(build_shape)
        _call(mixed, inputs, **call_kwargs)
        mixed.set_weights(layer.get_weights())
        mixed_outputs = _flat(_call(mixed, inputs, **call_kwargs))
        for weight in mixed.weights:
            assert weight.dtype == variable_dtype, weight.path
        for got, want in zip(mixed_outputs, outputs):
            if want.dtype.is_floating:
                assert got.dtype == tf.bfloat16, got.dtype
                np.testing.assert_allclose(tf.cast(got, tf.float32), want, atol=mixed_precision_atol,
                                           rtol=mixed_precision_atol)

    # One fit step of a functional model around the layer moves its weights.
    if run_training_check and layer.trainable_weights:
        trained = cls(**init_kwargs)
        model_inputs = tf.nest.map_structure(_symbolic, inputs)
        out = _flat(_call(trained, model_inputs, **{k: v for k, v in call_kwargs.items() if k != "training"}))
        model = keras.Model(tf.nest.flatten(model_inputs), out[output_index])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        data = [np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
                for v in tf.nest.flatten(inputs)]
        target = np.ones(expected_shapes[output_index], np.float32)
        before = [w.numpy().copy() for w in trained.trainable_weights]
        history = model.fit(data, target, batch_size=expected_shapes[output_index][0], epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, trained.trainable_weights))
    return layer, output


def run_model_saving_test(model, inputs: dict, request: dict, tmp_path, decodings=("greedy",)):
    """keras-hub's ``run_model_saving_test`` for the aligner: ``model.save`` to a
    ``.keras`` file and ``keras.models.load_model`` give a model of the same config
    (its dtype policy included) whose teacher-forced logits and alignments equal
    the original's; so does a preset (``Aligner.save_to_preset`` / ``from_preset``).

    ``inputs``: a training batch (reversed, with actions); ``request``: the same
    videos in natural order, as ``align`` takes them."""
    from tfalign.api.aligner import Aligner

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is type(model) and reloaded.get_config() == model.get_config()
    assert reloaded.dtype_policy.name == model.dtype_policy.name
    preset = Aligner(model).save_to_preset(tmp_path / "preset")
    from_preset = Aligner.from_preset(preset).model
    assert from_preset.get_config() == model.get_config()
    expected_logits = model(inputs, training=False).numpy()
    for other in (reloaded, from_preset):
        np.testing.assert_array_equal(other(inputs, training=False).numpy(), expected_logits)
        for decoding in decodings:
            want, got = model.align(request, decoding), other.align(request, decoding)
            for key in ("actions", "num_actions", "clip_to_text"):
                np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), err_msg=f"{decoding} {key}")
            if "clip_confidence" in want:  # the confidences (and their temperature) travel too
                np.testing.assert_allclose(got["clip_confidence"].numpy(), want["clip_confidence"].numpy(),
                                           rtol=1e-6, err_msg=f"{decoding} clip_confidence")
    return reloaded
