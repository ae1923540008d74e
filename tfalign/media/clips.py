"""A video cut into clips: shots (PySceneDetect's content detector) or fixed windows.

Both return clip times as an [N, 2] array of (start, end) seconds that tile the
video from 0 to its end, in order. Shots shorter than ``min_seconds`` are
merged by the detector (its minimum scene length); shots longer than
``max_seconds`` are split into equal parts, so a long static shot still gives
clips of a usable length.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfalign.errors import UserError
from tfalign.media import require
from tfalign.media.video import probe, quiet_scenedetect


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """How a video is cut.

    Attributes:
        clip_seconds: fixed windows of this length instead of shots (None: shots).
        threshold: the content detector's threshold (PySceneDetect's default 27;
            lower finds more cuts).
        min_seconds: the shortest shot.
        max_seconds: longer shots are split into equal parts no longer than this.
    """

    clip_seconds: float | None = None
    threshold: float = 27.0
    min_seconds: float = 0.5
    max_seconds: float = 10.0

    def __post_init__(self):
        for name in ("clip_seconds", "threshold", "min_seconds", "max_seconds"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise UserError(f"{name}: expected a positive number, got {value!r}", field=name)
        if self.min_seconds > self.max_seconds:
            raise UserError(f"min_seconds: {self.min_seconds} is above max_seconds {self.max_seconds}",
                            field="min_seconds")


def fixed_windows(duration: float, seconds: float) -> np.ndarray:
    """Windows of ``seconds`` from 0 to ``duration`` (the last one shorter)."""
    starts = np.arange(0.0, duration - 1e-9, seconds)
    return np.stack([starts, np.minimum(starts + seconds, duration)], axis=1).reshape(-1, 2)


def split_long(spans: np.ndarray, max_seconds: float) -> np.ndarray:
    """Each span longer than ``max_seconds`` split into equal parts no longer than it."""
    out = []
    for start, end in spans:
        parts = max(1, int(math.ceil((end - start) / max_seconds - 1e-9)))
        edges = np.linspace(start, end, parts + 1)
        out += list(zip(edges[:-1], edges[1:]))
    return np.asarray(out, np.float64).reshape(-1, 2)


def detect_shots(path, threshold: float = 27.0, min_seconds: float = 0.5, field: str = "video") -> np.ndarray:
    """The shots PySceneDetect's content detector finds (PyAV backend), as [N, 2] seconds."""
    info = probe(path, field)
    scenedetect = require("scenedetect", "shot detection")
    quiet_scenedetect()
    detector = scenedetect.ContentDetector(threshold=threshold,
                                           min_scene_len=max(1, int(round(min_seconds * info.fps))))
    scenes = scenedetect.detect(str(path), detector, backend="pyav")
    if not scenes:  # no cut: one shot
        return np.asarray([[0.0, info.duration]])
    spans = np.asarray([[start.seconds, end.seconds] for start, end in scenes], np.float64)
    spans[0, 0], spans[-1, 1] = 0.0, max(spans[-1, 1], info.duration)
    return spans


def cut_video(path, options: ClipOptions | None = None, field: str = "video") -> np.ndarray:
    """The clips of a video: [N, 2] (start, end) seconds, tiling it in order.

    Args:
        path: the video file.
        options: a ``ClipOptions`` (default: shots, split past 10 s).
        field: the argument's name, for errors.

    Returns:
        The clip times.

    Example:
    >>> cut_video("movie.mp4", ClipOptions(clip_seconds=2.0))[:2].tolist()   # doctest: +SKIP
    [[0.0, 2.0], [2.0, 4.0]]
    """
    options = options or ClipOptions()
    if options.clip_seconds:
        return fixed_windows(probe(path, field).duration, options.clip_seconds)
    return split_long(detect_shots(path, options.threshold, options.min_seconds, field), options.max_seconds)
