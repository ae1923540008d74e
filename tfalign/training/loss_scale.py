"""fp16's dynamic loss scale, as keras.optimizers.LossScaleOptimizer keeps it.

The loss is multiplied by the scale before the gradient (so small gradients
survive float16) and the gradients are divided by it after, before the
trainer clips them and adds weight decay (which is why the trainer applies
this itself instead of wrapping its optimizer). A step whose gradients are
not finite is skipped and the scale halved; after ``period`` finite steps in a
row the scale doubles.
"""

import tensorflow as tf


class DynamicLossScale:
    def __init__(self, initial: float = 2.0 ** 15, period: int = 2000):
        self.period = period
        # Equal on every replica (the gradients are all-reduced before the test).
        options = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.scale = tf.Variable(initial, dtype=tf.float32, name="loss_scale", **options)
        self.finite_steps = tf.Variable(0, dtype=tf.int64, name="finite_steps", **options)

    def scaled(self, loss):
        return loss * self.scale

    def unscaled(self, grads):
        """The true gradients, and whether every one of them is finite."""
        grads = [g / self.scale for g in grads]
        return grads, tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

    def update(self, finite):
        grow = finite & (self.finite_steps + 1 >= self.period)
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale), self.scale / 2.0))
        self.finite_steps.assign(tf.where(finite & tf.logical_not(grow), self.finite_steps + 1,
                                          tf.zeros_like(self.finite_steps)))
