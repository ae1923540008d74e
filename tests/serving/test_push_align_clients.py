import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import command_here

from fake_serving import start_grpc, start_rest
from tfalign.data.batching import make_dataset
from tfalign.data.datasets import load_episodes
from tfalign.experiments import get_experiment
from tfalign.serving.client import GrpcClient, LocalClient, RestClient, ServingError
from tfalign.data.batching import episodes_request
from tfalign.serving.push import PushError, push
from tfalign.evaluation.prediction import predict_alignments
from tfalign.training.loop import Trainer

pytestmark = pytest.mark.large  # subprocesses, servers or training runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model after a few real training steps on synthetic data, pushed once."""
    config = get_experiment("rp_lars_sbn").override({"data.dataset": "synthetic"}, batch_size=8)
    trainer = Trainer(config, tmp_path_factory.mktemp("run"), log=lambda *_: None)
    train = load_episodes(config.data, "train")[:16]
    data = make_dataset(train, 8)
    step = trainer._make_train_step(data.element_spec)
    for batch in data:
        step(batch)
    val = load_episodes(config.data, "val")[:4]
    base = tmp_path_factory.mktemp("saved_models")
    path = push(trainer.model, val, base_dir=base, name="aligner", log=lambda *_: None)
    return trainer.model, val, base, path


def test_push_writes_versions_and_reproduces_the_model(trained):
    model, val, base, path = trained
    assert path == base / "aligner" / "1" and (path / "saved_model.pb").exists()
    served = LocalClient(base / "aligner").align(episodes_request(val))
    for i, (episode, local) in enumerate(zip(val, predict_alignments(model, val))):
        assert served["clip_to_text"][i, :episode.num_clips].tolist() == local.tolist()
    second = push(model, val, base_dir=base, name="aligner", log=lambda *_: None)
    assert second.name == "2"
    assert [p.name for p in (base / "aligner").iterdir()] and not list((base / "aligner").glob(".candidate-*"))


def test_a_failed_check_leaves_the_serving_folder_untouched(trained):
    model, val, base, _ = trained
    before = sorted(p.name for p in (base / "aligner").iterdir())
    with pytest.raises(PushError, match="below the threshold"):
        push(model, val, base_dir=base, name="aligner", min_clip_accuracy=1.01, log=lambda *_: None)
    assert sorted(p.name for p in (base / "aligner").iterdir()) == before


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(clip_lengths=np.array([500] * len(r["clip_lengths"]), np.int32)),
     "clip_lengths: a length is larger"),
    (lambda r: r.update(text_lengths=np.zeros_like(r["text_lengths"])), "text_lengths: every length must be >= 1"),
    (lambda r: r["clip_features"].__setitem__((0, 0, 0), np.nan), "clip_features: holds NaN"),
    (lambda r: r.update(text_features=r["text_features"][..., :10]), "text_features: expected feature width 300"),
])
def test_bad_requests_name_the_input(trained, change, words):
    _, val, base, _ = trained
    request = episodes_request(val[:2])
    change(request)
    with pytest.raises(ServingError, match=words):
        LocalClient(base / "aligner").align(request)


def test_grpc_and_rest_clients_against_local_servers(trained):
    model, val, base, _ = trained
    request = episodes_request(val[:2])
    expected = LocalClient(base / "aligner").align(request)
    grpc_server, target = start_grpc(base / "aligner", name="aligner")
    rest_server, url = start_rest(base / "aligner", name="aligner")
    try:
        for client in (GrpcClient(target, "aligner"), RestClient(url, "aligner")):
            out = client.align(request)
            for key in ("actions", "num_actions", "clip_to_text"):
                assert np.array_equal(out[key], expected[key]), key
        bad = dict(request, clip_lengths=np.array([999, 999], np.int32))
        with pytest.raises(ServingError, match="clip_lengths"):
            GrpcClient(target, "aligner").align(bad)
        with pytest.raises(ServingError, match="HTTP 400.*clip_lengths"):
            RestClient(url, "aligner").align(bad)
        with pytest.raises(ServingError, match="NOT_FOUND"):
            GrpcClient(target, "other").align(request)
    finally:
        grpc_server.stop(0)
        rest_server.shutdown()


def write_align_inputs(folder, index):
    """clips.npy, texts.npy, times.csv and truth.csv of a yms-synthetic test video."""
    episode = load_episodes(get_experiment("rp_lars_sbn").data.__class__(dataset="yms-synthetic"), "test")[index]
    np.save(folder / "clips.npy", episode.clip_features)
    np.save(folder / "texts.npy", episode.text_features)
    np.savetxt(folder / "times.csv", episode.clip_times, delimiter=",")
    np.savetxt(folder / "truth.csv", episode.clip_to_text, fmt="%d")
    return episode


