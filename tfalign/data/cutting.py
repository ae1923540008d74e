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


def cut_at_text_boundaries(episode: Episode, max_actions: int = 100, rng: np.random.Generator | None = None,
                           min_actions: int = 1) -> list[Episode]:
    """Splits an episode into consecutive samples of at most ``max_actions``.

    Each sample holds whole text groups. A single group longer than the limit
    becomes one longer sample; a sample that would hold no clip is merged with
    its neighbour. Times stay absolute; text indices restart at 0.

    With ``rng`` (tfalign's random crops), every sample's limit is drawn from
    [min_actions, max_actions] and the first one's from [1, max_actions], so the
    cuts fall elsewhere each time and cover every length in between.
    """
    starts = text_group_starts(episode.clip_to_text, episode.num_texts)
    cost = lambda a, b: int(starts[b] - starts[a]) + (b - a)  # actions of texts [a, b)
    bounds, first = [], 0
    while first < episode.num_texts:
        last = first + 1
        limit = max_actions
        if rng is not None:
            limit = int(rng.integers(1 if not bounds else min_actions, max_actions + 1))
        while last < episode.num_texts and (cost(first, last + 1) <= limit or starts[last] == starts[first]):
            last += 1
        bounds.append([first, last])
        first = last
    if len(bounds) > 1 and starts[bounds[-1][1]] == starts[bounds[-1][0]]:
        tail = bounds.pop()  # a clip-less tail joins the sample before it
        bounds[-1][1] = tail[1]
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
        known_clips=None if episode.known_clips is None else episode.known_clips[clip_start:clip_end],
    )


def random_crops(episodes, rng: np.random.Generator, min_actions: int, max_actions: int,
                 whole_fraction: float = 0.0) -> list[Episode]:
    """One epoch's training samples: each video whole with probability
    ``whole_fraction``, else cut at random text boundaries into crops of
    ``min_actions``..``max_actions`` actions (see cut_at_text_boundaries)."""
    samples = []
    for episode in episodes:
        if rng.random() < whole_fraction:
            samples.append(episode)
        else:
            samples += cut_at_text_boundaries(episode, max_actions, rng=rng, min_actions=min_actions)
    return samples
