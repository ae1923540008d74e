"""Learning-rate schedules, as Keras callbacks the custom loop drives.

- ``PlateauHalving``: halve the rate when the *training* loss has not improved
  by a relative 1e-4 for 10 epochs (PyTorch ReduceLROnPlateau's "rel" mode,
  the paper's; Keras's ReduceLROnPlateau compares an absolute delta).
- ``LinearWarmup``: from ``start`` to ``target`` linearly over ``epochs``
  epochs, updated every step (the paper's fractional epoch).
"""

import keras


def _set_lr(model, value):
    model.optimizer.learning_rate.assign(float(value))


class PlateauHalving(keras.callbacks.Callback):
    def __init__(self, monitor="loss", factor=0.5, patience=10, threshold=1e-4, min_lr=0.0, start_epoch=0):
        super().__init__()
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.threshold, self.min_lr, self.start_epoch = threshold, min_lr, start_epoch
        self.best, self.wait = float("inf"), 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_epoch:
            return
        if current < self.best * (1.0 - self.threshold):
            self.best, self.wait = current, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = float(self.model.optimizer.learning_rate.numpy())
            _set_lr(self.model, max(old * self.factor, self.min_lr))
            self.wait = 0

    def get_state(self):
        # state.json is strict JSON: no loss seen yet (inf) is stored as null.
        return {"best": self.best if self.best != float("inf") else None, "wait": self.wait}

    def set_state(self, state):
        best = state["best"]
        self.best = float("inf") if best is None or best == float("inf") else best
        self.wait = state["wait"]


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
