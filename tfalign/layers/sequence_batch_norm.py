"""Sequence-wise batch normalization (SBN), Wang et al. (WACV 2021).

Per channel, the mean and the *unbiased* variance are taken over every
non-padding (batch, time) position of the mini-batch; the same statistics
normalize in training and feed the running averages, which are used at
inference. ``momentum`` means what it means for Keras's BatchNormalization:
the weight of the running value, ``moving = momentum * moving + (1 - momentum)
* batch``; the paper's (PyTorch's) momentum 0.1 on the new batch is 0.9 here. Under a tf.distribute strategy
the masked sums, sums of squares and counts are all-reduced across replicas,
so the statistics are those of the global batch, whatever the replica count.
"""

import keras
import tensorflow as tf


def masked_moments(inputs, mask):
    """Mean and unbiased variance over the True positions of mask, all replicas.

    Sums are accumulated in float64 so that the sum-of-squares form of the
    variance stays accurate on long batches.
    """
    weights = tf.cast(mask, tf.float64)[..., None]
    x = tf.cast(inputs, tf.float64)
    total = tf.reduce_sum(x * weights, axis=[0, 1])
    total_sq = tf.reduce_sum(tf.square(x) * weights, axis=[0, 1])
    count = tf.reduce_sum(weights)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        total, total_sq, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [total, total_sq, count])
    mean = total / tf.maximum(count, 1.0)
    variance = (total_sq - count * tf.square(mean)) / tf.maximum(count - 1.0, 1.0)
    return tf.cast(mean, inputs.dtype), tf.cast(tf.maximum(variance, 0.0), inputs.dtype)


@keras.saving.register_keras_serializable("tfalign")
class SequenceBatchNormalization(keras.layers.Layer):
    """Batch normalization over the valid positions of padded sequences.

    Call with ``inputs`` [B, T, C] and ``mask`` [B, T] (True = valid); padding
    positions of the output are left as computed (they are never read).
    Under mixed precision it normalizes in float32 and returns the compute
    dtype, as Keras's BatchNormalization does (float16 would overflow the sums).
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        # float32 even under mixed precision (autocast=False): the normalization runs in float32.
        self.gamma = self.add_weight((channels,), "ones", name="gamma", autocast=False)
        self.beta = self.add_weight((channels,), "zeros", name="beta", autocast=False)
        # Identical on every replica (global statistics): "mean" aggregation is exact.
        self.moving_mean = self.add_weight((channels,), "zeros", name="moving_mean", trainable=False,
                                           aggregation="mean", autocast=False)
        self.moving_variance = self.add_weight((channels,), "ones", name="moving_variance", trainable=False,
                                               aggregation="mean", autocast=False)

    def call(self, inputs, mask=None, training=False):
        if mask is None:
            mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
        x = tf.cast(inputs, tf.float32)
        if training:
            mean, variance = masked_moments(x, mask)
            keep, update = self.momentum, 1.0 - self.momentum  # Keras's meaning of momentum
            self.moving_mean.assign(keep * self.moving_mean + update * mean)
            self.moving_variance.assign(keep * self.moving_variance + update * variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        out = (x - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta
        return tf.cast(out, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
