"""The typed episode (one video and its narration) and its validation."""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign.errors import UserError


class EpisodeError(UserError):
    """An episode (or a file holding episodes) is malformed.

    The message always names the episode and the offending field.
    """


@dataclasses.dataclass
class Episode:
    """One video: its clips, its texts and their ground-truth alignment.

    Made from arrays in natural order and checked at once: a malformed field is
    an ``EpisodeError`` (a ``UserError``) naming the episode and the field. The
    times are optional: without ``clip_times`` clip i spans [i, i + 1) seconds;
    without ``text_spans`` a text spans its clips (a text with none, a moment
    at the end of the one before); without ``unmatched_spans`` the unmatched
    clips' times are the unmatched spans.

    Without ``clip_to_text`` the episode is *unlabelled*: a video and its
    narration that nobody aligned (``labelled`` is False; ``text_spans`` and
    ``unmatched_spans`` stay None), for ``tfalign.train(..., unlabelled=[...])``.

    Attributes:
        video_id: a name for the video.
        clip_features: [T_v, D_v] float32, one vector per clip (any width D_v).
        text_features: [T_s, D_s] float32, one vector per text unit (any width D_s).
        clip_times: [T_v, 2] float seconds, start and end of each clip.
        text_spans: [T_s, 2] float seconds, ground-truth span of each text.
        clip_to_text: [T_v] int, index of the text of each clip, -1 = unmatched,
            never going back to an earlier text; None: unlabelled.
        unmatched_spans: [K, 2] float seconds of video that has no text.
        known_clips: None (every clip's ``clip_to_text`` is the truth), or [T_v] bool:
            the clips whose assignment is trusted; the others' are guesses. A
            pseudo-labelled video (training/pseudo_labels.py): its loss is the
            CRF's over every path through the trusted assignments.

    Example:
    >>> episode = Episode(video_id="v1", clip_features=np.random.rand(5, 512), text_features=np.random.rand(2, 384),
    ...                   clip_to_text=[0, 0, -1, 1, 1])
    >>> episode.num_clips, episode.num_texts, episode.text_spans.tolist()
    (5, 2, [[0.0, 2.0], [3.0, 5.0]])
    """

    video_id: str = "video"
    clip_features: np.ndarray = None
    text_features: np.ndarray = None
    clip_times: np.ndarray | None = None
    text_spans: np.ndarray | None = None
    clip_to_text: np.ndarray = None
    unmatched_spans: np.ndarray | None = None
    known_clips: np.ndarray | None = None

    def __post_init__(self):
        self.video_id = str(self.video_id)
        for name in ("clip_features", "text_features"):
            if getattr(self, name) is None:
                _fail(self.video_id, name, "required")
        for name, dtype in (("clip_features", np.float32), ("text_features", np.float32)):
            setattr(self, name, _array(self.video_id, name, getattr(self, name), dtype))
        num_clips = len(self.clip_features) if self.clip_features.ndim else 0
        if self.clip_times is None:
            self.clip_times = np.stack([np.arange(num_clips), np.arange(num_clips) + 1.0], axis=1)
        self.clip_times = _array(self.video_id, "clip_times", self.clip_times, np.float64)
        if self.clip_to_text is None:  # unlabelled: no ground truth, so no spans of it either
            for name in ("text_spans", "unmatched_spans", "known_clips"):
                if getattr(self, name) is not None:
                    _fail(self.video_id, name, "given without clip_to_text (an unlabelled episode has no ground "
                                               "truth)")
            validate_episode(self)
            return
        self.clip_to_text = _labels(self.video_id, self.clip_to_text)
        _check_feature_shapes(self)
        _check_assignment(self.video_id, self.clip_to_text, num_clips,
                          len(self.text_features) if self.text_features.ndim == 2 else 0)
        if self.text_spans is None:
            self.text_spans = _spans_of_texts(self)
        self.text_spans = _array(self.video_id, "text_spans", self.text_spans, np.float64)
        if self.unmatched_spans is None:
            self.unmatched_spans = _unmatched_times(self)
        self.unmatched_spans = _array(self.video_id, "unmatched_spans", self.unmatched_spans, np.float64)
        if self.unmatched_spans.size % 2:
            _fail(self.video_id, "unmatched_spans",
                  f"expected [K, 2] spans, got shape {list(self.unmatched_spans.shape)}")
        self.unmatched_spans = self.unmatched_spans.reshape(-1, 2)
        if self.known_clips is not None:
            self.known_clips = _array(self.video_id, "known_clips", self.known_clips, bool)
            if self.known_clips.shape != (num_clips,):
                _fail(self.video_id, "known_clips", f"expected one flag per clip ({num_clips}), got shape "
                                                    f"{list(self.known_clips.shape)}")
        validate_episode(self)

    @property
    def num_clips(self) -> int:
        return int(self.clip_features.shape[0])

    @property
    def num_texts(self) -> int:
        return int(self.text_features.shape[0])

    @property
    def num_actions(self) -> int:
        return self.num_clips + self.num_texts

    @property
    def widths(self) -> tuple[int, int]:
        """The (clip, text) feature widths: what every split of a run and the model share."""
        return int(self.clip_features.shape[-1]), int(self.text_features.shape[-1])

    @property
    def labelled(self) -> bool:
        """Whether the episode has its ground truth (``clip_to_text``)."""
        return self.clip_to_text is not None

    def without_labels(self) -> "Episode":
        """The same video and narration, unlabelled: what nobody aligned."""
        return Episode(video_id=self.video_id, clip_features=self.clip_features, text_features=self.text_features,
                       clip_times=self.clip_times)

    def replace(self, **changes) -> "Episode":
        return dataclasses.replace(self, **changes)

    def validate(self, clip_dim: int | None = None, text_dim: int | None = None) -> "Episode":
        """Raises EpisodeError naming the field if anything is malformed."""
        validate_episode(self, clip_dim=clip_dim, text_dim=text_dim)
        return self


