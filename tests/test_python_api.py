"""The Python API: episodes of any widths in memory, tfalign.train, Aligner, Alignment, evaluate."""

import json

import numpy as np
import pytest
import tensorflow as tf

import tfalign
from tfalign.errors import UserError

pytestmark = pytest.mark.large  # training runs

CLIP_DIM, TEXT_DIM = 40, 24  # widths no table knows


def episodes(count, seed, clip_dim=CLIP_DIM, text_dim=TEXT_DIM):
    """Videos whose clips and texts share meanings through two random maps (as the synthetic data)."""
    rng = np.random.default_rng(seed)
    meanings = np.random.default_rng(99).normal(size=(12, 8))
    to_clip, to_text = np.random.default_rng(98).normal(size=(8, clip_dim)), np.random.default_rng(97).normal(
        size=(8, text_dim))
    out = []
    for i in range(count):
        num_texts = int(rng.integers(2, 6))
        lengths = rng.integers(1, 4, size=num_texts)
        clip_to_text = np.concatenate([np.full(n, t) for t, n in enumerate(lengths)])
        clip_to_text = np.where(rng.random(len(clip_to_text)) < 0.15, -1, clip_to_text)
        meaning = rng.integers(0, 12, size=num_texts)
        latent = np.stack([meanings[meaning[t]] if t >= 0 else rng.normal(size=8) for t in clip_to_text])
        out.append(tfalign.Episode(video_id=f"v{seed}-{i}", clip_features=np.tanh(latent @ to_clip),
                                   text_features=meanings[meaning] @ to_text + 0.1 * rng.normal(size=(num_texts,
                                                                                                       text_dim)),
                                   clip_to_text=clip_to_text))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "run"
    train, val = episodes(16, 0), episodes(4, 1)
    run = tfalign.train("tfalign_rp_sbn", train=train, val=val, test=val, output_dir=folder, epochs=2,
                        batch_size=8, log=lambda *_: None)
    return run, val


def test_training_from_memory_records_the_widths_and_returns_the_run(trained):
    run, val = trained
    assert run.config.model.input_widths == (CLIP_DIM, TEXT_DIM) and run.config.data.dataset == "memory"
    saved = json.loads((run.folder / "config.json").read_text())
    assert (saved["model"]["clip_dim"], saved["model"]["text_dim"]) == (CLIP_DIM, TEXT_DIM)
    assert run.state.epoch == 2 and len(run.history) == 2
    assert 0 <= run.metrics["best_clip_accuracy"]["test"]["clip_accuracy"] <= 1
    assert run.aligner.input_widths == (CLIP_DIM, TEXT_DIM) and run.aligner.model.backbone.clip_projection is not None
    # the clip confidences' temperature, fitted on validation, travels with the best checkpoint
    fit = run.metrics["best_clip_accuracy"]["confidence_temperature"]
    assert fit["nll_after"] <= fit["nll_before"] and fit["videos"] == len(val)
    assert float(run.aligner.model.confidence_temperature.numpy()) == pytest.approx(fit["temperature"])
    # and the floor under which tfalign.align calls a video doubtful
    assert 0 < fit["video_confidence_floor"] < 1
    assert run.aligner.video_confidence_floor == fit["video_confidence_floor"]
    from types import SimpleNamespace

    from tfalign.align import _doubtful

    alignment, result = run.aligner.align(val[0].clip_features, val[0].text_features), {}
    at = lambda floor: SimpleNamespace(video_confidence_floor=floor)
    assert _doubtful(alignment, at(alignment.confidence - 0.01), result) is None and result == {}
    assert "below" in _doubtful(alignment, at(alignment.confidence + 0.01), result) and "doubtful" in result
    with pytest.raises(UserError, match="already holds a run"):  # never trains over a run
        tfalign.train("tfalign_rp_sbn", train=val, val=val, output_dir=run.folder, epochs=1)


def test_an_unlabelled_pair_aligns_alone_and_in_a_batch_with_either_decoding(trained):
    run, val = trained
    aligner = run.aligner
    clips, texts = [e.clip_features for e in val], [e.text_features for e in val]
    for decoding in ("greedy", "exact"):
        batch = aligner.align(clips, texts, decoding=decoding)
        assert isinstance(batch, list) and len(batch) == len(val)
        for i, alignment in enumerate(batch):
            alone = aligner.align(clips[i], texts[i], decoding=decoding)
            assert isinstance(alone, tfalign.Alignment) and alone.decoding == decoding
            np.testing.assert_array_equal(alone.clip_to_text, alignment.clip_to_text)
            np.testing.assert_array_equal(alone.actions, alignment.actions)
            assert alone.score == pytest.approx(alignment.score, abs=1e-4)
            assert alone.probabilities.shape == (len(alone.actions), 3)
            # the alignment is the one its actions encode; spans follow the clips
            expected = tfalign.Alignment.from_actions(alone.actions, len(clips[i]), len(texts[i]))
            np.testing.assert_array_equal(expected.clip_to_text, alone.clip_to_text)
            for j in range(len(texts[i])):
                own = alone.text_clips(j)
                assert alone.text_span(j) == ((float(own[0]), float(own[-1] + 1)) if len(own) else None)
            document = json.loads(alone.to_json())
            assert document["clip_to_text"] == alone.clip_to_text.tolist() and len(document["texts"]) == len(texts[i])


