"""The aligner's layers as tfalign laid them out before the backbone was its own layer.

Until then one Keras model held every layer as its own attribute (``encoder``,
``video_cells``, ..., ``hidden``); weights files and TF checkpoints name the
weights by those attributes. ``legacy_layout(model)`` is a view of a model's
layers under the old names, in the old order, so that files an older tfalign
wrote load into today's model (training/checkpoints.py, serving/preset.py).
"""

import keras

from tfalign.layers.tracking import CheckpointedCollections

# The old model's attributes, in the order it made them (the order of its weights).
BACKBONE_LAYERS = ("encoder", "clip_projection", "text_projection", "video_cells", "text_cells")
LATER_BACKBONE_LAYERS = ("joint_embedding", "ridge")
NORMALIZATION_LAYERS = ("video_norm", "text_norm")


class _LegacyLayout(CheckpointedCollections, keras.Model):
    """A model's layers under the attribute names of tfalign's single-model layout."""

    def __init__(self, model):
        super().__init__(name="legacy_layout")
        backbone = model.backbone
        for name in BACKBONE_LAYERS:
            setattr(self, name, getattr(backbone, name))
        self.action_cells = model.action_cells if model.decoder_history else []
        self.matched_cells = model.matched_cells if model.decoder_history else []
        for name in LATER_BACKBONE_LAYERS:
            setattr(self, name, getattr(backbone, name))
        self.potentials = model.potentials if model.dtw_start else None
        self.stack_drop = backbone.stack_drop
        for name in NORMALIZATION_LAYERS:
            setattr(self, name, getattr(backbone, name))
        self.hidden, self.logits_layer, self.drop = model.hidden, model.logits_layer, model.drop
        self.built = True


def legacy_layout(model) -> keras.Model:
    """A view of a built aligner's layers as an older tfalign laid them out: its
    ``load_weights`` reads the weights files of that tfalign into ``model``, and
    ``tf.train.Checkpoint(model=legacy_layout(model))`` its TF checkpoints."""
    return _LegacyLayout(model)


def is_legacy_checkpoint(path) -> bool:
    """Whether a TF checkpoint holds a model of the old layout: its object graph (not its
    variables' names: a variable is named by its shortest path, often through the
    optimizer) has a ``model`` whose layers are its own attributes, with no ``backbone``."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(str(path)).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    model = next((child.node_id for child in graph.nodes[0].children if child.local_name == "model"), None)
    if model is None:
        return False
    names = {child.local_name for child in graph.nodes[model].children}
    return "encoder" in names and "backbone" not in names
