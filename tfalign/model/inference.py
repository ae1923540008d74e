"""Greedy alignment as one compiled function, for evaluation and benchmarks.

XLA compiles the decoder's while loop into one kernel (about 2.5x faster on
CPU), but it compiles once per input shape. The time axes are therefore padded
to a multiple of ``bucket`` first, which changes nothing in the result (padding
follows the valid positions and the loop stops on the true lengths) and bounds
the number of compilations. The padding runs eagerly and the compiled function
sees concrete shapes: called from inside another tf.function with unknown
shapes, TF 2.21's XLA path aborted the process here.
"""

import tensorflow as tf


def pad_time(features, multiple):
    size = int(features.shape[1])
    target = -(-size // multiple) * multiple
    return tf.pad(features, [[0, 0], [0, target - size], [0, 0]])


def greedy_function(model, xla=True, bucket=64):
    """Reversed padded inputs (as the data pipeline gives) ->
    {"actions", "num_actions", "probabilities"}, trimmed to the steps taken."""
    core = tf.function(lambda inputs: model(inputs, training=False), jit_compile=xla, reduce_retracing=not xla)

    def greedy(inputs):
        inputs = {k: tf.convert_to_tensor(inputs[k]) for k in ("clip_features", "text_features", "clip_lengths",
                                                               "text_lengths")}
        if xla:
            inputs["clip_features"] = pad_time(inputs["clip_features"], bucket)
            inputs["text_features"] = pad_time(inputs["text_features"], bucket)
            inputs["clip_lengths"] = tf.cast(inputs["clip_lengths"], tf.int32)
            inputs["text_lengths"] = tf.cast(inputs["text_lengths"], tf.int32)
        return core(inputs)

    return greedy


def exact_function(model):
    """The exact best action path of a decoder without history (model/lattice.py):
    the same inputs and outputs as ``greedy_function``, plus ``clip_to_text``."""

    exact = tf.function(model.exact_path, reduce_retracing=True)

    return lambda inputs: exact({k: tf.convert_to_tensor(inputs[k]) for k in (
        "clip_features", "text_features", "clip_lengths", "text_lengths")})
