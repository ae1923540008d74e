"""The aligner built from its config (``configs.ModelConfig``): a backbone and the task for its way of aligning."""

from __future__ import annotations

import keras
import numpy as np

from tfalign.configs import ModelConfig
from tfalign.model.neumatch import aligner_from_fields


# trainer.precision -> the Keras dtype policy of every layer of the model.
DTYPE_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def build_model(config: ModelConfig, seed: int | None = None, precision: str = "fp32"):
    """A built aligner: ``NeuMatchAligner`` (the paper's decoder, with history) or
    ``LatticeAligner`` (without history; with ``dtw_start`` the lattice CRF).

    Args:
        config: the experiment's ``ModelConfig``.
        seed: seeds the initial weights (Keras's global seed).
        precision: "fp32", "bf16" or "fp16": the dtype policy (float32 weights, and with
            bf16 or fp16 the math in that type, ``keras.mixed_precision``).

    Returns:
        The built model.
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model takes a ModelConfig (experiment.model), got {type(config).__name__}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    clip_dim, text_dim = config.input_widths
    model = aligner_from_fields(
        encoder=config.encoder, normalization=config.normalization, dropout=config.dropout, clip_dim=clip_dim,
        text_dim=text_dim, projection_seed=config.projection_seed, encoder_dropout=config.encoder_dropout,
        history=config.history, position=config.position, similarity_units=config.similarity_units,
        stack_dropout=config.stack_dropout, similarity_source=config.similarity_source,
        stack_features=config.stack_features, hidden_units=config.hidden_units,
        ridge_similarity=config.ridge_similarity, dtw_start=config.dtw_start, dtype=DTYPE_POLICIES[precision])
    model.build()
    return model


def count_trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))