def test_align_command_writes_json_and_png(trained, tmp_path, capfd):
    _, _, base, _ = trained
    episode = write_align_inputs(tmp_path, 0)
    (tmp_path / "texts.txt").write_text("\n".join(f"phrase {j}" for j in range(episode.num_texts)))
    out, png = tmp_path / "alignment.json", tmp_path / "timeline.png"
    done = command_here(capfd, "tfalign.align", "--model", str(base / "aligner"),
                        "--clips", str(tmp_path / "clips.npy"), "--texts", str(tmp_path / "texts.npy"),
                        "--clip-times", str(tmp_path / "times.csv"), "--texts-file", str(tmp_path / "texts.txt"),
                        "--out", str(out), "--plot", str(png))
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text())
    assert len(document["texts"]) == episode.num_texts and document["texts"][0]["text"] == "phrase 0"
    clips = sorted(c for t in document["texts"] for c in t["clips"]) + document["unmatched_clips"]
    assert sorted(clips) == list(range(episode.num_clips))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wrong = command_here(capfd, "tfalign.align", "--model", str(base / "aligner"),
                         "--clips", str(tmp_path / "texts.npy"), "--texts", str(tmp_path / "texts.npy"),
                         "--clip-times", str(tmp_path / "times.csv"), "--out", str(tmp_path / "x.json"))
    assert wrong.returncode == 2 and "--clip-times:" in wrong.stderr
    assert "one per clip" in wrong.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.json").exists()


def test_align_with_ground_truth_compares_and_draws_two_rows(trained, tmp_path, capfd):
    _, _, base, _ = trained
    episode = write_align_inputs(tmp_path, 1)
    common = ["--model", str(base / "aligner"), "--clips", str(tmp_path / "clips.npy"),
              "--texts", str(tmp_path / "texts.npy"), "--clip-times", str(tmp_path / "times.csv")]
    out, png = tmp_path / "alignment.json", tmp_path / "timeline.png"
    done = command_here(capfd, "tfalign.align", *common, "--ground-truth", str(tmp_path / "truth.csv"),
                        "--out", str(out), "--plot", str(png))
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text())
    predicted = np.full(episode.num_clips, -1)
    for entry in document["texts"]:
        predicted[entry["clips"]] = entry["index"]
    assert document["ground_truth"] == episode.clip_to_text.tolist()
    assert document["clips_agreeing"] == pytest.approx(np.mean(predicted == episode.clip_to_text))
    single = tmp_path / "single.png"
    command_here(capfd, "tfalign.align", *common, "--out", str(tmp_path / "s.json"), "--plot", str(single),
                 check=True)
    from PIL import Image

    assert Image.open(png).size[1] > Image.open(single).size[1]  # the second row makes it taller
    np.savetxt(tmp_path / "bad.csv", episode.clip_to_text[:-1], fmt="%d")
    bad = command_here(capfd, "tfalign.align", *common, "--ground-truth", str(tmp_path / "bad.csv"),
                       "--out", str(tmp_path / "b.json"))
    assert bad.returncode == 2 and "--ground-truth: expected" in bad.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "b.json").exists()


ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_block(marker: str) -> str:
    """The first bash block after ``<!-- marker -->`` in docs/usage.md (the README's long tour)."""
    text = (ROOT / "docs" / "usage.md").read_text()
    return text.split(f"<!-- {marker} -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_serving_requests_work_as_written(trained, tmp_path):
    """curl and tfalign.align, as the README sends them, against the stand-in for TF Serving."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    _, _, base, _ = trained
    server, url = start_rest(base / "aligner", name="tfalign")
    try:
        script = readme_block("serving-requests").replace("http://localhost:8501", url)
        script = script.replace("python scripts/", f"python {ROOT}/scripts/")
        env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env=env)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    outputs = json.loads((tmp_path / "response.json").read_text())["outputs"]
    assert set(outputs) == {"clip_to_text", "actions", "num_actions", "score", "probabilities"}
    episode = write_align_inputs(tmp_path, 0)
    assert len(outputs["clip_to_text"][0]) == episode.num_clips
    assert outputs["num_actions"][0] <= episode.num_clips + episode.num_texts
    assert set(outputs["actions"][0][: outputs["num_actions"][0]]) <= {0, 1, 2}
    document = json.loads((tmp_path / "alignment.json").read_text())
    aligned = np.full(episode.num_clips, -1)
    for entry in document["texts"]:
        aligned[entry["clips"]] = entry["index"]
    assert aligned.tolist() == outputs["clip_to_text"][0]  # curl and tfalign.align agree


def test_the_deploy_folder_is_valid_for_tf_serving():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((ROOT / "deploy" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [(m.name, m.base_path) for m in config.model_config_list.config] == [("tfalign", "/models/tfalign")]
    # BatchingParameters (session_bundle_config.proto) is not in tensorflow-serving-api: its fields by name.
    fields = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
              "pad_variable_length_inputs", "allowed_batch_sizes", "thread_pool_name", "enable_large_batch_splitting"}
    text = (ROOT / "deploy" / "batching_parameters.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    used = {re.match(r"(\w+)", line).group(1) for line in lines if line}
    assert used <= fields and {"max_batch_size", "pad_variable_length_inputs"} <= used
    script = ROOT / "deploy" / "serve.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "tensorflow/serving" in text and "/config/models.config" in text and "batching_parameters.txt" in text
