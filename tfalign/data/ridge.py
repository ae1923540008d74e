"""The closed-form joint embedding of the classical baselines: a ridge map from
clip features to text features (docs/task.md, "Baselines").

Clip and text features live in different spaces; a linear map from the
(standardized) clip features of the matched clips to the features of their
texts, fitted by ridge regression, puts them in one, where the cosine
similarity of a clip and a text says how well they match. The MD and DTW
baselines align on it; tfalign's recipe can give it to the decoder's
classifier as a fixed similarity channel (``model.ridge_similarity``), so that
the learned model starts from what DTW sees.
"""

from __future__ import annotations

import dataclasses

import numpy as np

RIDGE = 10.0


@dataclasses.dataclass
class RidgeMap:
    """x -> ((x - clip_mean) / clip_std) @ weights, to be compared with t - text_mean."""

    clip_mean: np.ndarray
    clip_std: np.ndarray
    text_mean: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, episodes, ridge: float = RIDGE) -> RidgeMap:
        """Fitted on the matched clips of ``episodes`` and their texts."""
        clips = np.concatenate([e.clip_features[e.clip_to_text >= 0] for e in episodes]).astype(np.float64)
        texts = np.concatenate([e.text_features[e.clip_to_text[e.clip_to_text >= 0]]
                                for e in episodes]).astype(np.float64)
        clip_mean, clip_std = clips.mean(0), clips.std(0) + 1e-6
        text_mean = texts.mean(0)
        x = (clips - clip_mean) / clip_std
        gram = x.T @ x + ridge * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, x.T @ (texts - text_mean))
        return cls(clip_mean, clip_std, text_mean, weights)

    def similarity(self, episode) -> np.ndarray:
        """Cosine similarity [T_v, T_s] in the centred text space."""
        clips = ((episode.clip_features - self.clip_mean) / self.clip_std) @ self.weights
        texts = episode.text_features - self.text_mean
        clips /= np.linalg.norm(clips, axis=1, keepdims=True) + 1e-9
        texts = texts / (np.linalg.norm(texts, axis=1, keepdims=True) + 1e-9)
        return clips @ texts.T

    def as_affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip kernel, clip bias, text bias) of the same map: x @ K + b and t + c."""
        kernel = self.weights / self.clip_std[:, None]
        return kernel, -(self.clip_mean / self.clip_std) @ self.weights, -self.text_mean
