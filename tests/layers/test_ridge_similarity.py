import dataclasses

import numpy as np
from harness import run_layer_test

from conftest import make_episode
from tfalign.data.batching import make_dataset
from tfalign.data.ridge import RidgeMap
from tfalign.layers import RidgeSimilarity


def test_layer_harness_and_the_baselines_similarity():
    episodes = [make_episode([0, 0, -1, 1, 2, 2], 3, clip_dim=6, text_dim=5, seed=s, video_id=f"v{s}")
                for s in range(4)]
    batch = next(iter(make_dataset(episodes[:2], 2)))
    inputs = {"clips": batch["clip_features"].numpy(), "texts": batch["text_features"].numpy(),
              "clip_lengths": batch["clip_lengths"].numpy(), "text_lengths": batch["text_lengths"].numpy()}
    layer, out = run_layer_test(RidgeSimilarity, {}, inputs, (2, 6, 3), build_shape=(6, 5),
                                expected_num_trainable_weights=0, expected_num_non_trainable_weights=3,
                                variable_dtype="float64")
    assert np.all(out.numpy() == 0)  # no map yet
    ridge_map = RidgeMap.fit(episodes)
    layer.set_map(ridge_map)
    out = layer(**inputs).numpy()
    for b, episode in enumerate(episodes[:2]):  # the DTW baseline's own similarity, in natural order
        np.testing.assert_allclose(out[b, :episode.num_clips, :episode.num_texts], ridge_map.similarity(episode),
                                   atol=1e-4)
    # Texts that differ only in their last digits (a small random text encoder) keep their
    # differences through the centring: the similarity is still the baseline's.
    close = [dataclasses.replace(e, text_features=(1.0 + 1e-6 * e.text_features).astype(np.float32))
             for e in episodes]
    close_map = RidgeMap.fit(close)
    precise = RidgeSimilarity()
    close_batch = next(iter(make_dataset(close[:2], 2)))
    close_inputs = {"clips": close_batch["clip_features"], "texts": close_batch["text_features"],
                    "clip_lengths": close_batch["clip_lengths"], "text_lengths": close_batch["text_lengths"]}
    precise(**close_inputs)
    precise.set_map(close_map)
    close_out = precise(**close_inputs).numpy()
    for b, episode in enumerate(close[:2]):
        np.testing.assert_allclose(close_out[b, :episode.num_clips, :episode.num_texts],
                                   close_map.similarity(episode), atol=1e-4)
    layer.fit(episodes)  # the same map, fitted by the layer
    np.testing.assert_allclose(layer(**inputs).numpy(), out, atol=1e-6)


def test_cross_fitted_folds_see_each_video_through_its_own_map():
    from tfalign.data.classical import cross_fitted_maps, fold_of

    episodes = [make_episode([0, 0, -1, 1, 2, 2], 3, clip_dim=6, text_dim=5, seed=s, video_id=f"v{s}")
                for s in range(4)]
    layer = RidgeSimilarity()
    layer.build((6, 5))
    layer.fit(episodes)
    maps = cross_fitted_maps(episodes)
    assert len(maps) == 4 and [fold_of(i, 4) for i in range(4)] == [0, 1, 2, 3]
    layer.set_fold_maps(maps)
    batch = next(iter(make_dataset(episodes[:3], 3, folds=[0, 1, -1])))
    inputs = {"clips": batch["clip_features"], "texts": batch["text_features"],
              "clip_lengths": batch["clip_lengths"], "text_lengths": batch["text_lengths"]}
    out = layer(**inputs, folds=batch["fold"]).numpy()
    expected = [maps[0].similarity(episodes[0]), maps[1].similarity(episodes[1]),
                RidgeMap.fit(episodes).similarity(episodes[2])]  # -1: the full map
    for b, want in enumerate(expected):
        np.testing.assert_allclose(out[b, :6, :3], want, atol=1e-4)
    assert not np.allclose(out[0], layer(**inputs).numpy()[0], atol=1e-3)  # without folds: the full map
    layer.set_fold_maps([])
    np.testing.assert_allclose(layer(**inputs, folds=batch["fold"]).numpy(), layer(**inputs).numpy())
