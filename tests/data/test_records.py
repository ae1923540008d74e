import json
import os

import numpy as np
import pytest

from conftest import make_episode
from tfalign.data import records
from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.data.episode import EpisodeError


def assert_same(a, b):
    assert a.video_id == b.video_id
    for field in ("clip_features", "text_features", "clip_times", "text_spans", "clip_to_text", "unmatched_spans"):
        assert np.allclose(getattr(a, field), getattr(b, field), atol=1e-5), field


def episodes():
    return [make_episode([-1, 0, 0, 1], 3, video_id="a", seed=1), make_episode([0, -1, 1, 1, 2], 3, video_id="b")]


def test_tfrecord_round_trip_with_manifest(tmp_path):
    folder = records.write_tfrecords(episodes() * 3, tmp_path / "eps", num_shards=2, extra_manifest={"note": "x"})
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["num_episodes"] == 6 and manifest["clip_dim"] == 6 and manifest["text_dim"] == 5
    assert len(manifest["shards"]) == 2 and manifest["note"] == "x"
    assert not [p for p in os.listdir(folder) if "tmp" in p]
    back = records.read_tfrecords(folder)
    assert sorted(e.video_id for e in back) == ["a", "a", "a", "b", "b", "b"]
    for e in back:
        assert_same(e, {x.video_id: x for x in episodes()}[e.video_id])


def test_dataset_from_tfrecord_and_npz(tmp_path):
    original = load_episodes(DataConfig(dataset="synthetic", features="rp"), "val")[:3]
    records.write_tfrecords(original, tmp_path / "val")
    records.write_npz(original, tmp_path / "val.npz")
    for name in (f"tfrecord:{tmp_path}", f"npz:{tmp_path}/{{split}}.npz"):
        for a, b in zip(load_episodes(DataConfig(dataset=name), "val"), original):
            assert_same(a, b)


def test_npz_round_trip_and_errors(tmp_path):
    path = records.write_npz(episodes(), tmp_path / "eps.npz")
    for a, b in zip(records.read_npz(path), episodes()):
        assert_same(a, b)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EpisodeError, match="junk.npz: not a readable"):
        records.read_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", video_ids=np.array(["a"]))
    with pytest.raises(EpisodeError, match="field '0/clip_features' is missing"):
        records.read_npz(tmp_path / "partial.npz")


def test_truncated_or_unfinished_folders_are_refused(tmp_path):
    folder = records.write_tfrecords(episodes(), tmp_path / "eps")
    shard = folder / json.loads((folder / "manifest.json").read_text())["shards"][0]
    shard.write_bytes(shard.read_bytes()[:-30])
    with pytest.raises(EpisodeError, match="corrupted or truncated"):
        records.read_tfrecords(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(EpisodeError, match="no manifest.json"):
        records.read_tfrecords(folder)


def test_invalid_episodes_are_not_written(tmp_path):
    bad = episodes()[0]
    bad.clip_features = np.full((4, 6), np.nan)  # spoiled after it was made: the writers check again
    with pytest.raises(EpisodeError, match="'clip_features'"):
        records.write_tfrecords([bad], tmp_path / "eps")
    with pytest.raises(EpisodeError):
        records.write_npz([bad], tmp_path / "eps.npz")
    assert not (tmp_path / "eps.npz").exists() and not (tmp_path / "eps" / "manifest.json").exists()
