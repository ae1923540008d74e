"""Aligning with no training: ``Aligner.zero_shot`` on features in one space, the
zero-shot baselines of ``tfalign.evaluate``, and the recipe trained on unlabelled
videos alone (``--train-videos 0``)."""

import dataclasses
import importlib
import json

import numpy as np
import pytest

import tfalign
from tfalign.data.classical import DTWFit
from tfalign.data.datasets import DataConfig, load_episodes, load_unlabelled
from tfalign.errors import UserError
from tfalign.evaluation.baselines import run_baseline

JOINT = DataConfig(features="joint")
evaluate_command = importlib.import_module("tfalign.evaluate")  # the module, not tfalign.evaluate()


@pytest.fixture(scope="module")
def joint():
    return {split: load_episodes(JOINT, split) for split in ("val", "test")}


def test_the_zero_shot_aligner_is_zero_shot_dtw_with_confidence(joint):
    val, test = joint["val"], joint["test"][:5]
    aligner = tfalign.Aligner.zero_shot(episodes=test, val=val)
    assert aligner.decoding == "exact" and aligner.input_widths == (512, 512)
    reference = DTWFit.fit([], val, centre_on=test)
    assert aligner.metadata["zero_shot"]["drop_cost"] == pytest.approx(reference.drop_cost)
    alignments = aligner.align_episodes(test)
    same = [np.mean(a.clip_to_text == reference.align(e)) for a, e in zip(alignments, test)]
    assert min(same) > 0.98, same  # float32 against float64: a tie may fall the other way
    for alignment in alignments:
        assert alignment.clip_confidence is not None
        assert np.all((alignment.clip_confidence >= 0) & (alignment.clip_confidence <= 1 + 1e-6))


@pytest.mark.large  # a SavedModel export
def test_the_zero_shot_aligner_saves_and_exports_like_any_aligner(joint, tmp_path):
    episode = joint["test"][0]
    aligner = tfalign.Aligner.zero_shot(episodes=joint["test"])
    expected = aligner.align(episode.clip_features, episode.text_features).clip_to_text
    preset = tfalign.Aligner.from_preset(aligner.save_to_preset(tmp_path / "preset"))
    np.testing.assert_array_equal(preset.align(episode.clip_features, episode.text_features).clip_to_text, expected)
    assert "no training" in (tmp_path / "preset" / "MODEL_CARD.md").read_text()
    exported = tfalign.Aligner.from_saved_model(aligner.export(tmp_path / "export"))
    np.testing.assert_array_equal(exported.align(episode.clip_features, episode.text_features).clip_to_text,
                                  expected)


def test_zero_shot_refuses_what_shares_no_space():
    full = load_episodes(DataConfig(features="full"), "val")[:2]
    with pytest.raises(UserError, match="width: zero-shot alignment needs clips and texts of one width"):
        tfalign.Aligner.zero_shot(episodes=full)
    with pytest.raises(UserError, match="width: give the features' width"):
        tfalign.Aligner.zero_shot()
    with pytest.raises(UserError, match="one width"):
        tfalign.Aligner.zero_shot(8, episodes=load_episodes(JOINT, "val")[:1])
    with pytest.raises(UserError, match="baseline zero-shot: the clip and text features are 2048 and 768 wide"):
        run_baseline("zero-shot", [], full, full)


@pytest.mark.large  # whole splits through the command
def test_the_zero_shot_baselines_on_the_command_line(tmp_path):
    out = tmp_path / "zero.json"
    assert evaluate_command.main(["--baseline", "zero-shot", "--features", "joint", "--split", "test",
                                  "--json", str(out)]) == 0
    zero = json.loads(out.read_text())
    assert zero["prior"] == "identity"
    assert 0.3 < zero["clip_accuracy"] < 0.6
    assert evaluate_command.main(["--baseline", "dtw-prior", "--features", "joint", "--train-videos", "8",
                                  "--split", "test", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["clip_accuracy"] > zero["clip_accuracy"] + 0.1
    with pytest.raises(UserError, match="features of different widths share no space"):
        evaluate_command.main(["--baseline", "zero-shot", "--features", "full", "--split", "test"])


def test_no_labelled_video_needs_unlabelled_ones_and_the_recipe():
    with pytest.raises(UserError, match="data.train_videos: 0 .* needs data.unlabelled_videos"):
        tfalign.configure("tfalign_rp_sbn", {"data.train_videos": 0})
    with pytest.raises(UserError, match="only a model that starts at DTW"):
        tfalign.configure("rp_lars_sbn", {"data.train_videos": 0, "data.unlabelled_videos": "all"})
    config = tfalign.configure("tfalign_rp_sbn", {"data.train_videos": 0, "data.unlabelled_videos": "all"})
    assert config.data.train_videos == 0
    val = load_episodes(JOINT, "val")[:2]
    with pytest.raises(UserError, match="train: an empty list"):
        tfalign.train("tfalign_rp_sbn", train=[], val=val)


def test_no_labelled_video_needs_features_in_one_space(tmp_path):
    """Zero-shot DTW on two unrelated spaces (the default rp features) means nothing: refused in one line."""
    rp = DataConfig()
    unlabelled = [e.without_labels() for e in load_episodes(rp, "train")[:3]]
    chance = "data.train_videos: no labelled video: .* ranks a clip's own text first [45][0-9]%"
    with pytest.raises(UserError, match=chance):
        tfalign.train("tfalign_rp_sbn", train=[], val=load_episodes(rp, "val"), unlabelled=unlabelled,
                      output_dir=tmp_path / "run", log=lambda *_: None)


@pytest.mark.large
def test_the_recipe_learns_from_unlabelled_videos_alone(tmp_path):
    """From Python, as the command line's --train-videos 0 --unlabelled-videos all: the
    start is zero-shot DTW self-trained on the unlabelled videos, and the network
    trains on their pseudo-labels; validation (labelled) chooses the epoch."""
    data = dataclasses.replace(JOINT, train_videos=0, unlabelled_videos="all")
    unlabelled = load_unlabelled(data)[:12]
    val, test = load_episodes(JOINT, "val")[:6], load_episodes(JOINT, "test")[:4]
    lines = []
    run = tfalign.train("tfalign_rp_sbn", train=[], val=val, test=test, unlabelled=unlabelled,
                        output_dir=tmp_path / "run", epochs=1, max_steps_per_epoch=3, log=lines.append)
    assert any("from 12 videos (pseudo-labelled by the closed form)" in line for line in lines), lines
    start = run.state.start["val_clip_accuracy"]
    zero_shot = run_baseline("zero-shot", [], val, val)["clip_accuracy"]
    assert start > zero_shot  # self-training moved the closed form beyond zero-shot DTW
    assert run.state.epoch == 1 and run.metrics["best_clip_accuracy"]["test"]["videos"] == 4
