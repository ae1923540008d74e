"""Every weight reachable by TensorFlow's checkpoints, by name.

Keras 3 tracks the lists and dicts of layers a layer holds (``self.cells =
[...]``), but hands them to TensorFlow's object graph only for a SavedModel
export, not for ``tf.train.Checkpoint``: a checkpoint of such a layer misses
the weights inside them. ``CheckpointedCollections`` gives TensorFlow those
collections for checkpoints too, wrapped once so that the object graph sees
the same objects on every save.
"""

import contextlib

from tensorflow.python.trackable import data_structures


class CheckpointedCollections:
    """Mix into a Keras layer (before ``keras.layers.Layer``) whose sublayers sit in lists, tuples or dicts."""

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type != "checkpoint" or self.__dict__.get("_collections_untracked"):
            return children
        wrapped = self.__dict__.setdefault("_checkpointed_collections", {})
        for name in self._tracked:
            if name not in wrapped:
                value = getattr(self, name)
                plain = dict(value) if isinstance(value, dict) else list(value)
                wrapped[name] = data_structures.wrap_or_unwrap(plain)
            children[name] = wrapped[name]
        return children


@contextlib.contextmanager
def collections_untracked(layer):
    """Inside the block, ``layer`` and its sublayers show TensorFlow's checkpoints
    the object graph tfalign's had before this module: for reading their files."""
    layers = list(layer._flatten_layers(include_self=True))
    for sublayer in layers:
        sublayer.__dict__["_collections_untracked"] = True
    try:
        yield
    finally:
        for sublayer in layers:
            sublayer.__dict__.pop("_collections_untracked", None)
