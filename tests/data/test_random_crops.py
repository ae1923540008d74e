"""Random crops at text boundaries (tfalign's sampling) and the batch count."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_episode
from strategies import alignments
from tfalign.data.batching import count_batches, make_dataset
from tfalign.data.cutting import cut_at_text_boundaries, random_crops


@settings(max_examples=40)
@given(alignments(max_texts=12), st.integers(0, 2**31 - 1), st.integers(2, 30))
def test_crops_cover_every_clip_and_text_once_at_text_boundaries(alignment, seed, max_actions):
    clip_to_text, num_texts = alignment
    known = np.random.default_rng(seed).random(len(clip_to_text)) < 0.5  # a pseudo-labelled video's
    episode = make_episode(clip_to_text, num_texts).replace(known_clips=known)
    crops = cut_at_text_boundaries(episode, max_actions, rng=np.random.default_rng(seed), min_actions=2)
    np.testing.assert_array_equal(np.concatenate([c.known_clips for c in crops]), known)
    assert sum(c.num_clips for c in crops) == episode.num_clips
    assert sum(c.num_texts for c in crops) == episode.num_texts
    np.testing.assert_array_equal(np.concatenate([c.clip_features for c in crops]), episode.clip_features)
    offset = 0
    for crop in crops:
        crop.validate()
        matched = crop.clip_to_text >= 0
        np.testing.assert_array_equal(crop.clip_to_text[matched] + offset,
                                      episode.clip_to_text[sum(c.num_clips for c in crops[:crops.index(crop)]):][
                                          :crop.num_clips][matched])
        offset += crop.num_texts


def test_crops_are_drawn_anew_and_reproducibly():
    c2t = np.repeat(np.arange(40), 3)
    episode = make_episode(c2t, 40)
    draw = lambda seed: [c.num_clips for c in random_crops([episode], np.random.default_rng(seed), 10, 60)]
    assert draw(1) == draw(1)
    assert len({tuple(draw(seed)) for seed in range(6)}) > 1
    assert max(n for seed in range(6) for n in draw(seed)) <= 60


def test_whole_fraction_one_keeps_videos_whole():
    episode = make_episode(np.repeat(np.arange(20), 2), 20)
    assert random_crops([episode], np.random.default_rng(0), 5, 10, whole_fraction=1.0) == [episode]


def test_the_paper_cut_is_unchanged_without_rng():
    episode = make_episode(np.repeat(np.arange(30), 3), 30)
    assert [c.num_actions for c in cut_at_text_boundaries(episode, 20)] == [20] * 6


def test_count_batches_counts_what_the_dataset_yields():
    rng = np.random.default_rng(0)
    episodes = [make_episode(np.repeat(np.arange(n), 2), n, seed=i, video_id=str(i))
                for i, n in enumerate(rng.integers(1, 30, 75))]
    for batch_size in (4, 16, 32):
        for bucket in (False, True):
            yielded = sum(1 for _ in make_dataset(episodes, batch_size, bucket=bucket))
            assert count_batches(episodes, batch_size, bucket=bucket) == yielded
