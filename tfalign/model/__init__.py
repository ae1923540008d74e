"""The NeuMATCH network: stacks, decoder, and the greedy in-graph alignment."""

from tfalign.model.aligner import NORMALIZATIONS, NeuMatchAligner

__all__ = ["NORMALIZATIONS", "NeuMatchAligner"]