def _fail(episode_id: str, field: str, message: str):
    raise EpisodeError(f"episode {episode_id!r}: field {field!r}: {message}", field=field)


def _array(episode_id: str, field: str, value, dtype) -> np.ndarray:
    """``value`` as a NumPy array of ``dtype``, or an EpisodeError naming the field."""
    if isinstance(value, np.ndarray) and not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
        _fail(episode_id, field, f"expected numbers, got an array of {value.dtype}")
    try:
        return np.asarray(value, dtype)
    except (TypeError, ValueError) as error:
        _fail(episode_id, field, f"expected numbers ({error})")


def _labels(episode_id: str, value) -> np.ndarray:
    """``clip_to_text`` as int64: integers only (a float label is refused, never truncated)."""
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        kind = "floats" if np.issubdtype(array.dtype, np.floating) else f"{array.dtype}"
        _fail(episode_id, "clip_to_text", f"expected integer text indices (-1 = unmatched), got {kind}")
    return array.astype(np.int64)


def _check_assignment(eid, assignment, num_clips: int, num_texts: int) -> None:
    """One entry per clip, each -1 or a text index, never going back to an earlier text."""
    if assignment.shape != (num_clips,):
        _fail(eid, "clip_to_text", f"expected shape [{num_clips}] (one entry per clip), got {list(assignment.shape)}")
    if np.any(assignment < -1) or np.any(assignment >= num_texts):
        _fail(eid, "clip_to_text", f"entries must be -1 (unmatched) or a text index in [0, {num_texts})")
    matched = assignment[assignment >= 0]
    if np.any(np.diff(matched) < 0):
        i = int(np.flatnonzero(assignment >= 0)[int(np.argmax(np.diff(matched) < 0)) + 1])
        _fail(eid, "clip_to_text", f"alignment is not monotone: clip {i} goes back to an earlier text")


def _spans_of_texts(episode) -> np.ndarray | list:
    """Each text's span: from its first clip's start to its last clip's end; a text
    without clips, a moment at the end of the span before it."""
    assignment, times = episode.clip_to_text, episode.clip_times
    if assignment.ndim != 1 or times.shape != (len(assignment), 2) or episode.text_features.ndim != 2:
        return np.zeros((0, 2))  # malformed: validation names the field
    spans, end = [], float(times[0, 0]) if len(times) else 0.0
    for text in range(len(episode.text_features)):
        own = times[assignment == text]
        start = float(own[0, 0]) if len(own) else end
        end = float(own[-1, 1]) if len(own) else end
        spans.append([start, end])
    return np.asarray(spans).reshape(-1, 2)


