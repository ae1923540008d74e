"""Videos nobody aligned: drawn without their labels, read without their labels,
and learnt from by the recipe's closed form, never by their labels."""

import json

import numpy as np
import pytest

import tfalign
from tfalign.data import records
from tfalign.data.classical import self_trained_fit
from tfalign.data.datasets import (DataConfig, load_episodes, load_unlabelled, training_subset, unlabelled_subset,
                                    unlabelled_videos)
from tfalign.errors import UserError


def test_the_unlabelled_draw_lies_outside_the_labelled_one_and_has_no_labels():
    config = DataConfig(train_videos=8, unlabelled_videos=20, seed=3)
    split = load_episodes(DataConfig(seed=3), "train")
    labelled = {e.video_id for e in training_subset(split, config)}
    unlabelled = unlabelled_subset(split, config)
    assert len(unlabelled) == 20 and not labelled & {e.video_id for e in unlabelled}
    assert all(not e.labelled and e.clip_to_text is None for e in unlabelled)
    again = load_unlabelled(config)  # the same draw for the same data seed
    assert [e.video_id for e in again] == [e.video_id for e in unlabelled]
    every = unlabelled_subset(split, DataConfig(train_videos=8, unlabelled_videos="all", seed=3))
    assert len(every) == 58
    with pytest.raises(UserError, match="data.unlabelled_videos: 59, but 58 training videos lie outside"):
        unlabelled_subset(split, DataConfig(train_videos=8, unlabelled_videos=59, seed=3))
    with pytest.raises(UserError, match="data.unlabelled_videos: needs data.train_videos"):
        DataConfig(unlabelled_videos="all")
    with pytest.raises(UserError, match="data.unlabelled_videos: expected"):
        DataConfig(train_videos=8, unlabelled_videos=0)


def test_unlabelled_files_are_read_without_their_labels(tmp_path):
    videos = load_episodes(DataConfig(), "val")[:3]
    records.write_npz(videos, tmp_path / "labelled.npz")
    records.write_npz([e.without_labels() for e in videos], tmp_path / "bare.npz")
    records.write_tfrecords([e.without_labels() for e in videos], tmp_path / "bare")
    for path in ("labelled.npz", "bare.npz", "bare"):
        config = DataConfig(unlabelled_file=str(tmp_path / path))
        read = load_unlabelled(config)
        assert [e.video_id for e in read] == [e.video_id for e in videos] and not any(e.labelled for e in read)
        np.testing.assert_array_equal(read[0].clip_features, videos[0].clip_features)
    with pytest.raises(UserError, match="is missing"):
        records.read_npz(tmp_path / "bare.npz")  # as labelled episodes they lack their ground truth
    with pytest.raises(UserError, match="data.unlabelled_file: .*expected an episode .npz or a TFRecord folder"):
        load_unlabelled(DataConfig(unlabelled_file=str(tmp_path / "nothing.csv")))


def test_every_unlabelled_video_enters_through_one_function_without_labels(tmp_path):
    split = load_episodes(DataConfig(seed=3), "train")
    records.write_npz(split[:2], tmp_path / "extra.npz")
    config = DataConfig(train_videos=8, unlabelled_videos=5, seed=3, unlabelled_file=str(tmp_path / "extra.npz"))
    given = load_episodes(DataConfig(), "val")[:2]  # labelled: their labels must not pass
    got = unlabelled_videos(config, split, given)
    expected = [*given, *unlabelled_subset(split, config), *split[:2]]
    assert [e.video_id for e in got] == [e.video_id for e in expected] and not any(e.labelled for e in got)
    assert [e.video_id for e in load_unlabelled(config)] == [e.video_id for e in expected[2:]]


def test_self_training_reads_no_label_of_the_unlabelled_videos():
    split = load_episodes(DataConfig(), "train")
    train, val = split[:6], load_episodes(DataConfig(), "val")[:6]
    bare = [e.without_labels() for e in split[6:10]]
    fit, pseudo = self_trained_fit(train, val, bare)
    assert [p.video_id for p in pseudo] == [e.video_id for e in bare] and all(p.labelled for p in pseudo)
    # Labels given with the unlabelled videos (here wrong ones) change nothing: they are never read.
    given = [e.replace(clip_to_text=np.sort(np.random.default_rng(k).integers(-1, e.num_texts, e.num_clips)))
             for k, e in enumerate(split[6:10])]
    assert all(e.labelled for e in given)
    again, _ = self_trained_fit(train, val, given)
    np.testing.assert_array_equal(again.embedding.weights, fit.embedding.weights)
    plain, none = self_trained_fit(train, val, ())
    assert none == [] and not np.allclose(plain.embedding.weights, fit.embedding.weights)


def _episodes(count, seed):
    from conftest import make_episode

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        spans = rng.integers(1, 4, size=6)
        c2t = np.repeat(np.arange(6), spans)
        out.append(make_episode(c2t, 6, 300, 300, seed=seed * 100 + k, video_id=f"v{seed}-{k}"))
    return out


