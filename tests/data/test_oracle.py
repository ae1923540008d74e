import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import alignments
from tfalign.data.oracle import MATCH, POP_CLIP, POP_TEXT, actions_to_alignment, alignment_to_actions, decoded_length


def test_worked_example():
    # clips: u, t0, t0, u, t1 ; texts: t0, t1, t2 (t2 has no clip)
    actions = alignment_to_actions([-1, 0, 0, -1, 1], 3)
    # The unmatched clip after t0 is popped before t0 is finished (POP_CLIP before POP_TEXT).
    assert actions.tolist() == [POP_CLIP, MATCH, MATCH, POP_CLIP, POP_TEXT, MATCH, POP_TEXT, POP_TEXT]


@given(alignments())
def test_oracle_and_act2align_are_inverse(alignment):
    c2t, num_texts = alignment
    actions = alignment_to_actions(c2t, num_texts)
    assert len(actions) == len(c2t) + num_texts
    assert np.sum(actions == POP_TEXT) == num_texts
    assert np.sum(actions != POP_TEXT) == len(c2t)
    assert np.array_equal(actions_to_alignment(actions, len(c2t), num_texts), c2t)


@given(alignments())
def test_oracle_prefers_match_then_pop_clip(alignment):
    c2t, num_texts = alignment
    clip = text = 0
    for action in alignment_to_actions(c2t, num_texts):
        if clip < len(c2t) and text < num_texts:
            expected = MATCH if c2t[clip] == text else POP_CLIP if c2t[clip] == -1 else POP_TEXT
            assert action == expected
        clip += action != POP_TEXT
        text += action == POP_TEXT


@given(st.lists(st.integers(0, 2), max_size=30), st.integers(1, 8), st.integers(1, 8))
def test_decoding_any_action_sequence_is_valid_and_stops(actions, num_clips, num_texts):
    c2t = actions_to_alignment(actions, num_clips, num_texts)
    matched = c2t[c2t >= 0]
    assert np.all(np.diff(matched) >= 0) and np.all(matched < num_texts)
    used = decoded_length(actions, num_clips, num_texts)
    assert np.array_equal(actions_to_alignment(actions[:used], num_clips, num_texts), c2t)
    if used < len(actions):  # it stopped early: actions after the stopping point change nothing
        assert np.array_equal(actions_to_alignment(list(actions[:used]) + [MATCH] * 5, num_clips, num_texts), c2t)


def test_rejects_unknown_actions_and_non_monotone_alignments():
    with pytest.raises(ValueError, match="unknown action 7"):
        actions_to_alignment([7], 2, 2)
    with pytest.raises(ValueError, match="not monotone"):
        alignment_to_actions([1, 0], 2)
