"""The joint embedding of clips and texts: tfalign's similarity features (docs/recipe.md).

A pair of linear heads per *source* maps clips and texts into one space, where
their cosine similarities [B, T_v, T_s] feed the decoder's classifier (a
window of them around the cursors) and a contrastive loss trains them. The
sources are three views of the elements:

- ``input``: the input features, standardized by sequence-wise batch
  normalization first (a ridge-like linear map: it cannot memorise);
- ``encoder``: the encoded elements;
- ``stacks``: the (normalized) video- and text-stack outputs.
"""

import keras
import tensorflow as tf

from tfalign.data.batching import to_natural
from tfalign.layers import initializers
from tfalign.layers.sequence_batch_norm import SequenceBatchNormalization
from tfalign.layers.tracking import CheckpointedCollections

SOURCES = ("input", "encoder", "stacks")


def cosine_similarities(clips, texts, clip_lengths, text_lengths):
    """[B, T_v, T_s] cosine similarities in natural order of reversed, padded embedded
    sequences [B, T_v, D] and [B, T_s, D]; 0 at padding."""
    def unit_rows(embedded, lengths):
        mask = tf.sequence_mask(lengths, tf.shape(embedded)[1], dtype=embedded.dtype)[:, :, None]
        return tf.math.l2_normalize(to_natural(embedded, lengths), axis=-1) * mask

    return tf.matmul(unit_rows(clips, clip_lengths), unit_rows(texts, text_lengths), transpose_b=True)


@keras.saving.register_keras_serializable("tfalign")
class JointEmbedding(CheckpointedCollections, keras.layers.Layer):
    """Linear clip and text heads into a ``units``-wide space, a pair per source.

    Args:
        units: the joint space's width.
        sources: the sources with heads, in the order their weights are made.

    Call with the ``clips`` [B, T_v, D_v] and ``texts`` [B, T_s, D_s] of one
    source, as the network holds them (reversed, left-aligned), their
    ``clip_lengths`` and ``text_lengths`` [B], and the ``source``; returns the
    cosine similarities [B, T_v, T_s] in natural order, 0 at padding. For the
    ``input`` source the features are standardized (SBN) first.
    """

    def __init__(self, units=128, sources=("encoder",), **kwargs):
        super().__init__(**kwargs)
        unknown = [s for s in sources if s not in SOURCES]
        if unknown or not sources:
            raise ValueError(f"sources: expected some of {list(SOURCES)}, got {list(sources)}")
        self.units, self.sources = int(units), tuple(sources)
        self.supports_masking = True  # the normalized stacks it reads carry Keras masks; the lengths say the same
        policy = self.dtype_policy
        self.heads = {source: (initializers.dense(self.units, name=f"{source}_clip_head", dtype=policy),
                               initializers.dense(self.units, name=f"{source}_text_head", dtype=policy))
                      for source in self.sources}
        self.input_norms = None
        if "input" in self.sources:
            self.input_norms = (SequenceBatchNormalization(name="clip_input_sbn", dtype=policy),
                                SequenceBatchNormalization(name="text_input_sbn", dtype=policy))

    def build(self, clips_shape, texts_shape=None, clip_lengths_shape=None, text_lengths_shape=None):
        """The network builds it with {source: (clip width, text width)} of what each source
        reads; built on a first call instead (Keras passes the arguments' shapes), every
        source reads that call's widths."""
        widths = clips_shape if isinstance(clips_shape, dict) else {
            source: (clips_shape[-1], texts_shape[-1]) for source in self.sources}
        for source in self.sources:
            for head, width in zip(self.heads[source], widths[source]):
                head.build((None, width))
        if self.input_norms:
            for norm, width in zip(self.input_norms, widths["input"]):
                norm.build((None, None, width))
        self.built = True

    def call(self, clips, texts, clip_lengths, text_lengths, source="encoder", training=False):
        if source == "input":
            clip_mask = tf.sequence_mask(clip_lengths, tf.shape(clips)[1])
            text_mask = tf.sequence_mask(text_lengths, tf.shape(texts)[1])
            clips = self.input_norms[0](clips, mask=clip_mask, training=training)
            texts = self.input_norms[1](texts, mask=text_mask, training=training)
        clip_head, text_head = self.heads[source]
        return cosine_similarities(clip_head(clips), text_head(texts), clip_lengths, text_lengths)

    def compute_output_shape(self, clips_shape, texts_shape, *args, **kwargs):
        return (clips_shape[0], clips_shape[1], texts_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "sources": list(self.sources)}
