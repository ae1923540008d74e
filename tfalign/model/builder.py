"""The aligner built from its config (``configs.ModelConfig``)."""

from __future__ import annotations

import keras
import numpy as np

from tfalign.configs import ModelConfig
from tfalign.model.aligner import NeuMatchAligner


def build_model(config: ModelConfig, seed: int | None = None) -> NeuMatchAligner:
    """A built NeuMatchAligner; ``seed`` seeds its initial weights (Keras's global seed)."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model takes a ModelConfig (experiment.model), got {type(config).__name__}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = NeuMatchAligner(encoder=config.encoder, normalization=config.normalization, dropout=config.dropout,
                            encoder_dropout=config.encoder_dropout, history=config.decoder_history,
                            position=config.position_features, similarity_units=config.similarity_units,
                            stack_dropout=config.stack_dropout, similarity_source=config.similarity_source,
                            stack_features=config.stack_features, hidden_units=config.decoder_units)
    model.build()
    return model


def count_trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))
