"""Cutting long training videos into samples at text boundaries."""

from __future__ import annotations

import numpy as np

from tfalign.data.episode import Episode


def text_group_starts(clip_to_text: np.ndarray, num_texts: int) -> np.ndarray:
    """B[t] = first clip of text t's group, B[0] = 0, B[num_texts] = T_v.

    A text's group is its clips plus the unmatched clips that follow them;
    leading unmatched clips belong to the first group.
    """
    running_max = np.maximum.accumulate(np.asarray(clip_to_text))
    starts = np.searchsorted(running_max, np.arange(num_texts + 1), side="left")
    starts[0], starts[num_texts] = 0, len(clip_to_text)
    return starts


def cut_at_text_boundaries(episode: Episode, max_actions: int = 100) -> list[Episode]:
    """Splits an episode into consecutive samples of at most ``max_actions``.

    Each sample holds whole text groups. A single group longer than the limit
    becomes one longer sample; a sample that would hold no clip is merged with
    its neighbour. Times stay absolute; text indices restart at 0.
    """
    starts = text_group_starts(episode.clip_to_text, episode.num_texts)
    cost = lambda a, b: int(starts[b] - starts[a]) + (b - a)  # actions of texts [a, b)
    bounds, first = [], 0
    while first < episode.num_texts:
        last = first + 1
        while last < episode.num_texts and (cost(first, last + 1) <= max_actions or starts[last] == starts[first]):
            last += 1
        bounds.append([first, last])
        first = last
    if len(bounds) > 1 and starts[bounds[-1][1]] == starts[bounds[-1][0]]:
        bounds[-2][1] = bounds.pop()[1]  # a clip-less tail joins the sample before it
    return [_slice(episode, starts[a], starts[b], a, b, i) for i, (a, b) in enumerate(bounds)]


def _slice(episode, clip_start, clip_end, text_start, text_end, index) -> Episode:
    c2t = episode.clip_to_text[clip_start:clip_end]
    times = episode.clip_times[clip_start:clip_end]
    lo, hi = times[0, 0], times[-1, 1]
    spans = episode.unmatched_spans
    keep = (spans[:, 1] > lo) & (spans[:, 0] < hi)
    return Episode(
        video_id=f"{episode.video_id}#{index}",
        clip_features=episode.clip_features[clip_start:clip_end],
        text_features=episode.text_features[text_start:text_end],
        clip_times=times,
        text_spans=episode.text_spans[text_start:text_end],
        clip_to_text=np.where(c2t >= 0, c2t - text_start, -1),
        unmatched_spans=np.clip(spans[keep], lo, hi),
    )
