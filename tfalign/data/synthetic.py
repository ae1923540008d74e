"""Synthetic features and synthetic alignment structures (docs/task.md).

Every matched text gets a latent meaning, a weighted mix of a few concepts from
a vocabulary shared by all videos; both modalities are derived from it
through *different* fixed random non-linear maps, noise levels, scales and
offsets. Clip features are non-negative and sparse (like CNN features), text
features dense and anisotropic (like BERT's). Neighbouring texts have
concepts so that they are confusable, and unmatched clips come from unrelated
latents. ``difficulty`` in [0, 1] raises clip noise, text noise and neighbour
correlation together: on yms-synthetic (rp features) the DTW baseline's test
clip accuracy falls from about 0.9 at 0.2 to about 0.3 at 1.0.
"""

from __future__ import annotations

import zlib

import numpy as np

from tfalign.data.episode import Episode
from tfalign.errors import UserError

LATENT_DIM = 64
NUM_CONCEPTS = 48
# Keeps row norms near 3 (clips) and 4 (texts) at full width, so that the
# unscaled random projection (std = row norm) does not saturate the LSTMs.
FEATURE_SCALE = 0.1
CONCEPTS_PER_TEXT = 3


def _rng(*keys) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in keys])


def concept_mixtures(concepts: np.ndarray, num_texts: int, neighbour_correlation: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Meanings of consecutive texts: each combines CONCEPTS_PER_TEXT rows of
    ``concepts`` (a vocabulary shared by all videos: people, places, actions
    recur) and keeps each of its predecessor's concepts with probability
    ``neighbour_correlation``, so neighbours are confusable."""
    chosen = np.empty((num_texts, CONCEPTS_PER_TEXT), np.int64)
    for i in range(num_texts):
        fresh = rng.choice(len(concepts), CONCEPTS_PER_TEXT, replace=False)
        keep = (rng.random(CONCEPTS_PER_TEXT) < neighbour_correlation) if i else np.zeros(CONCEPTS_PER_TEXT, bool)
        chosen[i] = np.where(keep, chosen[i - 1] if i else fresh, fresh)
    weights = rng.uniform(0.5, 1.5, size=chosen.shape)[..., None]
    latents = (concepts[chosen] * weights).sum(axis=1)
    return latents + 0.3 * rng.normal(size=latents.shape)


class FeatureModel:
    """Fixed random maps from latent meanings to clip and text features."""

    def __init__(self, clip_dim: int = 2048, text_dim: int = 768, difficulty: float = 0.5, seed: int = 0):
        if not 0.0 <= difficulty <= 1.0:
            raise UserError(f"difficulty must be in [0, 1], got {difficulty}")
        self.clip_dim, self.text_dim = clip_dim, text_dim
        self.difficulty, self.seed = difficulty, seed
        rng = _rng("feature-model", seed, clip_dim, text_dim)
        self._concepts = rng.normal(size=(NUM_CONCEPTS, LATENT_DIM))
        hidden = 256
        # Video branch: a two-layer ReLU map, then a threshold for sparsity.
        self._v1 = rng.normal(0, 1 / np.sqrt(LATENT_DIM), (LATENT_DIM, hidden))
        self._v2 = rng.normal(0, 1 / np.sqrt(hidden), (hidden, clip_dim))
        self._v_scale = rng.gamma(2.0, 0.5, clip_dim)
        # Text branch: a tanh map, then an anisotropic linear map plus offset.
        self._t1 = rng.normal(0, 1.5 / np.sqrt(LATENT_DIM), (LATENT_DIM, hidden))
        self._t2 = rng.normal(0, 1 / np.sqrt(hidden), (hidden, text_dim))
        self._t_scale = np.exp(rng.normal(0, 0.8, text_dim))
        self._t_offset = rng.normal(0, 0.5, text_dim)
        self.neighbour_correlation = 0.3 + 0.6 * difficulty
        self.clip_noise = 0.25 + 4.0 * difficulty
        self.text_noise = 0.05 + 1.0 * difficulty

    def text_latents(self, num_texts: int, rng: np.random.Generator) -> np.ndarray:
        """Latent meanings of ``num_texts`` consecutive texts (``concept_mixtures``)."""
        return concept_mixtures(self._concepts, num_texts, self.neighbour_correlation, rng)

    def clip_features(self, latents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = latents + self.clip_noise * rng.normal(size=latents.shape)
        hidden = np.maximum(noisy @ self._v1, 0.0)
        out = (hidden @ self._v2) * self._v_scale
        return (FEATURE_SCALE * np.maximum(out - 0.5 * out.std(axis=-1, keepdims=True), 0.0)).astype(np.float32)

    def text_features(self, latents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        hidden = np.tanh(latents @ self._t1)
        out = (hidden @ self._t2) * self._t_scale + self._t_offset
        out += self.text_noise * rng.normal(size=out.shape) * self._t_scale
        return (FEATURE_SCALE * out).astype(np.float32)

    def episode(self, skeleton: dict) -> Episode:
        """Features for one alignment structure; deterministic in (seed, video_id)."""
        rng = _rng("episode", self.seed, skeleton["video_id"])
        clip_to_text = np.asarray(skeleton["clip_to_text"], np.int64)
        num_texts = len(skeleton["text_spans"])
        text_latents = self.text_latents(num_texts, rng)
        clip_latents = np.where(
            (clip_to_text >= 0)[:, None],
            text_latents[np.maximum(clip_to_text, 0)],
            rng.normal(size=(len(clip_to_text), LATENT_DIM)),
        )
        return Episode(
            video_id=skeleton["video_id"],
            clip_features=self.clip_features(clip_latents, rng),
            text_features=self.text_features(text_latents, rng),
            clip_times=skeleton["clip_times"],
            text_spans=skeleton["text_spans"],
            clip_to_text=clip_to_text,
            unmatched_spans=skeleton["unmatched_spans"],
        )


def generate_skeletons(num_videos: int, seed: int = 0, one_to_one: bool = False, mean_texts: float = 64.0,
                       split: str = "train") -> list[dict]:
    """Alignment structures with YMS-like length statistics.

    YMS averages about 64 phrases and 180 clips a video, 1.4 s a clip, with
    unmatched clips in short runs. ``one_to_one`` gives the LSMDC-like shape:
    one clip per text, nothing unmatched.
    """
    skeletons = []
    for index in range(num_videos):
        rng = _rng("skeleton", seed, split, index, one_to_one)
        num_texts = int(np.clip(rng.normal(mean_texts, mean_texts / 3), 4, 3 * mean_texts))
        clip_to_text = []
        for text in range(num_texts):
            if not one_to_one and rng.random() < 0.2:
                clip_to_text += [-1] * int(rng.integers(1, 4))
            clip_to_text += [text] * (1 if one_to_one else int(rng.geometric(0.45)))
        durations = rng.lognormal(np.log(1.2), 0.5, len(clip_to_text))
        ends = np.cumsum(durations)
        clip_times = np.stack([ends - durations, ends], axis=1)
        c2t = np.asarray(clip_to_text)
        text_spans = [[clip_times[c2t == t, 0].min(), clip_times[c2t == t, 1].max()] for t in range(num_texts)]
        unmatched = clip_times[c2t == -1]
        skeletons.append({
            "video_id": f"{'lsmdc' if one_to_one else 'synth'}-{split}-{index:05d}",
            "split": split,
            "clip_times": clip_times.tolist(),
            "text_spans": text_spans,
            "clip_to_text": clip_to_text,
            "unmatched_spans": unmatched.tolist(),
        })
    return skeletons
