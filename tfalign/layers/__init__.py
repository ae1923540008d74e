"""Keras 3 layers of the network, one concept a module."""

from tfalign.layers.dtw_potentials import DTWPotentials
from tfalign.layers.encoders import FeatureEncoder, FixedProjection
from tfalign.layers.initializers import bias_initializer, dense, dense_kernel_initializer
from tfalign.layers.joint_embedding import JointEmbedding
from tfalign.layers.layer_norm_lstm_cell import LayerNormLSTMCell
from tfalign.layers.lstm_cell import StackLSTMCell
from tfalign.layers.recurrence import run_stack
from tfalign.layers.ridge_similarity import RidgeSimilarity
from tfalign.layers.sequence_batch_norm import SequenceBatchNormalization

__all__ = [
    "DTWPotentials", "FeatureEncoder", "FixedProjection", "JointEmbedding", "LayerNormLSTMCell", "RidgeSimilarity",
    "SequenceBatchNormalization", "StackLSTMCell", "bias_initializer", "dense", "dense_kernel_initializer", "run_stack",
]
