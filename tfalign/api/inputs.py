"""The inputs of ``Aligner.align``, checked: one video's [T, D] features or a
list of them, and per-video extras; each wrong one is one line naming the
argument (and the video of a batch)."""

from __future__ import annotations

import numpy as np

from tfalign.data.episode import Episode, validate_episodes
from tfalign.errors import UserError, first_line


def one_or_many(value, field: str, width: int) -> bool:
    """True for one video's [T, D] array, False for a list of them; anything else is
    one line naming ``field`` (a 1-D array, or a list of lists read as a batch)."""
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)) and np.ndim(value[0]) == 1:
            raise UserError(f"{field}: a list of lists is read as a batch of videos, each a [T, {width}] array, but "
                            f"its first item is one row of {len(value[0])} numbers; give one video as "
                            f"np.asarray(...) of shape [T, {width}]", field=field)
        return False
    if np.ndim(value) == 2:
        return True
    raise UserError(f"{field}: expected one video's [T, {width}] array or a list of them, got shape "
                    f"{list(np.shape(value))}", field=field)


def checked_videos(value, field: str, width: int, single: bool, count: int | None = None) -> list[np.ndarray]:
    """One or more videos' [T, D] feature arrays, checked; errors name the argument and the video."""
    videos = [value] if single else list(value)
    if not videos:
        raise UserError(f"{field}: expected at least one video", field=field)
    if count is not None and len(videos) != count:
        raise UserError(f"{field}: {len(videos)} videos, but clips has {count}", field=field)
    checked = []
    for index, video in enumerate(videos):
        where = "" if single else f"video {index}: "
        try:
            array = np.asarray(video, np.float32)
        except (TypeError, ValueError) as error:
            raise UserError(f"{field}: {where}expected numbers ({first_line(error)})", field=field) from None
        if array.ndim != 2 or array.shape[0] == 0:
            raise UserError(f"{field}: {where}expected a non-empty [T, {width}] array, got shape "
                            f"{list(array.shape)}", field=field)
        if array.shape[1] != width:
            raise UserError(f"{field}: {where}expected feature width {width} (the model's), got shape "
                            f"{list(array.shape)}", field=field)
        if not np.all(np.isfinite(array)):
            raise UserError(f"{field}: {where}holds NaN or inf", field=field)
        checked.append(array)
    return checked


def per_video(value, field: str, count: int, single: bool) -> list:
    """One entry per video (None for each when ``value`` is None)."""
    if value is None:
        return [None] * count
    values = [value] if single else list(value)
    if len(values) != count:
        raise UserError(f"{field}: {len(values)} entries for {count} videos", field=field)
    return values


def checked_labels(labels, text_list: list, single: bool) -> list:
    """The texts themselves, one list per video (None where not given), as many as its text features."""
    names = per_video(labels, "labels", len(text_list), single)
    for index, (texts, names_of) in enumerate(zip(text_list, names)):
        if names_of is not None and len(names_of) != len(texts):
            where = "" if single else f"video {index}: "
            raise UserError(f"labels: {where}{len(names_of)} texts for {len(texts)} text features", field="labels")
    return names


def check_encoder_widths(inputs, widths: tuple[int, int]) -> None:
    """The features the encoders gave a video (``media.inputs.MediaInputs``) are as wide as
    the model takes; else one line naming the encoder's option."""
    for name, features, width in (("clips", inputs.clip_features, widths[0]),
                                  ("texts", inputs.text_features, widths[1])):
        if features.shape[1] != width:
            field = "image_model" if name == "clips" else "text_config"
            raise UserError(f"{field}: the encoders give {name} features of width {features.shape[1]}, but "
                            f"the model takes width {width}: name the encoders it was trained with", field=field)


def checked_labelled(episodes, widths) -> list:
    """Labelled episodes to evaluate on, checked (``validate_episodes``); else one line naming ``episodes``."""
    if isinstance(episodes, Episode) or not all(isinstance(e, Episode) and e.labelled for e in episodes):
        raise UserError("episodes: expected a list of labelled tfalign.Episode (Aligner.align aligns (clips, "
                        "texts) pairs without labels)", field="episodes")
    return validate_episodes(episodes, *widths)
