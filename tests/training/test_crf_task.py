"""The task of a model that starts at DTW: epochs of a fixed number of steps,
cross-fitting folds, the CRF term and the L2-SP penalty."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_episode
from tfalign.data.classical import MAX_FOLDS, fold_of
from tfalign.experiments import configure
from tfalign.model import build_model
from tfalign.data.batching import episodes_request
from tfalign.training.task import AlignmentTask, StageData


def videos(count, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        spans = rng.integers(1, 4, size=8)
        c2t = np.repeat(np.arange(8), spans)
        c2t[rng.random(len(c2t)) < 0.2] = -1
        out.append(make_episode(c2t, 8, 300, 300, seed=seed * 100 + k, video_id=f"video{k}"))
    return out


@pytest.mark.parametrize("count", [2, 5, 12])
def test_an_epoch_holds_its_steps_whatever_the_number_of_videos(count):
    config = configure("tfalign_rp_sbn", batch_size=4, **{"task.epoch_steps": 6, "task.max_train_actions": 40,
                                                          "task.crop_min_actions": 10})
    task = AlignmentTask(config)
    train = videos(count)
    samples = task.epoch_samples(train, epoch=3)
    assert task.steps(samples) >= 6
    shape = lambda sample: (sample.video_id, sample.num_clips, sample.num_texts)
    assert list(map(shape, task.epoch_samples(train, epoch=3))) == list(map(shape, samples))  # from (seed, epoch)
    one_pass = AlignmentTask(config.override({"task.epoch_steps": 0})).epoch_samples(train, epoch=3)
    # More passes only where one is short; the first pass is the one-pass epoch.
    assert list(map(shape, samples[:len(one_pass)])) == list(map(shape, one_pass))
    assert task.steps(one_pass) < 6 or len(samples) == len(one_pass)


def test_training_videos_are_seen_through_the_map_of_their_fold():
    config = configure("tfalign_rp_sbn", batch_size=4)
    task = AlignmentTask(config)
    model = build_model(config.model.with_input_widths(300, 300), seed=0)
    train, val = videos(7), videos(3, seed=1)
    task.begin(model, StageData(train, val))
    samples = task.epoch_samples(train, epoch=0)
    folds = task.sample_folds(samples)
    by_video = {e.video_id: fold_of(i, len(train)) for i, e in enumerate(train)}
    assert folds == [by_video[s.video_id.split("#")[0]] for s in samples]
    assert set(folds) == set(range(min(MAX_FOLDS, len(train))))
    batch = next(iter(task.epoch_dataset(samples, epoch=0)))
    cross = model.encode_stacks(batch)["ridge"].numpy()
    full = model.encode_stacks({k: v for k, v in batch.items() if k != "fold"})["ridge"].numpy()
    assert not np.allclose(cross, full, atol=1e-3)  # the fold maps, not the one fitted on every video


def test_the_crf_step_and_the_start_penalty():
    config = configure("tfalign_rp_sbn", batch_size=4, **{"task.start_penalty": 2.0, "model.hidden_units": 8,
                                                          "model.similarity_units": 8})
    task = AlignmentTask(config)
    model = build_model(config.model.with_input_widths(300, 300), seed=0)
    train, val = videos(4), videos(2, seed=1)
    task.begin(model, StageData(train, val))
    assert float(model.start_distance()) == 0.0
    from tfalign.optimizers import make_optimizer

    optimizer = make_optimizer("lars", 1e-2)
    optimizer.build(model.trainable_variables)
    optimizer.exclude_from_layer_adaptation(model.potentials.trainable_variables)
    batch = next(iter(task.epoch_dataset(task.epoch_samples(train, 0), 0)))
    for _ in range(3):
        loss, norm, hits = tf.distribute.get_strategy().run(task.train_step, args=(model, optimizer, batch))
    assert np.isfinite(float(loss)) and float(model.start_distance()) > 0  # the corrections moved off the start
    assert abs(float(model.potentials.residual_gate.numpy())) > 1e-3  # plain Adam steps, not LARS's fraction of 0


def test_the_unlabelled_videos_are_pseudo_labelled_each_round_and_train_the_crf():
    """The teacher's exact alignment, the surest half of the clips kept, the weight ramped over
    the rounds; with the truth given (the ceiling) the same clips keep their true labels; the
    pseudo-labelled crops reach the step with their weight."""
    config = configure("tfalign_rp_sbn", batch_size=4, **{
        "model.hidden_units": 8, "model.similarity_units": 8, "task.unlabelled_weight": 2.0,
        "task.pseudo_label_fraction": 0.5, "task.pseudo_label_rounds": 2, "task.max_train_actions": 40,
        "task.crop_min_actions": 10})
    task = AlignmentTask(config)
    model = build_model(config.model.with_input_widths(300, 300), seed=0)
    train, val, truths = videos(4), videos(2, seed=1), videos(3, seed=2)
    unlabelled = [v.without_labels() for v in truths]
    task.begin(model, StageData(train, val, unlabelled=unlabelled))
    assert [task.needs_relabelling(e, 4) for e in range(4)] == [True, True, True, True]  # nothing labelled yet
    assert "round 1/2" in task.relabel(model, 0, 4) and task.pseudo_weight == 1.0
    assert [task.needs_relabelling(e, 4) for e in range(4)] == [False, False, True, True]
    out = model.align(episodes_request(unlabelled), "exact")
    confidence = np.concatenate([out["clip_confidence"].numpy()[r, :v.num_clips] for r, v in enumerate(unlabelled)])
    kept = np.concatenate([e.known_clips for e in task.pseudo])
    np.testing.assert_array_equal(kept, confidence >= np.quantile(confidence, 0.5))
    for row, episode in enumerate(task.pseudo):
        np.testing.assert_array_equal(episode.clip_to_text, out["clip_to_text"].numpy()[row, :episode.num_clips])

    task.truth, task.ceiling = {v.video_id: v.clip_to_text for v in truths}, True
    assert "the ceiling" in task.relabel(model, 2, 4) and task.pseudo_weight == 2.0
    np.testing.assert_array_equal(np.concatenate([e.known_clips for e in task.pseudo]), kept)
    assert all(np.array_equal(e.clip_to_text, t.clip_to_text) for e, t in zip(task.pseudo, truths))
    assert [(r["epoch"], r["weight"], r["kept"]) for r in task.rounds] == [(0, 1.0, kept.sum()), (2, 2.0, kept.sum())]
    assert task.rounds[-1]["kept_accuracy"] == 1.0 and "kept_accuracy" not in task.rounds[0]  # scored given the truth

    samples = task.epoch_samples(task.training_videos(train), 2)
    weights = np.concatenate([b["pseudo_weight"].numpy() for b in task.epoch_dataset(samples, 2)])
    assert set(weights) == {0.0, 2.0}
    from tfalign.optimizers import make_optimizer

    optimizer = make_optimizer("lars", 1e-2)
    optimizer.build(model.trainable_variables)
    batch = next(b for b in task.epoch_dataset(samples, 2) if b["pseudo_weight"].numpy().any())
    loss, _, _ = tf.distribute.get_strategy().run(task.train_step, args=(model, optimizer, batch))
    assert np.isfinite(float(loss))

