import pytest

from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.errors import UserError


def test_a_training_subset_is_drawn_with_the_data_seed_and_only_for_training():
    full = load_episodes(DataConfig(dataset="synthetic"), "train")
    subset = load_episodes(DataConfig(dataset="synthetic", train_videos=8), "train")
    again = load_episodes(DataConfig(dataset="synthetic", train_videos=8), "train")
    assert [e.video_id for e in subset] == [e.video_id for e in again] and len(subset) == 8
    by_id = {e.video_id: e for e in full}
    order = [e.video_id for e in full]
    assert [order.index(e.video_id) for e in subset] == sorted(order.index(e.video_id) for e in subset)
    assert all((by_id[e.video_id].clip_features == e.clip_features).all() for e in subset)  # the same features
    other = load_episodes(DataConfig(dataset="synthetic", seed=1, train_videos=8), "train")
    assert [e.video_id for e in other] != [e.video_id for e in subset]
    assert len(load_episodes(DataConfig(dataset="synthetic", train_videos=8), "val")) == 12
    with pytest.raises(UserError, match="train_videos: 500, but the training split holds 66"):
        load_episodes(DataConfig(dataset="synthetic", train_videos=500), "train")
    with pytest.raises(UserError, match="data.train_videos"):
        DataConfig(train_videos=-1)
    assert load_episodes(DataConfig(train_videos=0), "train") == []  # none labelled: unlabelled ones alone