def _unmatched_times(episode) -> np.ndarray:
    assignment, times = episode.clip_to_text, episode.clip_times
    if assignment.ndim != 1 or times.shape != (len(assignment), 2):
        return np.zeros((0, 2))
    return times[assignment < 0]


def _check_matrix(eid, field, array, width=None, rows=None):
    if array.ndim != 2:
        _fail(eid, field, f"expected a rank-2 array [N, {width or 'D'}], got shape {list(array.shape)}")
    if width is not None and array.shape[1] != width:
        _fail(eid, field, f"expected width {width} ([N, {width}]), got shape {list(array.shape)}")
    if rows is not None and array.shape[0] != rows:
        _fail(eid, field, f"expected {rows} rows to match the other fields, got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        _fail(eid, field, f"holds NaN or inf (first at index {bad.tolist()})")


def _check_spans(eid, field, spans, strictly_ordered):
    if spans.size == 0:
        return
    if np.any(spans[:, 1] < spans[:, 0]):
        i = int(np.argmax(spans[:, 1] < spans[:, 0]))
        _fail(eid, field, f"span {i} ends before it starts ({spans[i].tolist()})")
    if np.any(np.diff(spans[:, 0]) < 0):
        i = int(np.argmax(np.diff(spans[:, 0]) < 0)) + 1
        _fail(eid, field, f"time axis is not monotone: span {i} starts before span {i - 1}")
    if strictly_ordered:
        # Touching spans are fine; overlapping ones are not (1 ms tolerance for
        # rounding in annotation files).
        overlap = spans[:-1, 1] - spans[1:, 0]
        if np.any(overlap > 1e-3):
            i = int(np.argmax(overlap > 1e-3)) + 1
            _fail(eid, field, f"span {i} overlaps span {i - 1} ({spans[i - 1].tolist()} vs {spans[i].tolist()})")


def _check_feature_shapes(episode: Episode) -> None:
    """Both feature matrices 2-D and non-empty: checked before the labels that are read against them."""
    for name, axes in (("clip_features", "[T_v, D_v]"), ("text_features", "[T_s, D_s]")):
        features = getattr(episode, name)
        if features.ndim != 2 or features.shape[0] == 0:
            _fail(episode.video_id, name, f"expected a non-empty {axes} array, got shape {list(features.shape)}")


def validate_episode(episode: Episode, clip_dim: int | None = None, text_dim: int | None = None) -> None:
    """Checks shapes, finiteness, time order and the assignment of one episode."""
    eid = episode.video_id
    _check_feature_shapes(episode)
    num_clips, num_texts = episode.num_clips, episode.num_texts
    _check_matrix(eid, "clip_features", episode.clip_features, width=clip_dim)
    _check_matrix(eid, "text_features", episode.text_features, width=text_dim)
    _check_matrix(eid, "clip_times", episode.clip_times, width=2, rows=num_clips)
    _check_spans(eid, "clip_times", episode.clip_times, strictly_ordered=True)
    if not episode.labelled:
        return
    _check_assignment(eid, episode.clip_to_text, num_clips, num_texts)
    _check_matrix(eid, "text_spans", episode.text_spans, width=2, rows=num_texts)
    _check_matrix(eid, "unmatched_spans", episode.unmatched_spans, width=2)
    _check_spans(eid, "text_spans", episode.text_spans, strictly_ordered=False)
    _check_spans(eid, "unmatched_spans", episode.unmatched_spans, strictly_ordered=False)


def validate_episodes(episodes, clip_dim=None, text_dim=None):
    """Validates a collection; all episodes must share their feature widths."""
    episodes = list(episodes)
    if not episodes:
        raise EpisodeError("no episodes: expected at least one")
    clip_dim = clip_dim or episodes[0].widths[0]
    text_dim = text_dim or episodes[0].widths[1]
    for episode in episodes:
        episode.validate(clip_dim=clip_dim, text_dim=text_dim)
    return episodes
