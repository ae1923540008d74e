import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("apache_beam")
pytest.importorskip("keras_hub")

from pipelines.feature_store import clip_id, read_shard, text_id, write_shard  # noqa: E402
from pipelines.sources import yms_skeletons  # noqa: E402
from tfalign.data import records  # noqa: E402

pytestmark = pytest.mark.large  # subprocesses, servers or training runs

WORDS = ["red", "green", "blue", "dog", "car", "man", "runs", "walks", "sits", "the"]
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (200, 200, 30)]


def run(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def make_corpus(folder):
    """Five videos of central frames (coloured by their text's concept) and texts."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "frames").mkdir()
    elements, videos = [], []
    for v, split in enumerate(["train", "train", "train", "val", "test"]):
        vid = f"video{v}"
        clips, texts, t = [], [], 0.0
        for j in range(3):
            concept = int(rng.integers(len(COLOURS)))
            texts.append({"id": text_id(vid, j), "start": t, "end": t + 2.0,
                          "text": f"the {WORDS[concept]} {WORDS[3 + j]} {WORDS[6 + concept % 3]}"})
            for k in range(2):
                i = len(clips)
                clips.append({"id": clip_id(vid, i), "start": t + k, "end": t + k + 1.0, "text": texts[-1]["id"]})
                noise = rng.integers(0, 30, size=(32, 32, 3))
                Image.fromarray(np.clip(np.asarray(COLOURS[concept]) + noise, 0, 255).astype(np.uint8)).save(
                    folder / "frames" / f"{vid}_{i}.png")
                elements.append({"id": clips[-1]["id"], "kind": "clip", "image": f"frames/{vid}_{i}.png"})
            t += 2.0
        clips.append({"id": clip_id(vid, len(clips)), "start": t, "end": t + 1.0, "text": None})  # unmatched
        frame = rng.integers(0, 255, size=(32, 32, 3)).astype(np.uint8)
        Image.fromarray(frame).save(folder / "frames" / f"{vid}_u.png")
        elements.append({"id": clips[-1]["id"], "kind": "clip", "image": f"frames/{vid}_u.png"})
        elements += [{"id": x["id"], "kind": "text", "text": x["text"]} for x in texts]
        videos.append({"video_id": vid, "split": split, "clips": clips, "texts": texts})
    # Dead letters: a clip whose frame is missing (its video must be rejected), a broken line.
    videos.append({"video_id": "broken", "split": "train",
                   "clips": [{"id": clip_id("broken", 0), "start": 0, "end": 1, "text": text_id("broken", 0)}],
                   "texts": [{"id": text_id("broken", 0), "start": 0, "end": 1}]})
    elements.append({"id": clip_id("broken", 0), "kind": "clip", "image": "frames/missing.png"})
    elements.append({"id": text_id("broken", 0), "kind": "text", "text": "the dog"})
    (folder / "elements.jsonl").write_text("\n".join(map(json.dumps, elements)) + "\n")
    (folder / "videos.jsonl").write_text("\n".join(map(json.dumps, videos)) + "\n{not json\n")
    (folder / "tiny_bert.json").write_text(json.dumps({
        "vocabulary": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS], "num_layers": 1, "num_heads": 2,
        "hidden_dim": 16, "intermediate_dim": 32, "sequence_length": 12}))


def test_frames_and_texts_to_features_to_episodes_to_training(tmp_path):
    make_corpus(tmp_path)
    out = run("pipelines.features", "--elements", str(tmp_path / "elements.jsonl"), "--out", str(tmp_path / "features"),
              "--image-size", "32", "--text-config", str(tmp_path / "tiny_bert.json"), "--num-shards", "2")
    assert "clips encoded: 35, texts encoded: 16, rejected: 1" in out
    vectors = dict(kv for shard in (tmp_path / "features").glob("features-*.npz") for kv in read_shard(shard))
    assert vectors[clip_id("video0", 0)].shape == (576,) and vectors[text_id("video0", 0)].shape == (16,)
    missing = json.loads((tmp_path / "features" / "rejected.jsonl").read_text().splitlines()[0])
    assert missing["id"] == clip_id("broken", 0) and "image" in missing["reason"]

    out = run("pipelines.prepare", "--annotations", f"jsonl:{tmp_path / 'videos.jsonl'}",
              "--features", str(tmp_path / "features" / "*.npz"), "--out", str(tmp_path / "episodes"),
              "--project", "300")
    assert "episodes written: {'train': 3, 'val': 1, 'test': 1} (5 in all); rejected: 2" in out
    rejected = (tmp_path / "episodes" / "rejected.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["reason"] for line in rejected]
    assert any("no feature for 1 element(s)" in r for r in reasons) and any("not valid JSON" in r for r in reasons)
    train = records.read_tfrecords(tmp_path / "episodes" / "train")
    assert len(train) == 3 and train[0].clip_features.shape == (7, 300) and train[0].text_features.shape == (3, 300)
    assert train[0].clip_to_text.tolist() == [0, 0, 1, 1, 2, 2, -1]
    manifest = json.loads((tmp_path / "episodes" / "train" / "manifest.json").read_text())
    assert manifest["num_clips"] == 21 and manifest["projection"]["output_dim"] == 300

    run("tfalign.train", "--experiment", "rp_adam_sbn", "--dataset", f"tfrecord:{tmp_path / 'episodes'}",
        "--epochs", "1", "--batch-size", "2", "--no-export", "--output-dir", str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_clip_accuracy"]["test"]["videos"] == 1


def test_a_vision_language_preset_encodes_both_sides_into_one_space(tmp_path):
    from tiny_vision_language import WIDTH, save_tiny_clip

    make_corpus(tmp_path)
    preset = save_tiny_clip(tmp_path / "clip")
    out = run("pipelines.features", "--elements", str(tmp_path / "elements.jsonl"), "--out", str(tmp_path / "features"),
              "--encoder", preset)
    assert "clips encoded: 35, texts encoded: 16, rejected: 1" in out
    vectors = dict(kv for shard in (tmp_path / "features").glob("features-*.npz") for kv in read_shard(shard))
    clip, text = vectors[clip_id("video0", 0)], vectors[text_id("video0", 0)]
    assert clip.shape == text.shape == (WIDTH,)
    np.testing.assert_allclose([np.linalg.norm(clip), np.linalg.norm(text)], 1.0, rtol=1e-5)
    record = json.loads((tmp_path / "features" / "feature_extractors.json").read_text())
    assert record["vision_language"] == str((tmp_path / "clip").resolve())


def test_yms_annotations_through_preparation_match_the_foundation_checks(yms_dir, tmp_path):
    skeletons = yms_skeletons(yms_dir)
    rng = np.random.default_rng(0)
    for shard, chunk in enumerate(np.array_split(np.arange(len(skeletons)), 3)):
        vectors = {}
        for s in (skeletons[i] for i in chunk):
            vectors.update({i: rng.normal(size=8) for i in s["clip_ids"]})
            vectors.update({i: rng.normal(size=6) for i in s["text_ids"]})
        write_shard(tmp_path / "features" / f"features-{shard:05d}-of-00003.npz", vectors)
    out = run("pipelines.prepare", "--annotations", f"yms:{yms_dir}", "--features",
              str(tmp_path / "features" / "*.npz"), "--out", str(tmp_path / "episodes"), "--num-shards", "2")
    assert "episodes written: {'train': 66, 'val': 12, 'test': 15} (93 in all); rejected: 0" in out
    episodes = {s: records.read_tfrecords(tmp_path / "episodes" / s) for s in ("train", "val", "test")}
    assert sum(e.num_clips for es in episodes.values() for e in es) == 16_802  # 16,960 less 0087's
    assert sum(e.num_texts for es in episodes.values() for e in es) == 5_933
    held_out = episodes["val"] + episodes["test"]
    assert max(e.num_clips for e in held_out) == 249 and max(e.num_texts for e in held_out) == 95
    assert max(e.num_actions for e in held_out) == 317


def test_features_from_tf_hub_savedmodels_report_progress_quietly(tmp_path):
    pytest.importorskip("tensorflow_hub")
    from test_pipeline_encoders import write_hub_models

    make_corpus(tmp_path)
    write_hub_models(tmp_path / "hub")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TFALIGN_PROGRESS_SECONDS": "0"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-m", "pipelines.features", "--elements", str(tmp_path / "elements.jsonl"),
                           "--out", str(tmp_path / "features"), "--image-size", "32",
                           "--image-hub", str(tmp_path / "hub" / "image"), "--text-hub",
                           str(tmp_path / "hub" / "text")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clips encoded: 35, texts encoded: 16, rejected: 1" in done.stdout
    assert done.stdout.splitlines()[0].startswith("encoding 52 elements of")
    assert "encoded 51/52" in done.stdout  # progress lines in a log (the broken frame is not encoded)
    assert done.stderr == ""  # no TensorFlow or Beam start-up noise, no random-weights warning
    vectors = dict(kv for shard in (tmp_path / "features").glob("features-*.npz") for kv in read_shard(shard))
    assert vectors[clip_id("video0", 0)].shape == (8,) and vectors[text_id("video0", 0)].shape == (5,)
