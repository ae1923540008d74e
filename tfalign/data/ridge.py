"""The closed-form joint embedding of the classical baselines: a ridge map from
clip features to text features (docs/task.md, "Baselines").

Clip and text features live in different spaces; a linear map from the
(standardized) clip features of the matched clips to the features of their
texts, fitted by ridge regression, puts them in one, where the cosine
similarity of a clip and a text says how well they match. The MD and DTW
baselines align on it; tfalign's recipe can give it to the decoder's
classifier as a fixed similarity channel (``model.ridge_similarity``), so that
the learned model starts from what DTW sees.

When the two sides already share a space (features from a vision-language
encoder such as CLIP or SigLIP, ``shares_space``), fitting the map from zero
throws that space away: with few labelled videos a map fitted from nothing is
worse than no map. There the map shrinks toward the identity instead of
toward zero (``prior``, the strength of the pull; the limit is the identity
itself, ``RidgeMap.identity``: cosine similarity of the centred features).
"""

from __future__ import annotations

import dataclasses

import numpy as np

RIDGE = 10.0
# The identity's cosine must rank a matched clip's own text above the video's other texts this
# often (0.5: chance) for two feature spaces of equal width to count as one space.
SHARED_SPACE_RANKING = 0.55


@dataclasses.dataclass
class RidgeMap:
    """x -> ((x - clip_mean) / clip_std) @ weights, to be compared with t - text_mean.

    ``prior``: how strongly the fit was pulled toward the identity (0: toward zero,
    the classical baselines' map; ``inf``: the identity itself).
    """

    clip_mean: np.ndarray
    clip_std: np.ndarray
    text_mean: np.ndarray
    weights: np.ndarray
    prior: float = 0.0

    @classmethod
    def fit(cls, episodes, ridge: float = RIDGE, prior: float = 0.0) -> RidgeMap:
        """Fitted on the matched clips of ``episodes`` and their texts.

        Args:
            episodes: labelled episodes (or pseudo-labelled ones).
            ridge: the pull of the map toward zero.
            prior: the pull toward the identity, per matched clip (so that its weight
                against the data does not change with the number of videos); needs
                equal widths. ``inf``: the identity, whatever the episodes say.

        Returns:
            The map minimizing |X W - Y|^2 + ridge |W|^2 + prior * n |W - I|^2 over
            the n matched clips (X standardized clips, Y centred texts, I the identity
            written in X's units).
        """
        clips = np.concatenate([e.clip_features[e.clip_to_text >= 0] for e in episodes]).astype(np.float64)
        texts = np.concatenate([e.text_features[e.clip_to_text[e.clip_to_text >= 0]]
                                for e in episodes]).astype(np.float64)
        clip_mean, clip_std = clips.mean(0), clips.std(0) + 1e-6
        text_mean = texts.mean(0)
        if prior and clips.shape[1] != texts.shape[1]:
            raise ValueError(f"RidgeMap.fit: a prior toward the identity needs equal widths, got clip/text "
                             f"{clips.shape[1]}/{texts.shape[1]}")
        identity = np.diag(clip_std)  # ((x - m) / s) @ diag(s) = x - m
        if prior == np.inf:
            return cls(clip_mean, clip_std, text_mean, identity, prior)
        x = (clips - clip_mean) / clip_std
        pull = prior * len(x)
        gram = x.T @ x + (ridge + pull) * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, x.T @ (texts - text_mean) + (pull * identity if prior else 0.0))
        return cls(clip_mean, clip_std, text_mean, weights, prior)

    @classmethod
    def identity(cls, episodes=()) -> RidgeMap:
        """The zero-shot map of features in one space: cosine similarity of the
        clips and texts, each side centred on its mean over ``episodes`` (labels are
        not read; none: not centred). Centring removes the modality gap, the offset
        that sets every clip apart from every text in such encoders' spaces."""
        episodes = list(episodes)
        if not episodes:
            raise ValueError("RidgeMap.identity: needs episodes (their widths, and the means to centre on)")
        clips = np.concatenate([e.clip_features for e in episodes]).astype(np.float64)
        texts = np.concatenate([e.text_features for e in episodes]).astype(np.float64)
        if clips.shape[1] != texts.shape[1]:
            raise ValueError(f"RidgeMap.identity: clip and text features of different widths "
                             f"({clips.shape[1]}/{texts.shape[1]}) share no space")
        width = clips.shape[1]
        return cls(clips.mean(0), np.ones(width), texts.mean(0), np.eye(width), np.inf)

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


def shared_space_ranking(episodes) -> float:
    """How often the plain cosine of a matched clip and its own text beats the
    cosine with another text of the same video (0.5: chance), over ``episodes``
    (labelled); nan for features of different widths or no pair to rank."""
    wins, pairs = 0.0, 0
    for e in episodes:
        if e.widths[0] != e.widths[1] or e.num_texts < 2:
            continue
        clips = e.clip_features / (np.linalg.norm(e.clip_features, axis=1, keepdims=True) + 1e-9)
        texts = e.text_features / (np.linalg.norm(e.text_features, axis=1, keepdims=True) + 1e-9)
        matched = e.clip_to_text >= 0
        similarity = clips[matched] @ texts.T
        own = similarity[np.arange(len(similarity)), e.clip_to_text[matched]]
        wins += float(((similarity < own[:, None]).sum() + 0.5 * ((similarity == own[:, None]).sum() - len(own))))
        pairs += len(own) * (e.num_texts - 1)
    return wins / pairs if pairs else float("nan")


def shares_space(episodes) -> bool:
    """Whether clips and texts of ``episodes`` (labelled) share one space: equal widths,
    and their plain cosine ranks a clip's own text above the others at least
    ``SHARED_SPACE_RANKING`` of the time. Random projections of equal widths (the
    default ``rp`` features) rank at chance and get no prior."""
    return shared_space_ranking(episodes) >= SHARED_SPACE_RANKING
