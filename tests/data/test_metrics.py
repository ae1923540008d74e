import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import make_episode
from strategies import alignments
from tfalign.data.episode import Episode
from tfalign.data.oracle import alignment_to_actions
from tfalign.data.metrics import clip_accuracy, evaluate_actions, evaluate_alignments, sentence_iou


def reference_clip_accuracy(episode, predicted):
    """Clip by clip, on a fine time grid: a plain reference."""
    correct = total = 0.0
    for (start, end), text in zip(episode.clip_times, predicted):
        grid = np.linspace(start, end, 2001)[:-1] + (end - start) / 4000
        if text >= 0:
            lo, hi = episode.text_spans[text]
            hit = (grid >= lo) & (grid < hi)
        else:
            hit = np.zeros_like(grid, bool)
            for lo, hi in episode.unmatched_spans:
                hit |= (grid >= lo) & (grid < hi)
        correct += hit.mean() * (end - start)
        total += end - start
    return correct / total


def reference_sentence_iou(episode, predicted):
    scores = []
    for text, (lo, hi) in enumerate(episode.text_spans):
        clips = episode.clip_times[np.asarray(predicted) == text]
        if len(clips) == 0:
            scores.append(0.0)
            continue
        t_min, t_max = min(lo, clips[:, 0].min()), max(hi, clips[:, 1].max())
        grid = np.linspace(t_min, t_max, 20001)
        grid = (grid[:-1] + grid[1:]) / 2
        pred = np.zeros_like(grid, bool)
        for a, b in clips:
            pred |= (grid >= a) & (grid < b)
        truth = (grid >= lo) & (grid < hi)
        scores.append((pred & truth).sum() / max((pred | truth).sum(), 1))
    return float(np.mean(scores))


@st.composite
def episodes_and_predictions(draw):
    c2t, num_texts = draw(alignments(max_texts=5))
    episode = make_episode(c2t, num_texts)
    # Irregular clip durations and shifted text spans, so overlaps are partial.
    durations = np.asarray(draw(st.lists(st.floats(0.25, 3.0), min_size=len(c2t), max_size=len(c2t))))
    ends = np.cumsum(durations)
    times = np.stack([ends - durations, ends], 1)
    shift = draw(st.floats(-0.4, 0.4))
    spans = np.asarray([[i * 1.3 + shift, i * 1.3 + 1.1 + shift] for i in range(num_texts)])
    episode = episode.replace(clip_times=times, text_spans=spans, unmatched_spans=times[c2t == -1][:, :] * 1.0)
    predicted = np.asarray(draw(st.lists(st.integers(-1, num_texts - 1), min_size=len(c2t), max_size=len(c2t))))
    return episode, predicted


@settings(max_examples=60, deadline=None)
@given(episodes_and_predictions())
def test_metrics_match_the_numpy_reference(case):
    episode, predicted = case
    assert clip_accuracy(episode, predicted) == pytest.approx(reference_clip_accuracy(episode, predicted), abs=2e-3)
    assert sentence_iou(episode, predicted) == pytest.approx(reference_sentence_iou(episode, predicted), abs=2e-3)


@given(alignments(allow_empty_texts=False))
def test_ground_truth_scores_one_on_exact_spans(alignment):
    c2t, num_texts = alignment
    episode = make_episode(c2t, num_texts)
    assert clip_accuracy(episode, c2t) == pytest.approx(1.0)
    assert sentence_iou(episode, c2t) == pytest.approx(1.0)
    actions = alignment_to_actions(c2t, num_texts)
    assert evaluate_actions([episode], [actions])["clip_accuracy"] == pytest.approx(1.0)


def test_all_unmatched_and_text_without_clips():
    episode = make_episode([0, 0, -1, 1, 1], 3)  # text 2 has no clip
    assert clip_accuracy(episode, np.full(5, -1)) == pytest.approx(1 / 5)
    assert sentence_iou(episode, [0, 0, -1, 1, 1]) == pytest.approx(2 / 3)  # text 2 scores 0
    assert sentence_iou(episode, np.full(5, -1)) == 0.0


def test_touching_spans_do_not_count_as_overlap():
    episode = Episode("touch", np.ones((2, 2)), np.ones((2, 2)), [[0, 1], [1, 2]], [[0, 1], [1, 2]], [0, 1],
                      np.zeros((0, 2)))
    assert clip_accuracy(episode, [1, 0]) == 0.0
    assert sentence_iou(episode, [1, 0]) == 0.0
    assert clip_accuracy(episode, [0, 1]) == 1.0


def test_average_is_per_video():
    good = make_episode([0, 0, 0, 0], 1, video_id="long")
    bad = make_episode([0], 1, video_id="short")
    result = evaluate_alignments([good, bad], [good.clip_to_text, np.array([-1])])
    assert result["clip_accuracy"] == pytest.approx(0.5)  # not 4/5: videos weigh equally
    assert result["videos"] == 2 and len(result["per_video"]) == 2
