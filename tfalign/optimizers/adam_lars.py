"""AdamLARS: Adam's step direction, rescaled per variable as LARS does.

For each variable w with gradient g (Wang et al., WACV 2021; docs/training.md):
    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    u  = m_hat / (sqrt(v_hat) + eps)          (Adam's bias-corrected direction)
    w <- w - lr * ||w|| / ||u|| * u           (w <- w - lr * u if ||w|| or ||u|| is 0)
so every variable moves by the same fraction ``lr`` of its own norm, which is
what equalizes the update-to-weight ratios across layers. Every variable is
its own group, none is excluded in the paper's experiments;
``exclude_from_layer_adaptation`` (LAMB's name for it) makes variables take
plain Adam steps: a variable that starts at zero (a gate, a correction) would
otherwise move by a fraction of nothing. ``lr`` is the product lr * eta of the paper's
Table 7.

The paper clips the gradients to global norm 2. tfalign's trainer does it
itself, after the gradients are all-reduced across replicas, and builds this
optimizer with ``global_clipnorm=None`` (the default): Keras's own clipping
(``global_clipnorm=2.0`` here) would clip inside ``apply``, per replica under a
distribution strategy, before the all-reduce.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable("tfalign")
class AdamLARS(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=5e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, global_clipnorm=None,
                 name="adam_lars", **kwargs):
        super().__init__(learning_rate=learning_rate, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._plain_adam = set()  # indices of the variables that take Adam's step unscaled

    def exclude_from_layer_adaptation(self, var_list) -> None:
        """``var_list`` (variables the optimizer was built with) take plain Adam steps
        (lr * u), without the ||w|| / ||u|| ratio."""
        self._plain_adam.update(self._get_variable_index(v) for v in var_list)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign(m, ops.add(ops.multiply(m, self.beta_1), ops.multiply(gradient, 1 - self.beta_1)))
        self.assign(v, ops.add(ops.multiply(v, self.beta_2), ops.multiply(ops.square(gradient), 1 - self.beta_2)))
        m_hat = ops.divide(m, 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step))
        v_hat = ops.divide(v, 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        direction = ops.divide(m_hat, ops.add(ops.sqrt(v_hat), self.epsilon))
        if self._get_variable_index(variable) in self._plain_adam:
            self.assign_sub(variable, ops.multiply(lr, direction))
            return
        weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
        direction_norm = ops.sqrt(ops.sum(ops.square(direction)))
        usable = ops.logical_and(ops.greater(weight_norm, 0), ops.greater(direction_norm, 0))
        trust = ops.where(usable, ops.divide(weight_norm, ops.where(usable, direction_norm, 1.0)), 1.0)
        self.assign_sub(variable, ops.multiply(lr * trust, direction))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
