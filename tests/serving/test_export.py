import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_episode
from tfalign.data.batching import make_dataset
from tfalign.data.oracle import actions_to_alignment
from tfalign.model import aligner_from_fields
from tfalign.data.oracle import alignment_from_actions
from tfalign.serving.saved_model import export_saved_model
from tfalign.data.batching import episodes_request

pytestmark = pytest.mark.large  # subprocesses, servers or training runs

RELOAD = """
import json, sys
import numpy as np, tensorflow as tf
data = np.load(sys.argv[2])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(**{k: tf.constant(data[k]) for k in data.files})
print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))
"""


def episodes():
    return [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, clip_dim=300, text_dim=300, seed=0),
            make_episode([0, 1, 1], 2, clip_dim=300, text_dim=300, seed=1)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    model = aligner_from_fields(encoder="rp", normalization="sbn")
    model.build()
    batch = next(iter(make_dataset(episodes(), 2)))
    model(batch, training=True)  # move the SBN running statistics off their start values
    path = export_saved_model(model, tmp_path_factory.mktemp("export") / "model")
    return model, path


def test_fresh_process_reload_reproduces_the_keras_greedy_alignment(exported, tmp_path):
    model, path = exported
    eps = episodes()
    data = episodes_request(eps)
    np.savez(tmp_path / "inputs.npz", **data)
    done = subprocess.run([sys.executable, "-c", RELOAD, str(path), str(tmp_path / "inputs.npz")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    keras_out = model.greedy_path(next(iter(make_dataset(eps, 2))))
    for i, e in enumerate(eps):
        n = int(keras_out["num_actions"][i])
        assert served["num_actions"][i] == n
        assert served["actions"][i][:n] == keras_out["actions"][i, :n].numpy().tolist()
        expected = actions_to_alignment(keras_out["actions"][i, :n].numpy(), e.num_clips, e.num_texts)
        assert served["clip_to_text"][i][:e.num_clips] == expected.tolist()


def test_every_weight_is_stored_once(exported):
    model, path = exported
    stored = [name for name, _ in tf.train.list_variables(str(path / "variables" / "variables"))
              if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(stored) == len(model.weights)  # not twice (keras issue 23553)
    size = sum(p.stat().st_size for p in (path / "variables").iterdir())
    assert size < 1.05 * sum(w.numpy().nbytes for w in model.weights) + 65536


def test_the_op_by_op_export_aligns_as_the_compiled_one(exported, tmp_path):
    """xla=False (a TF Serving without XLA): the same alignment, decoded op by op."""
    model, path = exported
    plain = export_saved_model(model, tmp_path / "plain", xla=False)
    request = {k: tf.constant(v) for k, v in episodes_request(episodes()).items()}
    compiled = tf.saved_model.load(str(path)).signatures["serving_default"](**request)
    op_by_op = tf.saved_model.load(str(plain)).signatures["serving_default"](**request)
    for key in ("actions", "num_actions", "clip_to_text"):
        assert np.array_equal(compiled[key].numpy(), op_by_op[key].numpy()), key
    must_compile = lambda folder: [f.signature.name for f in tf.saved_model.load(str(folder)).signatures[
        "serving_default"].graph.as_graph_def().library.function if f.attr["_XlaMustCompile"].b]
    assert must_compile(path) and not must_compile(plain)


def test_in_graph_act2align_matches_numpy():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(5, 12)).astype(np.int32)
    counts = rng.integers(1, 13, size=5).astype(np.int32)
    clip_lengths = rng.integers(1, 6, size=5).astype(np.int32)
    got = alignment_from_actions(tf.constant(actions), tf.constant(counts), tf.constant(clip_lengths),
                                 tf.constant([100] * 5), 6).numpy()
    for b in range(5):
        expected = actions_to_alignment(actions[b, :counts[b]], clip_lengths[b], 100)
        assert got[b, :clip_lengths[b]].tolist() == expected.tolist()


@pytest.mark.skipif(shutil.which("saved_model_cli") is None and
                    not (pathlib.Path(sys.executable).parent / "saved_model_cli").exists(),
                    reason="saved_model_cli is not installed beside this Python")
def test_saved_model_cli_show_and_run(exported, tmp_path):
    _, path = exported
    cli = shutil.which("saved_model_cli") or str(pathlib.Path(sys.executable).parent / "saved_model_cli")
    show = subprocess.run([cli, "show", "--dir", str(path), "--all"], capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    assert "serving_default" in show.stdout and "action_probabilities" in show.stdout
    assert "clip_to_text" in show.stdout
    data = episodes_request(episodes())
    for name, value in data.items():
        np.save(tmp_path / f"{name}.npy", value)
    inputs = ";".join(f"{name}={tmp_path / (name + '.npy')}" for name in data)
    run = subprocess.run([cli, "run", "--dir", str(path), "--tag_set", "serve", "--signature_def", "serving_default",
                          "--inputs", inputs], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "num_actions" in run.stdout


def test_exact_signature_reloads_and_equals_the_in_process_exact_path(tmp_path):
    tf.keras.utils.set_random_seed(1)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=32, hidden_units=16, history=False,
                            position="normalized", similarity_units=8)
    model.build()
    batch = next(iter(make_dataset(episodes(), 2)))
    model.training_outputs(batch, training=True)  # SBN running statistics off their start values
    path = export_saved_model(model, tmp_path / "model", decoding="exact")
    np.savez(tmp_path / "inputs.npz", **episodes_request(episodes()))
    script = RELOAD.replace('signatures["serving_default"]', 'signatures[sys.argv[3]]')
    expected = model.align(episodes_request(episodes()), decoding="exact")
    for signature in ("serving_default", "align_exact"):
        done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "inputs.npz"), signature],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        served = json.loads(done.stdout.strip().splitlines()[-1])
        for i, e in enumerate(episodes()):
            n = int(expected["num_actions"][i])
            assert served["num_actions"][i] == n
            assert served["actions"][i][:n] == expected["actions"][i, :n].numpy().tolist()
            assert served["clip_to_text"][i][:e.num_clips] == expected["clip_to_text"][i, :e.num_clips].numpy().tolist()


def test_the_saved_model_runs_the_model_s_own_align_and_agrees_with_aligner_align(tmp_path, monkeypatch):
    """One align path: the SavedModel's signatures are the model's ``align`` traced, so a CRF
    model's greedy and exact alignments (and confidences) served equal ``Aligner.align``'s."""
    import tfalign
    from tfalign.model import LatticeAligner
    from tfalign.serving.warmup import WarmupSize

    tf.keras.utils.set_random_seed(2)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, hidden_units=8, history=False,
                                position="normalized", similarity_units=8, similarity_source="all",
                                stack_features=False, dtw_start=True)
    model.build()
    model.backbone.ridge.fit(episodes())
    model.potentials.set_start(0.8)
    model.confidence_temperature.assign(0.5)  # a recalibrated model: the served confidences are too
    built, original = [], LatticeAligner.make_align_function
    monkeypatch.setattr(LatticeAligner, "make_align_function",
                        lambda self, decoding="greedy", xla=True, confidence=True:
                        built.append(decoding) or original(self, decoding, xla, confidence))
    path = export_saved_model(model, tmp_path / "model", decoding="exact", warmup=WarmupSize(0, 0))
    assert set(built) == {"greedy", "exact"}
    served, here = tfalign.Aligner.from_saved_model(path), tfalign.Aligner(model)
    clips, texts = [e.clip_features for e in episodes()], [e.text_features for e in episodes()]
    for decoding in ("greedy", "exact"):
        for a, b in zip(served.align(clips, texts, decoding), here.align(clips, texts, decoding)):
            np.testing.assert_array_equal(a.clip_to_text, b.clip_to_text)
            np.testing.assert_array_equal(a.actions, b.actions)
            np.testing.assert_allclose(a.clip_confidence, b.clip_confidence, rtol=1e-5, atol=1e-6)
            assert a.score == pytest.approx(b.score, rel=1e-5, abs=1e-5)
        # each video's score, served: the mean of its clips' confidences
        out = served._backend.run(episodes_request(episodes()), decoding)
        for row, alignment in enumerate(here.align(clips, texts, decoding)):
            assert out["video_confidence"][row] == pytest.approx(alignment.confidence, rel=1e-5)
    model.confidence_temperature.assign(1.0)
    plain = here.align(clips, texts, "exact")
    assert not np.allclose(plain[0].clip_confidence, served.align(clips, texts, "exact")[0].clip_confidence)