def test_a_saved_model_aligns_as_the_model_in_process(trained, tmp_path):
    run, val = trained
    exported = tfalign.Aligner.from_saved_model(run.aligner.export(tmp_path / "model"))
    assert exported.input_widths == run.aligner.input_widths and exported.decoding == run.aligner.decoding
    assert exported.video_confidence_floor == run.aligner.video_confidence_floor is not None
    with pytest.raises(UserError, match="no Keras model"):
        exported.model
    for decoding in ("greedy", "exact"):
        here = run.aligner.align([e.clip_features for e in val], [e.text_features for e in val], decoding)
        there = exported.align([e.clip_features for e in val], [e.text_features for e in val], decoding)
        for a, b in zip(here, there):
            np.testing.assert_array_equal(a.clip_to_text, b.clip_to_text)
            np.testing.assert_array_equal(a.actions, b.actions)
            assert a.score == pytest.approx(b.score, abs=1e-3)
            # the recipe is a CRF: each clip's posterior under either decoding, the same served
            np.testing.assert_allclose(a.clip_confidence, b.clip_confidence, atol=1e-4)
    assert tfalign.evaluate(exported, val) == tfalign.evaluate(run.aligner, val)


def test_bad_requests_name_the_argument(trained):
    aligner, val = trained[0].aligner, trained[1]
    clips, texts = val[0].clip_features, val[0].text_features
    cases = [((np.ones((3, 5)), texts), {}, "clips: expected feature width 40"),
             ((clips, texts[:, :3]), {}, "texts: expected feature width 24"),
             ((np.full_like(clips, np.nan), texts), {}, "clips: holds NaN"),
             (([clips, clips], [texts]), {}, "texts: 1 videos, but clips has 2"),
             (([clips], texts), {}, "texts: expected one video's texts"),
             ((clips, texts), {"decoding": "beam"}, "decoding: expected one of"),
             ((clips, texts), {"clip_times": np.ones((2, 2))}, "clip_times"),
             ((clips, texts), {"labels": ["only one"] * (len(texts) + 1)}, "labels")]
    for args, kwargs, words in cases:
        with pytest.raises(UserError) as info:
            aligner.align(*args, **kwargs)
        assert words in str(info.value) and "\n" not in str(info.value), (words, str(info.value))
    with pytest.raises(UserError, match="clip_to_text"):  # evaluation needs labels
        tfalign.evaluate(aligner, [val[0].replace(clip_to_text=np.full(len(clips), 7))])


def test_every_checkpoint_restores_exactly_the_weights_that_were_saved(tmp_path):
    """Each checkpoint of a recipe run (last, best by clip accuracy, by sentence IoU) evaluates as the
    same weights did in process when they were saved."""
    from tfalign.evaluation.prediction import evaluate_model
    from tfalign.experiments import configure
    from tfalign.run import with_data_widths
    from tfalign.training.checkpoints import RunCheckpoints
    from tfalign.training.loop import StageData, Trainer

    data = StageData(train=episodes(12, 2), val=episodes(4, 3))
    config = with_data_widths(configure("tfalign_rp_sbn", epochs=3, batch_size=8, dataset="memory"), data)
    saved = {}

    class Recording(RunCheckpoints):  # the weights each best checkpoint holds, as they were in process
        def save_best(self, epoch, logs):
            stale = super().save_best(epoch, logs)
            for metric, best in self.state.best.items():
                if best.epoch == epoch + 1:
                    saved[metric] = self.model.get_weights()
            return stale

    trainer = Trainer(config, tmp_path / "run", log=lambda *_: None, evaluate=evaluate_model)
    trainer.checkpoints.__class__ = Recording
    trainer.fit(data, 3)
    saved["last"] = trainer.model.get_weights()
    reference = tfalign.Aligner(trainer.model, decoding="exact")
    for checkpoint, weights in saved.items():
        trainer.model.set_weights(weights)
        want = reference.evaluate(data.val)
        got = tfalign.Aligner.from_run(tmp_path / "run", checkpoint).evaluate(data.val, "exact")
        assert got["per_video"] == want["per_video"], checkpoint


def test_a_checkpoint_that_lacks_a_variable_is_refused_in_one_line(tmp_path):
    from tfalign.model import aligner_from_fields
    from tfalign.training.checkpoints import checkpoint_structure, read_checkpoint, restore_weights

    small = dict(units=8, action_units=2, matched_units=2, hidden_units=4)
    plain, normalized = aligner_from_fields(**small), aligner_from_fields(normalization="sbn", **small)
    plain.build(), normalized.build()
    plain.save_weights(str(tmp_path / "w.weights.h5"))
    with pytest.raises(UserError, match="do not fit the model") as info:
        restore_weights(normalized, tmp_path / "w.weights.h5")
    assert "\n" not in str(info.value)
    path = checkpoint_structure(plain).write(str(tmp_path / "ckpt"))
    with pytest.raises(UserError, match=r"lacks \d+ of the model's variables") as info:
        read_checkpoint(tf.train.Checkpoint(model=normalized), path)
    assert "\n" not in str(info.value)


def test_the_command_line_trains_on_an_npz_of_any_widths(tmp_path, capfd):
    from tfalign import cli
    from tfalign.data import records
    from tfalign.train import main as train_main

    for split, (count, seed) in {"train": (10, 4), "val": (3, 5), "test": (3, 6)}.items():
        records.write_npz(episodes(count, seed, 48, 20), tmp_path / f"{split}.npz")
    for experiment in ("tfalign_rp_sbn", "full_adam"):  # the command, in this process (cli.run)
        code = cli.run(train_main, ["--experiment", experiment, "--dataset", f"npz:{tmp_path / '{split}.npz'}",
                                    "--epochs", "1", "--batch-size", "4", "--no-export",
                                    "--output-dir", str(tmp_path / experiment)])
        assert code == 0, capfd.readouterr().err[-2000:]
        config = json.loads((tmp_path / experiment / "config.json").read_text())
        assert (config["model"]["clip_dim"], config["model"]["text_dim"]) == (48, 20)
