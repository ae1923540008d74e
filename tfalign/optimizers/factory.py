"""Optimizer by name: "lars" (AdamLARS), "adam", "lamb" (Keras's own).

Gradient clipping is left to the training loop, which clips the *all-reduced*
gradients (Keras clips per replica, before its all-reduce), so the optimizers
here are built without clipping.
"""

import keras

from tfalign.errors import UserError
from tfalign.optimizers.adam_lars import AdamLARS

OPTIMIZERS = ("adam", "lars", "lamb")


def make_optimizer(name: str, learning_rate: float, weight_averaging: float = 0.0):
    """``weight_averaging`` > 0 keeps an exponential moving average of the
    weights with that momentum (Keras's ``use_ema``; tfalign's option, off in
    the paper's experiments)."""
    ema = {"use_ema": True, "ema_momentum": weight_averaging} if weight_averaging else {}
    if name == "lars":
        return AdamLARS(learning_rate=learning_rate, **ema)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8, **ema)  # PyTorch's eps
    if name == "lamb":
        return keras.optimizers.Lamb(learning_rate=learning_rate, epsilon=1e-8, **ema)
    raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
