"""Synthetic features in one space for clips and texts, as a vision-language
encoder (CLIP, SigLIP) gives them: ``features="joint"`` (docs/task.md).

A text's meaning mixes concepts of a vocabulary shared by all videos, as in
data/synthetic.py, but here both modalities are that meaning in one space,
so the cosine similarity of a clip and its text means something before any
training. Imperfectly, as real encoders are:
- a **modality gap**: each modality is offset by a fixed vector of its own
  (clips sit in one cone, texts in another);
- a **distortion of the visual side**: clips go through a fixed linear map, the
  identity plus a random map (what the image tower sees is not what the text
  tower reads), and carry strong components no text speaks of (camera,
  light, framing: a fixed subspace of their own, shared within a scene);
- **scenes**: runs of consecutive texts share one scene, whose look enters
  every clip of the run, so neighbours' clips look alike; unmatched clips show
  the scene around them with unrelated content;
- **per-video shifts**: each video adds offsets of its own to both sides
  (lighting, a speaker's style);
- noise on both sides; features are unit vectors, as encoders' are.
``difficulty`` in [0, 1] raises the distortion, the noise, the scene's share
and the neighbours' correlation together.
"""

from __future__ import annotations

import numpy as np

from tfalign.data.episode import Episode
from tfalign.data.synthetic import _rng, concept_mixtures
from tfalign.errors import UserError

JOINT_WIDTH = 512  # CLIP ViT-B's embedding width
# An open vocabulary: few videos do not show every direction of the space.
JOINT_CONCEPTS = 2000
NUISANCE_DIMS = 32
# (at difficulty 0, added at difficulty 1)
DISTORTION = (1.0, 2.0)
NUISANCE = (1.0, 2.0)


class JointSpaceFeatureModel:
    """Clip and text features in one ``width``-d space from the same latent meanings.

    Example:
    >>> model = JointSpaceFeatureModel(width=64, difficulty=0.5, seed=0)
    >>> episode = model.episode({"video_id": "v", "clip_to_text": [0, 0, -1, 1],
    ...     "clip_times": [[0, 1], [1, 2], [2, 3], [3, 4]], "text_spans": [[0, 2], [3, 4]],
    ...     "unmatched_spans": [[2, 3]]})
    >>> episode.clip_features.shape, episode.text_features.shape
    ((4, 64), (2, 64))
    """

    def __init__(self, width: int = JOINT_WIDTH, difficulty: float = 0.5, seed: int = 0):
        if not 0.0 <= difficulty <= 1.0:
            raise UserError(f"difficulty must be in [0, 1], got {difficulty}")
        self.width, self.difficulty, self.seed = width, difficulty, seed
        rng = _rng("joint-space-model", seed, width)
        self._concepts = rng.normal(size=(JOINT_CONCEPTS, width))
        self.distortion = DISTORTION[0] + DISTORTION[1] * difficulty
        self._visual_map = np.eye(width) + self.distortion * rng.normal(0, 1 / np.sqrt(width), (width, width))
        self._nuisance = rng.normal(size=(NUISANCE_DIMS, width))
        self.nuisance = NUISANCE[0] + NUISANCE[1] * difficulty
        # A meaning's components have a standard deviation of about 1.7 (three concepts).
        self._clip_gap, self._text_gap = 1.5 * rng.normal(size=(2, width))
        self.neighbour_correlation = 0.3 + 0.6 * difficulty
        self.scene_share = 0.2 + 0.4 * difficulty
        self.clip_noise = 1.0 + 6.0 * difficulty
        self.text_noise = 0.3 + 0.6 * difficulty
        self.video_shift = 0.3 + 0.6 * difficulty

    def episode(self, skeleton: dict) -> Episode:
        """Features for one alignment structure; deterministic in (seed, video_id)."""
        rng = _rng("joint-episode", self.seed, skeleton["video_id"])
        clip_to_text = np.asarray(skeleton["clip_to_text"], np.int64)
        num_texts, num_clips = len(skeleton["text_spans"]), len(clip_to_text)
        meanings = concept_mixtures(self._concepts, num_texts, self.neighbour_correlation, rng)
        scene_of_text = np.cumsum(rng.random(num_texts) < 0.5)  # runs of about two texts
        scenes = concept_mixtures(self._concepts, int(scene_of_text[-1]) + 1, 0.0, rng)[scene_of_text]
        # An unmatched clip shows the scene of the text before it with content of its own.
        before = np.maximum.accumulate(np.where(clip_to_text >= 0, clip_to_text, 0))
        content = np.where((clip_to_text >= 0)[:, None], meanings[np.maximum(clip_to_text, 0)],
                           concept_mixtures(self._concepts, num_clips, 0.0, rng))
        shift_clip, shift_text = self.video_shift * 1.7 * rng.normal(size=(2, self.width))
        seen = (1 - self.scene_share) * content + self.scene_share * scenes[before]
        seen = seen + self.clip_noise * rng.normal(size=seen.shape)
        look = rng.normal(size=(int(scene_of_text[-1]) + 1, NUISANCE_DIMS))[scene_of_text[before]]
        look = (look + rng.normal(size=(num_clips, NUISANCE_DIMS))) / np.sqrt(2) * self.nuisance
        clips = seen @ self._visual_map + look @ self._nuisance + self._clip_gap * 1.7 + shift_clip
        texts = meanings + self.text_noise * rng.normal(size=meanings.shape) + self._text_gap * 1.7 + shift_text
        return Episode(
            video_id=skeleton["video_id"],
            clip_features=_unit_rows(clips),
            text_features=_unit_rows(texts),
            clip_times=skeleton["clip_times"],
            text_spans=skeleton["text_spans"],
            clip_to_text=clip_to_text,
            unmatched_spans=skeleton["unmatched_spans"],
        )


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
