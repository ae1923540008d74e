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
                                expected_num_trainable_weights=0, expected_num_non_trainable_weights=3)
    assert np.all(out.numpy() == 0)  # no map yet
    ridge_map = RidgeMap.fit(episodes)
    layer.set_map(ridge_map)
    out = layer(**inputs).numpy()
    for b, episode in enumerate(episodes[:2]):  # the DTW baseline's own similarity, in natural order
        np.testing.assert_allclose(out[b, :episode.num_clips, :episode.num_texts], ridge_map.similarity(episode),
                                   atol=1e-4)
    layer.fit(episodes)  # the same map, fitted by the layer
    np.testing.assert_allclose(layer(**inputs).numpy(), out, atol=1e-6)
