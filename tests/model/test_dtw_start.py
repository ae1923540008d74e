"""A model that starts at DTW (``model.dtw_start``): before its first step, exact
decoding returns the DTW baseline's alignment of every video of the embedded
validation and test splits; the lattice's move set is DTW's."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfalign.data.classical import DTWFit, dtw_with_drop
from tfalign.data.datasets import load_episodes
from tfalign.evaluation.prediction import predict_alignments
from tfalign.experiments import configure
from tfalign.model import build_model
from tfalign.model.lattice import best_path
from tfalign.training.task import AlignmentTask, StageData


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.2, 1.8))
def test_dtw_is_the_best_lattice_path_under_its_scores(seed, drop_cost):
    """MATCH = cos - 1, POP_CLIP = -drop, POP_TEXT = 0: the lattice's best path is DTW's assignment."""
    rng = np.random.default_rng(seed)
    num_clips, num_texts = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    similarity = rng.uniform(-1, 1, size=(num_clips, num_texts))
    scores = np.stack([np.full_like(similarity, -drop_cost), np.zeros_like(similarity), similarity - 1.0], -1)
    decoded = best_path(tf.constant(scores[None], tf.float32), [num_clips], [num_texts])["clip_to_text"]
    np.testing.assert_array_equal(decoded.numpy()[0], dtw_with_drop(similarity.astype(np.float32), drop_cost))


@pytest.mark.large
def test_the_start_decodes_as_the_dtw_baseline_on_the_embedded_splits():
    config = configure("tfalign_rp_sbn", train_videos=16)
    data = config.data
    train, val, test = (load_episodes(data, split) for split in ("train", "val", "test"))
    model = build_model(config.model, seed=0)
    task, data = AlignmentTask(config), StageData(train, val)
    task.begin(model, data)
    task.prepare(model, data)
    fit = DTWFit.fit(train, val)
    assert float(model.potentials.drop_cost.numpy()) == pytest.approx(fit.drop_cost, rel=1e-6)
    for episodes in (val, test):
        for got, episode in zip(predict_alignments(model, episodes, decoding="exact"), episodes):
            np.testing.assert_array_equal(got, fit.align(episode), err_msg=episode.video_id)