@pytest.mark.large
def test_the_labels_of_unlabelled_videos_cannot_reach_the_run(tmp_path):
    """Unlabelled videos given as labelled episodes, and as (clips, texts) pairs that carry no
    labels: the same weights. Without them: other weights (they are used)."""
    train, val, extra = _episodes(4, 1), _episodes(2, 2), _episodes(4, 3)
    assert all((e.clip_to_text >= 0).any() for e in extra)  # labels that would change the fit if read
    options = dict(epochs=1, batch_size=4, max_steps_per_epoch=2, log=lambda *_: None,
                   **{"model.hidden_units": 8, "model.similarity_units": 8})
    digest = lambda run: json.loads((run.folder / "state.json").read_text())["weights_digest"]
    labelled = tfalign.train("tfalign_rp_sbn", train=train, val=val, unlabelled=extra, output_dir=tmp_path / "a",
                             **options)
    pairs = tfalign.train("tfalign_rp_sbn", train=train, val=val, output_dir=tmp_path / "c",
                          unlabelled=[(e.clip_features, e.text_features) for e in extra], **options)
    alone = tfalign.train("tfalign_rp_sbn", train=train, val=val, output_dir=tmp_path / "d", **options)
    assert digest(labelled) == digest(pairs) != digest(alone)


@pytest.mark.parametrize("unlabelled, expected", [
    ("clips.npy", "unlabelled: expected a list of tfalign.Episode or of \\(clips, texts\\) pairs"),
    ([], "unlabelled: an empty list; give at least one video"),
    ([np.zeros((4, 300))], "unlabelled: item 0: expected a tfalign.Episode or a \\(clips, texts\\) pair, got ndarray"),
    ([(np.zeros(300), np.zeros((2, 300)))], "unlabelled: item 0: .*field 'clip_features': expected a non-empty"),
    ([(np.zeros((4, 300)), np.full((2, 300), np.nan))], "unlabelled: item 0: .*field 'text_features': holds NaN"),
])
def test_malformed_unlabelled_inputs_are_one_line_naming_the_field(unlabelled, expected, tmp_path):
    train, val = _episodes(2, 1), _episodes(1, 2)
    with pytest.raises(UserError, match=expected) as caught:
        tfalign.train("tfalign_rp_sbn", train=train, val=val, unlabelled=unlabelled, output_dir=tmp_path / "r",
                      epochs=1)
    assert "\n" not in str(caught.value) and caught.value.field == "unlabelled"
    assert not (tmp_path / "r").exists()


def test_only_a_model_that_starts_at_dtw_takes_unlabelled_videos(tmp_path):
    with pytest.raises(UserError, match="unlabelled: only a model that starts at DTW"):
        tfalign.train("rp_lars_sbn", train=_episodes(2, 1), val=_episodes(1, 2), unlabelled=_episodes(1, 3),
                      output_dir=tmp_path / "r")
    with pytest.raises(UserError, match="data.unlabelled_videos and data.unlabelled_file: only a model"):
        tfalign.configure("rp_lars_sbn", train_videos=8, unlabelled_videos="all")


def test_unlabelled_file_mistakes_name_the_file_and_the_flag(tmp_path, capsys):
    import importlib

    from tfalign import cli
    from tfalign.data import records
    from tfalign.data.datasets import load_unlabelled

    (tmp_path / "text.npz").write_text("not an archive\n")
    from conftest import make_episode

    records.write_npz([make_episode([0, 0, 1, 2], 3, clip_dim=6, text_dim=5)], tmp_path / "narrow.npz")
    config = tfalign.configure("tfalign_rp_sbn", train_videos=8, unlabelled_file=str(tmp_path / "text.npz")).data
    with pytest.raises(UserError, match="data.unlabelled_file: .*text.npz: not a readable episode .npz: not a zip "
                                        "archive"):
        load_unlabelled(config)
    narrow = tfalign.configure("tfalign_rp_sbn", train_videos=8, unlabelled_file=str(tmp_path / "narrow.npz")).data
    with pytest.raises(UserError, match="data.unlabelled_file: .*narrow.npz: its videos have clip/text feature "
                                        "widths 6/5, but the yms-synthetic rp features have 300/300"):
        load_unlabelled(narrow)
    train_command = importlib.import_module("tfalign.train")
    code = cli.run(train_command.main, ["--experiment", "tfalign_rp_sbn", "--train-videos", "8", "--unlabelled-videos",
                                        "100", "--epochs", "1", "--output-dir", str(tmp_path / "r")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (tmp_path / "r").exists()
    assert error == ["error: --unlabelled-videos: 100, but 58 training videos lie outside the 8 labelled ones"]


def test_a_run_folder_named_after_a_file_keeps_its_stem():
    from tfalign.training.run_folder import run_folder_name

    name = run_folder_name(tfalign.configure("tfalign_rp_sbn", train_videos=8, unlabelled_file="data/good.npz"))
    assert "good-" in name and "good.n-" not in name


def test_unlabelled_videos_of_other_widths_are_named_as_given(tmp_path):
    from conftest import make_episode

    narrow = [make_episode([0, 0, 1, 2], 3, clip_dim=6, text_dim=5)]
    with pytest.raises(UserError, match="unlabelled: the unlabelled videos have clip/text feature widths 6/5, but "
                                        "the labelled episodes have 300/300") as caught:
        tfalign.train("tfalign_rp_sbn", train=_episodes(2, 1), val=_episodes(1, 2), unlabelled=narrow,
                      output_dir=tmp_path / "r", epochs=1)
    assert caught.value.field == "unlabelled" and not (tmp_path / "r").exists()
