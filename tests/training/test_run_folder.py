"""Run folders a person can read, their index, and the TensorBoard extras' math."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from tfalign.experiments import get_experiment
from tfalign.training import diagnostics
from tfalign.training.run_folder import (changed_fields, incompatible_fields, marked_running, run_folder_name,
                                         run_status, update_index)


def test_the_name_says_the_experiment_and_what_changed_but_not_the_epochs():
    base = get_experiment("rp_lars_sbn")
    assert run_folder_name(base).startswith("rp_lars_sbn-") and len(run_folder_name(base)) == len("rp_lars_sbn-") + 8
    assert run_folder_name(base.override(epochs=7)) == run_folder_name(base)
    # A quick trial (a cap on the steps of an epoch) is never continued as a full run.
    assert run_folder_name(base, max_steps_per_epoch=2).startswith("rp_lars_sbn-steps2-")
    assert run_folder_name(base, max_steps_per_epoch=2)[-8:] != run_folder_name(base)[-8:]
    changed = base.override({"data.difficulty": 0.8}, seed=2, learning_rate=0.01)
    name = run_folder_name(changed)
    assert name.startswith("rp_lars_sbn-lr0.01_seed2_difficulty0.8-")
    assert name != run_folder_name(base.override({"data.difficulty": 0.8}, seed=3, learning_rate=0.01))
    assert changed_fields(changed) == {"optimizer.learning_rate": 0.01, "trainer.seed": 2, "data.difficulty": 0.8}
    # Many changes: the options are cut, the hash still tells the folders apart.
    many = base.override(seed=1, learning_rate=0.002, label_smoothing=0.1, weight_decay=1e-4, dropout=0.2,
                         batch_size=16, plateau_patience=3, clip_global_norm=5.0)
    assert len(run_folder_name(many)) <= len("rp_lars_sbn-") + 61 + 9
    assert incompatible_fields(base.to_dict(), base.override(epochs=3)) == []
    assert incompatible_fields(base.to_dict(), changed) == ["data.difficulty", "optimizer.learning_rate",
                                                             "trainer.seed"]
    # What ran a run (config.json's "runtime") is no difference.
    assert incompatible_fields({**base.to_dict(), "runtime": {"replicas": 2}}, base) == []


def test_the_index_lists_every_run_with_its_status(tmp_path):
    config = get_experiment("rp_adam_sbn")
    finished, stopped, running = (tmp_path / name for name in ("a", "b", "c"))
    for folder, state in ((finished, {"epoch": 2, "finished": True, "wall_seconds": 12.5}),
                          (stopped, {"epoch": 1, "finished": False}), (running, {"epoch": 1})):
        folder.mkdir()
        (folder / "config.json").write_text(config.override(epochs=2).to_json())
        (folder / "state.json").write_text(json.dumps(state))
    (finished / "metrics.json").write_text(json.dumps({"best_clip_accuracy": {
        "epoch": 2, "val": 0.25, "test": {"clip_accuracy": 0.5, "sentence_iou": 0.125}}}))
    (stopped / ".running").write_text("999999999")  # killed: its process is gone
    (tmp_path / "not_a_run").mkdir()
    with marked_running(running):
        assert run_status(running) == "running"
        update_index(tmp_path)
    assert not (running / ".running").exists()
    rows = {r["folder"]: r for r in csv.DictReader(open(tmp_path / "index.csv"))}
    assert set(rows) == {"a", "b", "c"}
    assert [rows[k]["status"] for k in "abc"] == ["finished", "stopped", "running"]
    assert rows["a"]["test_clip_accuracy"] == "0.5000" and rows["a"]["best_epoch"] == "2"
    assert rows["a"]["wall_seconds"] == "12.5" and rows["a"]["overrides"] == "trainer.epochs=2"
    assert run_status(running) == "stopped" and run_status(tmp_path / "not_a_run") == "empty"
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_variable_groups_and_the_spread_without_zero_initialized_variables():
    assert diagnostics.variable_group("neu_match_aligner/video_stack_1/input_kernel") == "video_stack"
    assert diagnostics.variable_group("neu_match_aligner/encoder/text_1/kernel") == "encoder"
    assert diagnostics.variable_group("neu_match_aligner/text_stack_sbn/gamma") == "normalization"
    assert diagnostics.variable_group("neu_match_aligner/decoder_logits/bias") == "decoder"
    ratios = {"a": 0.01, "b": 0.04, "beta": 5.0}
    assert diagnostics.ratio_spread(ratios) == pytest.approx(500.0)
    assert diagnostics.ratio_spread(ratios, zero_init={"beta"}) == pytest.approx(4.0)
    assert diagnostics.ratio_spread({}) is None
    w = keras.Variable(np.full((2, 2), 2.0, np.float32), name="w")
    zero = keras.Variable(np.zeros(3, np.float32), name="zero")
    assert diagnostics.zero_initialized([w, zero]) == {zero.path}
    before = diagnostics.snapshot([w, zero])
    w.assign_add(np.full((2, 2), 0.2, np.float32))
    ratios = diagnostics.update_ratios([w, zero], before)
    assert ratios == {w.path: pytest.approx(0.1)}  # ||dw|| / ||w||; a variable at zero has none


def test_hparams_and_layout_are_written_for_tensorboard(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    config = get_experiment("rp_lars_sbn").override(seed=1)
    diagnostics.write_hparams(tmp_path, config.to_dict(), trial_id="rp_lars_sbn-seed1-x")
    diagnostics.write_layout(tmp_path, ["neu_match_aligner/video_stack_1/input_kernel",
                                        "neu_match_aligner/video_stack_sbn/beta"], normalized=False)
    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    content = accumulator.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert session.group_name == "rp_lars_sbn-seed1-x"
    assert session.hparams["trainer.seed"].number_value == 1
    assert session.hparams["optimizer.name"].string_value == "lars"
    assert session.hparams["data.dataset"].string_value == "yms-synthetic"
    layout = layout_pb2.Layout.FromString(accumulator.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    titles = [chart.title for category in layout.category for chart in category.chart]
    assert "video_stack" in titles and "normalization" in titles
    assert not [t for t in titles if t.startswith("after norm")]  # no normalization: no "after" charts


def test_the_strategy_that_ran_a_run_is_described():
    import tensorflow as tf

    from tfalign.training.strategy import describe_strategy

    default = describe_strategy(tf.distribute.get_strategy())
    assert default["replicas"] == 1 and default["workers"] == 1 and default["devices"] == []
    mirrored = describe_strategy(tf.distribute.MirroredStrategy(["/cpu:0"]))
    assert mirrored["strategy"] == "MirroredStrategy" and mirrored["replicas"] == 1
    assert mirrored["devices"] and "CPU:0" in mirrored["devices"][0].upper()
