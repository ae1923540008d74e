"""Features in one space: the joint-space generator, the ridge map's prior toward
the identity, the rule that says when features share a space, zero-shot DTW."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tfalign.data.classical import DTWFit, cross_fitted_maps, self_trained_fit, zero_shot_drop_cost
from tfalign.data.datasets import DataConfig, load_episodes, load_unlabelled
from tfalign.data.episode import Episode
from tfalign.data.joint_space import JointSpaceFeatureModel
from tfalign.data.metrics import evaluate_alignments
from tfalign.data.ridge import RidgeMap, shared_space_ranking, shares_space

JOINT = DataConfig(features="joint")


@pytest.fixture(scope="module")
def joint():
    return {split: load_episodes(JOINT, split) for split in ("train", "val", "test")}


def accuracy(fit, episodes):
    return evaluate_alignments(episodes, [fit.align(e) for e in episodes])["clip_accuracy"]


def pairs(width, count, seed):
    rng = np.random.default_rng(seed)
    clips = rng.normal(size=(count, width))
    texts = clips @ (np.eye(width) + 0.3 * rng.normal(size=(width, width))) + 0.5 * rng.normal(size=(count, width))
    return Episode(video_id="v", clip_features=clips.astype(np.float32), text_features=texts.astype(np.float32),
                   clip_to_text=np.arange(count))


@settings(max_examples=20, deadline=None)
@given(width=st.integers(2, 6), count=st.integers(8, 30), prior=st.sampled_from([0.0, 0.01, 0.5, 4.0]),
       seed=st.integers(0, 1000))
def test_the_prior_fit_minimizes_its_objective(width, count, prior, seed):
    """Against NumPy least squares on the stacked system: the ridge rows pull
    toward zero, the prior rows toward the identity written in standardized units."""
    episode = pairs(width, count, seed)
    fitted = RidgeMap.fit([episode], ridge=2.0, prior=prior)
    clips, texts = episode.clip_features.astype(np.float64), episode.text_features.astype(np.float64)
    mean, std = clips.mean(0), clips.std(0) + 1e-6
    x, y = (clips - mean) / std, texts - texts.mean(0)
    pull = prior * count
    stacked_x = np.vstack([x, np.sqrt(2.0) * np.eye(width), np.sqrt(pull) * np.eye(width)])
    stacked_y = np.vstack([y, np.zeros((width, width)), np.sqrt(pull) * np.diag(std)])
    expected = np.linalg.lstsq(stacked_x, stacked_y, rcond=None)[0]
    np.testing.assert_allclose(fitted.weights, expected, rtol=1e-6, atol=1e-8)
    assert fitted.prior == prior


def test_the_strongest_prior_is_the_identity_and_the_identity_is_centred_cosine():
    episode = pairs(5, 40, 1)
    limit, strong = RidgeMap.fit([episode], prior=np.inf), RidgeMap.fit([episode], prior=1e9)
    np.testing.assert_allclose(strong.weights, limit.weights, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(limit.similarity(episode), strong.similarity(episode), atol=1e-6)
    identity = RidgeMap.identity([episode])
    clips = episode.clip_features - episode.clip_features.mean(0)
    texts = episode.text_features - episode.text_features.mean(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    np.testing.assert_allclose(identity.similarity(episode), unit(clips) @ unit(texts).T, atol=1e-5)
    with pytest.raises(ValueError, match="different widths"):
        RidgeMap.identity([Episode(video_id="w", clip_features=np.ones((3, 4)), text_features=np.ones((2, 5)))])
    with pytest.raises(ValueError, match="equal widths"):
        RidgeMap.fit([Episode(video_id="w", clip_features=np.random.rand(3, 4), text_features=np.random.rand(2, 5),
                              clip_to_text=[0, 1, 1])], prior=1.0)


def test_joint_features_are_unit_vectors_in_one_space_and_deterministic():
    skeleton = {"video_id": "v", "clip_to_text": [0, 0, -1, 1, 2, 2], "clip_times": [[i, i + 1] for i in range(6)],
                "text_spans": [[0, 2], [3, 4], [4, 6]], "unmatched_spans": [[2, 3]]}
    first = JointSpaceFeatureModel(width=32, seed=3).episode(skeleton)
    again = JointSpaceFeatureModel(width=32, seed=3).episode(skeleton)
    other = JointSpaceFeatureModel(width=32, seed=4).episode(skeleton)
    np.testing.assert_array_equal(first.clip_features, again.clip_features)
    assert not np.allclose(first.clip_features, other.clip_features)
    np.testing.assert_allclose(np.linalg.norm(first.clip_features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(first.text_features, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(Exception, match="difficulty must be in"):
        JointSpaceFeatureModel(difficulty=1.5)


@pytest.mark.large  # whole splits of several feature kinds, DTW fits
def test_only_features_in_one_space_count_as_sharing_it(joint):
    assert shared_space_ranking(joint["val"]) > 0.75 and shares_space(joint["val"])
    rp = load_episodes(DataConfig(), "val")
    assert abs(shared_space_ranking(rp) - 0.5) < 0.05 and not shares_space(rp)
    full = load_episodes(DataConfig(features="full"), "val")  # different widths: no space to share
    assert np.isnan(shared_space_ranking(full)) and not shares_space(full)
    # Harder joint features still share their space; the difficulty knob lowers zero-shot DTW.
    easy, hard = (load_episodes(DataConfig(features="joint", difficulty=d), "val") for d in (0.1, 0.9))
    assert shares_space(hard)
    assert accuracy(DTWFit.fit([], easy), easy) > accuracy(DTWFit.fit([], hard), hard) + 0.2


def test_the_prior_beats_both_the_map_from_zero_and_no_training_with_few_videos(joint):
    few = load_episodes(dataclasses.replace(JOINT, train_videos=8), "train")
    zero_shot = DTWFit.fit([], joint["val"])
    plain = DTWFit.fit(few, joint["val"], shared=False)
    prior = DTWFit.fit(few, joint["val"])
    assert zero_shot.embedding.prior == np.inf and plain.embedding.prior == 0 and prior.embedding.prior > 0
    figures = {name: accuracy(fit, joint["test"]) for name, fit in
               (("zero-shot", zero_shot), ("plain", plain), ("prior", prior))}
    assert figures["plain"] < figures["zero-shot"] < figures["prior"] - 0.1, figures
    # Cross-fitted maps keep the prior chosen for the full map.
    assert {m.prior for m in cross_fitted_maps(few, prior=prior.embedding.prior)} == {prior.embedding.prior}


def test_features_of_different_spaces_fit_exactly_as_before():
    data = DataConfig(train_videos=8)
    train, val = load_episodes(data, "train"), load_episodes(data, "val")
    fit = DTWFit.fit(train, val)
    before = RidgeMap.fit(train)  # the classical map, no prior
    assert fit.embedding.prior == 0
    np.testing.assert_array_equal(fit.embedding.weights, before.weights)


@pytest.mark.large  # self-training on 66 unlabelled videos
def test_self_training_from_zero_labels_starts_at_zero_shot_and_goes_beyond(joint):
    unlabelled = load_unlabelled(dataclasses.replace(JOINT, train_videos=0, unlabelled_videos="all"))
    assert len(unlabelled) == 66 and not any(e.labelled for e in unlabelled)
    fit, pseudo = self_trained_fit([], joint["val"], unlabelled)
    assert len(pseudo) == 66 and all(e.labelled for e in pseudo)
    zero_shot = DTWFit.fit([], joint["val"], centre_on=unlabelled)
    assert accuracy(fit, joint["test"]) > accuracy(zero_shot, joint["test"]) + 0.1


def test_zero_shot_without_validation_drops_by_its_quantile_rule(joint):
    test = joint["test"]
    fit = DTWFit.fit([], [], centre_on=test)
    sims = [fit.embedding.similarity(e) for e in test]
    assert fit.drop_cost == pytest.approx(zero_shot_drop_cost(sims))
    best = np.concatenate([s.max(axis=1) for s in sims])
    assert np.mean(best < 1 - fit.drop_cost) == pytest.approx(0.15, abs=0.01)
    assert accuracy(fit, test) > 0.3
