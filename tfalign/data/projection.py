"""Random projection with a fixed sparse Achlioptas matrix (docs/network.md).

Entries are sqrt(3) * {-1, 0, +1} with probabilities 1/6, 2/3, 1/6, and, as
in the paper's code, there is no further 1/sqrt(k) scaling. The matrix is
fixed by (input width, output width, seed), so storing those three numbers
with the projected data is enough to reproduce it.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def achlioptas_matrix(input_dim: int, output_dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, input_dim, output_dim])
    draw = rng.integers(0, 6, size=(input_dim, output_dim))
    matrix = np.where(draw == 0, -1.0, np.where(draw == 1, 1.0, 0.0))
    return (matrix * np.sqrt(3.0)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class RandomProjection:
    """A reusable transform x -> x @ R, R the seeded Achlioptas matrix."""

    input_dim: int
    output_dim: int = 300
    seed: int = 0

    @property
    def matrix(self) -> np.ndarray:
        return achlioptas_matrix(self.input_dim, self.output_dim, self.seed)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, np.float32)
        if features.shape[-1] != self.input_dim:
            raise ValueError(
                f"random projection expects features of width {self.input_dim}, got shape {list(features.shape)}"
            )
        return features @ self.matrix

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "RandomProjection":
        return cls(**config)


def project_episodes(episodes, clip_projection: RandomProjection, text_projection: RandomProjection):
    """Applies the two projections to every episode (features only)."""
    clip_matrix, text_matrix = clip_projection.matrix, text_projection.matrix
    return [
        e.replace(clip_features=e.clip_features @ clip_matrix, text_features=e.text_features @ text_matrix)
        for e in episodes
    ]
