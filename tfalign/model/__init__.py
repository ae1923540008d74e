"""The NeuMATCH network: stacks, decoder, greedy and exact alignment, built from its config."""

from tfalign.model.neumatch import NORMALIZATIONS, NeuMatchAligner
from tfalign.model.builder import build_model, count_trainable

__all__ = ["NORMALIZATIONS", "NeuMatchAligner", "build_model", "count_trainable"]
