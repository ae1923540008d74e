"""The paper's initialization (docs/network.md), as Keras initializers, and
the Dense layer every dense part of the network is made with.

PyTorch's kaiming_normal_ and xavier_normal_ draw from an untruncated normal;
Keras's HeNormal and GlorotNormal truncate, so VarianceScaling is used.
"""

import keras


def dense_kernel_initializer(seed=None):
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=seed)


def lstm_input_kernel_initializer(seed=None):
    return keras.initializers.VarianceScaling(1.0, "fan_avg", "untruncated_normal", seed=seed)


def bias_initializer(seed=None):
    return keras.initializers.RandomNormal(0.0, 0.1, seed=seed)


def dense(units, activation=None, use_bias=True, name=None, dtype=None):
    """A Dense layer with the paper's initialization: kaiming-normal kernel, N(0, 0.1^2) bias."""
    return keras.layers.Dense(units, activation=activation, use_bias=use_bias, name=name, dtype=dtype,
                              kernel_initializer=dense_kernel_initializer(),
                              bias_initializer=bias_initializer() if use_bias else "zeros")
