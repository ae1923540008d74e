"""NeuMATCH (Dogan et al., CVPR 2018) as the paper's code builds it (docs/network.md): ``NeuMatchAligner``.

The paper's figure, top to bottom: the feature encoders and the video and text
stacks (the backbone, model/backbone.py), and the decoder, whose classifier
reads the stack tops at two cursors with the action and matched stacks (the
decoder's history, model/decoding.py) and chooses POP_CLIP, POP_TEXT or MATCH.
Trained by teacher forcing, decoded greedily: with history every path's scores
depend on the path so far, so there is no lattice to decode exactly.
"""

import keras
import tensorflow as tf

from tfalign.data.oracle import NUM_ACTIONS
from tfalign.layers import LayerNormLSTMCell, StackLSTMCell
from tfalign.model.aligner_task import AlignerTask
from tfalign.model.backbone import NeuMatchBackbone
from tfalign.model.decoding import greedy, teacher_forced_logits
from tfalign.model.lattice_aligner import LatticeAligner


@keras.saving.register_keras_serializable("tfalign")
class NeuMatchAligner(AlignerTask):
    """The paper's aligner: a backbone and the decoder with history (the action and matched stacks).

    ``call`` gives the teacher-forced logits [B, L, 3] of the inputs' ``actions``;
    ``align`` decodes greedily, compiled once.

    Args:
        backbone: a ``NeuMatchBackbone`` (its ``normalization="4ln"`` puts layer-norm
            cells in the history stacks too).
        action_units: the width of the action stack.
        matched_units: the width of the matched stack.
        position, stack_features, hidden_units, dropout, ridge_channel: the
            classifier's (``AlignerTask``).

    Example:
    >>> from tfalign.model.backbone import NeuMatchBackbone
    >>> aligner = NeuMatchAligner(NeuMatchBackbone(units=8, clip_dim=5, text_dim=3), hidden_units=4)
    >>> aligner.build()
    >>> aligner.decodings
    ('greedy',)
    """

    decoder_history = True

    def __init__(self, backbone=None, action_units=8, matched_units=20, position="paper", stack_features=True,
                 hidden_units=300, dropout=0.0, ridge_channel=False, **kwargs):
        super().__init__(backbone, position=position, stack_features=stack_features, hidden_units=hidden_units,
                         dropout=dropout, ridge_channel=ridge_channel, **kwargs)
        self.action_units, self.matched_units = int(action_units), int(matched_units)
        policy = self.dtype_policy
        cell = LayerNormLSTMCell if backbone.normalization == "4ln" else StackLSTMCell
        self.action_cells = [cell(action_units, name=f"action_stack_{i}", dtype=policy) for i in (1, 2)]
        self.matched_cells = [cell(matched_units, name=f"matched_stack_{i}", dtype=policy) for i in (1, 2)]
        self._classifier_layers()

    @property
    def history_width(self) -> int:
        return self.action_units + self.matched_units

    def build_decoder(self):
        for cells, dim in ((self.action_cells, NUM_ACTIONS), (self.matched_cells, 2 * self.units)):
            for cell in cells:
                cell.build((None, dim))
                dim = cell.units

    def training_outputs(self, inputs, training=False):
        """The teacher-forced ``logits`` [B, L, 3] of ``inputs["actions"]``, and ``similarities``
        when the joint embedding is on."""
        stacks = self.encode_stacks(inputs, training=training)
        outputs = {"logits": teacher_forced_logits(self, stacks, inputs["actions"], training=training)}
        if self.similarity_units:
            outputs["similarities"] = self.learned_similarities(stacks)
        outputs["logits"] = tf.cast(outputs["logits"], tf.float32)
        return outputs

    def greedy_path(self, inputs, compiled=True, confidence=False):
        """The greedy alignment of reversed inputs: {"actions", "num_actions", "probabilities"}
        (no ``confidence``: the probabilities depend on the actions taken).
        ``compiled``: the stacks' loops XLA-compiled (layers/recurrence.py)."""
        return greedy(self, self.encode_stacks(inputs, training=False, compiled=compiled))

    def get_config(self):
        return {**super().get_config(), "action_units": self.action_units, "matched_units": self.matched_units}

    @classmethod
    def from_config(cls, config):
        if "backbone" not in config:  # a model saved before the backbone was its own layer: one flat config
            return aligner_from_fields(**config)
        return super().from_config(config)


def aligner_from_fields(encoder="rp", normalization="none", units=300, action_units=8, matched_units=20,
                        hidden_units=300, dropout=0.0, encoder_dropout=0.0, clip_dim=None, text_dim=None,
                        projection_seed=0, history=True, position="paper", similarity_units=0, stack_dropout=0.0,
                        similarity_source="encoder", stack_features=True, ridge_similarity=False, dtw_start=False,
                        name=None, dtype=None, trainable=True):
    """The aligner of one flat set of fields: how ``ModelConfig`` builds, and how a
    ``.keras`` file or preset of an older tfalign (one ``NeuMatchAligner`` config) loads.
    The backbone takes the encoders' and stacks' fields, the task the decoder's."""
    if dtw_start and history:
        raise ValueError("dtw_start needs a decoder without history (history=False)")
    backbone = NeuMatchBackbone(
        encoder=encoder, normalization=normalization, units=units, encoder_dropout=encoder_dropout,
        stack_dropout=stack_dropout, clip_dim=clip_dim, text_dim=text_dim, projection_seed=projection_seed,
        similarity_units=similarity_units, similarity_source=similarity_source,
        ridge_similarity=ridge_similarity or dtw_start, name="backbone", dtype=dtype)
    decoder = dict(position=position, stack_features=stack_features, hidden_units=hidden_units,
                   ridge_channel=ridge_similarity, name=name, dtype=dtype, trainable=trainable)
    if history:
        return NeuMatchAligner(backbone, action_units=action_units, matched_units=matched_units, dropout=dropout,
                               **decoder)
    return LatticeAligner(backbone, dtw_start=dtw_start, dropout=dropout, **decoder)
