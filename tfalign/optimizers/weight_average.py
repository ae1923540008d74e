"""Validating, testing and exporting the moving average of the weights (tfalign's
``optimizer.weight_averaging``; Keras's ``use_ema``)."""

import contextlib


@contextlib.contextmanager
def averaged_weights(model, optimizer, momentum: float):
    """Inside the block the model holds the optimizer's exponential moving averages
    of its weights, and its own weights again after it; with ``momentum`` 0 (no
    averaging) nothing changes, nor before the first step (Keras's averages are
    zeros until then: the first step sets them to the weights)."""
    if not momentum or int(optimizer.iterations.numpy()) == 0:
        yield
        return
    variables = model.trainable_variables
    raw = [v.numpy() for v in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)
