"""Learning-rate schedules, as Keras callbacks the custom loop drives.

- ``PlateauHalving``: halve the rate when the *training* loss has not improved
  by a relative 1e-4 for 10 epochs (PyTorch ReduceLROnPlateau's "rel" mode,
  the paper's): Keras's ReduceLROnPlateau with its improvement test replaced
  (Keras compares an absolute delta).
- ``LinearWarmup``: from ``start`` to ``target`` linearly over ``epochs``
  epochs, updated every step (the paper's fractional epoch).
"""

import keras


def _set_lr(model, value):
    model.optimizer.learning_rate.assign(float(value))


class PlateauHalving(keras.callbacks.ReduceLROnPlateau):
    """Keras's ReduceLROnPlateau with the paper's improvement test (PyTorch's
    relative "rel" threshold instead of Keras's absolute min_delta), idle
    during the warm-up epochs, and with its state saved for resume."""

    def __init__(self, monitor="loss", factor=0.5, patience=10, threshold=1e-4, min_lr=0.0, start_epoch=0):
        super().__init__(monitor=monitor, factor=factor, patience=patience, mode="min", min_delta=0.0,
                         cooldown=0, min_lr=min_lr)
        self.threshold, self.start_epoch = threshold, start_epoch

    def _is_improvement(self, current, best):
        return best is None or current < best * (1.0 - self.threshold)

    def on_train_begin(self, logs=None):
        pass  # the trainer restores the state of a resumed run; Keras would reset it here

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_epoch:
            super().on_epoch_end(epoch, dict(logs or {}))  # a copy: Keras writes the rate into its logs

    def get_state(self):
        # state.json is strict JSON: "no loss seen yet" is null.
        return {"best": None if self.best is None else float(self.best), "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def set_state(self, state):
        best = state["best"]
        self.best = None if best is None or best == float("inf") else best  # inf: a run saved before this class
        self.wait = state["wait"]
        self.cooldown_counter = state.get("cooldown_counter", 0)


class LinearWarmup(keras.callbacks.Callback):
    def __init__(self, start, target, epochs, steps_per_epoch):
        super().__init__()
        self.start, self.target, self.epochs, self.steps_per_epoch = start, target, epochs, max(1, steps_per_epoch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        progress = (self.epoch + batch / self.steps_per_epoch) / self.epochs
        if progress <= 1.0:
            _set_lr(self.model, self.start + (self.target - self.start) * progress)
        elif self.epoch == self.epochs and batch == 0:
            _set_lr(self.model, self.target)
