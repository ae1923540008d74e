import numpy as np
import pytest

from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.data.synthetic import FeatureModel, generate_skeletons


@pytest.mark.parametrize("features, widths", [("full", (2048, 768)), ("rp", (300, 300)), ("lxmert", (768, 768))])
def test_feature_widths_and_determinism(features, widths):
    config = DataConfig(dataset="synthetic", features=features, seed=3)
    first = load_episodes(config, "val")
    again = load_episodes(config, "val")
    assert len(first) == 12
    assert (first[0].clip_features.shape[1], first[0].text_features.shape[1]) == widths
    assert all(np.array_equal(a.clip_features, b.clip_features) for a, b in zip(first, again))
    other_seed = load_episodes(DataConfig(dataset="synthetic", features=features, seed=4), "val")
    assert not np.array_equal(first[0].text_features[:1], other_seed[0].text_features[:1])


def test_modalities_differ_in_distribution():
    episode = FeatureModel(difficulty=0.5, seed=0).episode(generate_skeletons(1)[0])
    clips, texts = episode.clip_features, episode.text_features
    assert clips.min() >= 0 and (clips == 0).mean() > 0.3  # non-negative, sparse
    assert (texts == 0).mean() == 0 and texts.min() < 0  # dense, signed
    spread = texts.std(axis=0)
    assert spread.max() / np.median(spread) > 5  # anisotropic


def test_neighbouring_texts_are_correlated_and_difficulty_raises_it():
    skeleton = generate_skeletons(1, seed=1)[0]

    def neighbour_cosine(difficulty):
        model = FeatureModel(difficulty=difficulty, seed=0)
        latents = model.text_latents(400, np.random.default_rng(0))
        a, b = latents[:-1], latents[1:]
        return np.mean(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))

    assert 0.1 < neighbour_cosine(0.0) < neighbour_cosine(1.0)
    with pytest.raises(ValueError, match="difficulty"):
        FeatureModel(difficulty=1.5)
    assert FeatureModel(seed=0).episode(skeleton).num_clips == len(skeleton["clip_times"])


def test_yms_like_lengths_and_lsmdc_standin():
    skeletons = generate_skeletons(40, seed=0)
    texts = np.mean([len(s["text_spans"]) for s in skeletons])
    clips = np.mean([len(s["clip_times"]) for s in skeletons])
    assert 45 < texts < 85 and 120 < clips < 260  # YMS: ~64 phrases and ~180 clips a video
    lsmdc = load_episodes(DataConfig(dataset="synthetic-lsmdc", lsmdc_scale=0.2), "train")
    assert all(e.num_clips == e.num_texts and np.all(e.clip_to_text == np.arange(e.num_texts)) for e in lsmdc)
    assert len(load_episodes(DataConfig(dataset="synthetic-lsmdc", lsmdc_scale=1.0), "train")) == 184


def test_yms_synthetic_keeps_the_real_structure():
    test = load_episodes(DataConfig(), "test")
    assert len(test) == 15 and max(e.num_clips for e in test) == 249
