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
from tfalign.dp.lattice import best_path
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
    # The map the model holds is the ridge regression of the training videos (NumPy least squares here) ...
    clips = np.concatenate([e.clip_features[e.clip_to_text >= 0] for e in train]).astype(np.float64)
    texts = np.concatenate([e.text_features[e.clip_to_text[e.clip_to_text >= 0]] for e in train]).astype(np.float64)
    scale = clips.std(0) + 1e-6
    x, width = (clips - clips.mean(0)) / scale, clips.shape[1]
    weights = np.linalg.lstsq(np.vstack([x, np.sqrt(10.0) * np.eye(width)]),
                              np.vstack([texts - texts.mean(0), np.zeros((width, texts.shape[1]))]), rcond=None)[0]
    kernel = model.backbone.ridge.clip_kernel.numpy()
    np.testing.assert_allclose(kernel, weights / scale[:, None], rtol=1e-6, atol=1e-9)
    # ... and its drop cost is the one of the 13 candidates (quantiles of the clips' best similarities)
    # under which DTW scores best on validation.
    unit = lambda a: a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-9)
    similarity = [unit(e.clip_features @ kernel + model.backbone.ridge.clip_bias.numpy())
                  @ unit(e.text_features + model.backbone.ridge.text_bias.numpy()).T for e in val]
    candidates = 1 - np.quantile(np.concatenate([s.max(1) for s in similarity]), np.linspace(0, 0.6, 13))
    accuracy = [np.mean([np.mean(dtw_with_drop(s, c) == e.clip_to_text) for s, e in zip(similarity, val)])
                for c in candidates]
    assert float(model.potentials.drop_cost.numpy()) == pytest.approx(candidates[int(np.argmax(accuracy))], rel=1e-6)
    fit = DTWFit.fit(train, val)
    for episodes in (val, test):
        for got, episode in zip(predict_alignments(model, episodes, decoding="exact"), episodes):
            np.testing.assert_array_equal(got, fit.align(episode), err_msg=episode.video_id)
