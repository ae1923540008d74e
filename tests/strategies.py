"""Hypothesis strategies shared by the tests."""

import numpy as np
from hypothesis import strategies as st


@st.composite
def alignments(draw, max_texts=8, max_clips_per_text=4, allow_empty_texts=True):
    """(clip_to_text, num_texts): a valid monotone one-to-many alignment."""
    num_texts = draw(st.integers(1, max_texts))
    c2t = []
    for text in range(num_texts):
        c2t += [-1] * draw(st.integers(0, 2))
        c2t += [text] * draw(st.integers(0 if allow_empty_texts else 1, max_clips_per_text))
    c2t += [-1] * draw(st.integers(0, 2))
    if not c2t:
        c2t = [-1]
    return np.asarray(c2t, np.int64), num_texts
