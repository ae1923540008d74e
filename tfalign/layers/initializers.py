"""The paper's initialization (DESIGN.md 2.6), as Keras initializers.

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
