"""A video and its narration as an aligner's inputs: clip times, clip and text features, texts.

The video is cut (``clips``), each clip's frames decoded and encoded
(``encoders.encode_clips``), the narration read (``narration``) and its texts
encoded, all with the encoders of a ``FeatureExtractors`` record (and its
random projection, when the training data were projected).
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from tfalign import console
from tfalign.data.projection import RandomProjection
from tfalign.errors import UserError
from tfalign.media.clips import ClipOptions, cut_video
from tfalign.media.extractors import EXTRACTORS_FILE, FeatureExtractors, encode_clips
from tfalign.media.narration import Cue, describe, read_narration
from tfalign.media.video import probe


@dataclasses.dataclass
class MediaInputs:
    """What ``media_inputs`` returns: [N, 2] clip times, [N, D_v] clip features,
    the narration's cues and their [M, D_t] features."""

    clip_times: np.ndarray
    clip_features: np.ndarray
    cues: list[Cue]
    text_features: np.ndarray

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.cues]


def project(features: np.ndarray, projection: dict | None, seed_key: str) -> np.ndarray:
    """The preparation's random projection, applied again (None: the features as they are)."""
    if not projection:
        return features
    return RandomProjection(features.shape[1], int(projection["output_dim"]), int(projection[seed_key]))(features)


def media_inputs(video, narration, extractors: FeatureExtractors | None, clip_options: ClipOptions | None = None,
                 split: str = "sentences", show_progress: bool = True,
                 narration_encoding: str | None = None) -> MediaInputs:
    """Cuts, decodes and encodes a video and its narration.

    Args:
        video: the video file.
        narration: a ``.srt`` / ``.vtt`` file or a plain-text script.
        extractors: the encoders (``FeatureExtractors``); None is an error that
            says how to name them.
        clip_options: how to cut the video (``ClipOptions``; default: shots).
        split: how a plain-text script is split: "sentences" or "lines".
        show_progress: print the frames decoded and clips encoded.
        narration_encoding: the narration's text encoding (default: detected).

    Returns:
        A ``MediaInputs``.

    Example:
    >>> extractors = FeatureExtractors.read("feature_extractors.json")   # doctest: +SKIP
    >>> inputs = media_inputs("movie.mp4", "movie.srt", extractors)      # doctest: +SKIP
    """
    if extractors is None:
        raise UserError(f"image_model: the model's assets name no feature extractor ({EXTRACTORS_FILE}); name the "
                        f"encoders it was trained with (image_model / image_hub with image_weights, and text_preset, "
                        f"text_config or text_hub)", field="image_model")
    if not extractors.has_text_encoder:
        raise UserError("text_config: no text encoder is named (text_preset, text_config or text_hub)",
                        field="text_config")
    info = probe(video)  # a bad video or narration is refused before any model loads
    cues = read_narration(narration, split, encoding=narration_encoding)
    if describe(cues, narration):
        console.say(describe(cues, narration))
    extractors.check_files()
    clip_times = cut_video(video, clip_options)
    console.say(f"{pathlib.Path(video).name}: {info.duration:.1f} s at {info.fps:g} frames a second, "
                f"{len(clip_times)} clips; {len(cues)} texts")
    progress = console.Progress(len(clip_times), "clips encoded", enabled=show_progress)
    images = extractors.image_encoder()
    clip_features = encode_clips(video, clip_times, images, extractors.frames_per_clip,
                                 progress=lambda done: progress.update(done))
    progress.close()
    text_features = np.asarray(extractors.text_encoder()([c.text for c in cues]), np.float32)
    return MediaInputs(clip_times, project(clip_features, extractors.projection, "clip_seed"), cues,
                       project(text_features, extractors.projection, "text_seed"))
