"""TF Serving warm-up requests: geometric buckets, the records an export writes,
their replay as TF Serving does it, and the in-process warm-up."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from conftest import make_episode
from fake_serving import replay_warmup, start_grpc
from tfalign.data.batching import episodes_request, make_dataset
from tfalign.errors import UserError
from tfalign.model import aligner_from_fields
from tfalign.data.length_buckets import bucket_size, bucket_sizes, pad_to_bucket
from tfalign.api.aligner import Aligner
from tfalign.serving.client import GrpcClient, LocalClient
from tfalign.serving.saved_model import export_saved_model
from tfalign.serving.warmup import WARMUP_FILE, WarmupSize, read_warmup_file, request_arrays, warmup_plan


@given(st.integers(1, 200_000))
def test_a_bucket_holds_its_length_with_at_most_a_quarter_of_padding(length):
    size = bucket_size(length)
    assert size >= length and size % 64 == 0
    assert size - length < max(64, length / 4)
    assert size in bucket_sizes(length) and bucket_sizes(length)[-1] == size
    assert bucket_size(size) == size  # a bucket is its own bucket


def test_few_shapes_cover_a_film():
    assert bucket_sizes(700) == [64, 128, 192, 256, 320, 384, 448, 512, 640, 768]
    assert len(bucket_sizes(4000)) == 20 and len(bucket_sizes(800)) == 11  # against 63 and 13 multiples of 64


@pytest.mark.parametrize("length", [1, 63, 64, 65, 511, 512, 513, 1000, 4097])
def test_in_graph_padding_matches_the_python_bucket(length):
    features = np.random.default_rng(length).normal(size=(2, length, 3)).astype(np.float32)
    unknown = tf.function(pad_to_bucket, input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    for padded in (pad_to_bucket(features).numpy(), unknown(features).numpy()):
        assert padded.shape == (2, bucket_size(length), 3)
        np.testing.assert_array_equal(padded[:, :length], features)
        assert not padded[:, length:].any()


@pytest.mark.parametrize("text, expected", [("512x192", (512, 192, 1)), ("64X64", (64, 64, 1)), ("none", (0, 0, 1)),
                                            ("0x0", (0, 0, 1)), ("4000x800x4", (4000, 800, 4))])
def test_warmup_sizes_parse(text, expected):
    size = WarmupSize.parse(text)
    assert (size.clips, size.texts, size.batch) == expected and size.enabled == (expected[:2] != (0, 0))


@pytest.mark.parametrize("text", ["512", "ax3", "512x0", "-1x5", "1x2x3x4", "64x64x0"])
def test_bad_warmup_sizes_are_one_line(text):
    with pytest.raises(UserError, match="warmup") as caught:
        WarmupSize.parse(text)
    assert "\n" not in str(caught.value)


def test_the_plan_warms_every_bucket_of_the_per_shape_signature_and_the_rest_once():
    plan = warmup_plan({"serving_default": True, "align_exact": False}, WarmupSize(130, 64))
    assert plan == [("serving_default", 64, 64, 1), ("serving_default", 128, 64, 1), ("serving_default", 192, 64, 1),
                    ("align_exact", 64, 64, 1)]
    assert warmup_plan({"serving_default": True}, WarmupSize(0, 0)) == []


def test_per_axis_signatures_meet_every_bucket_of_each_axis_at_every_batch_bucket():
    """What compiles per bucket of each axis (the stacks' loops) needs a request for each clip
    bucket and each text bucket, not their product; several videos: each power of two."""
    size = WarmupSize(4000, 800, batch=3)
    plan = warmup_plan({"align_exact": "axis"}, size)
    clips, texts = bucket_sizes(4000), bucket_sizes(800)
    for videos in (1, 2, 4):
        shapes = [(c, t) for _, c, t, b in plan if b == videos]
        assert {c for c, _ in shapes} == set(clips) and {t for _, t in shapes} == set(texts)
        assert len(shapes) == len(clips) + len(texts) - 1 and all(min(c, t) == 64 for c, t in shapes)
    assert {b for *_, b in plan} == {1, 2, 4}
    with pytest.raises(ValueError, match="align_exact"):
        warmup_plan({"align_exact": "sometimes"}, size)


def small_model():
    tf.keras.utils.set_random_seed(2)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=32, hidden_units=16, history=False,
                            position="normalized", similarity_units=8)
    model.build()
    episodes = [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, clip_dim=300, text_dim=300, seed=0)]
    model.training_outputs(next(iter(make_dataset(episodes, 1))), training=True)
    return model, episodes


@pytest.mark.large  # exports and a gRPC server
def test_an_export_carries_warmup_records_that_tf_serving_replays(tmp_path):
    model, episodes = small_model()
    path = export_saved_model(model, tmp_path / "model" / "1", decoding="exact", warmup=WarmupSize(128, 64))
    assert (path / WARMUP_FILE).is_file()
    logs = read_warmup_file(path)
    plan = [(name, inputs["clip_features"].shape, int(inputs["clip_lengths"][0]))
            for name, inputs in map(request_arrays, logs)]
    # serving_default decodes exactly (its stacks' loops compile per bucket of each axis);
    # align_greedy (XLA, whole) at every (clip, text) bucket pair: here the same two.
    assert plan == [("serving_default", (1, 64, 300), 64), ("serving_default", (1, 128, 300), 128),
                    ("align_greedy", (1, 64, 300), 64), ("align_greedy", (1, 128, 300), 128)]
    assert (path / WARMUP_FILE).stat().st_size < 10_000  # zeros as one broadcast value
    assert replay_warmup(path) == 4
    server, target = start_grpc(path.parent, name="model", warmup=True)  # the stand-in loads and warms it
    try:
        served = GrpcClient(target, "model").align(episodes_request(episodes))
    finally:
        server.stop(0)
    expected = LocalClient(path).align(episodes_request(episodes))
    np.testing.assert_array_equal(served["clip_to_text"], expected["clip_to_text"])

    none = export_saved_model(model, tmp_path / "none", warmup=WarmupSize(0, 0))
    assert not (none / WARMUP_FILE).exists() and read_warmup_file(none) == []


def test_in_process_warm_up_leaves_nothing_to_compile_for_one_video():
    model, _ = small_model()
    aligner = Aligner(model, decoding="greedy")
    assert aligner.warm_up(WarmupSize(128, 64)) == 2
    decoder = model.compiled_decoder("greedy")
    traced = decoder.experimental_get_tracing_count()
    rng = np.random.default_rng(0)
    for clips, texts in ((100, 50), (128, 64), (65, 1)):
        aligner.align(rng.normal(size=(clips, 300)), rng.normal(size=(texts, 300)))
    assert decoder.experimental_get_tracing_count() == traced  # every shape was already compiled
    aligner.align(rng.normal(size=(129, 300)), rng.normal(size=(10, 300)))  # a bucket not warmed
    assert decoder.experimental_get_tracing_count() == traced + 1


@pytest.mark.large  # six XLA compilations
def test_a_request_of_any_number_of_videos_meets_a_warmed_batch_bucket():
    """Three videos in one request are padded to the warmed batch of four (pad_request_to_buckets):
    nothing compiles, and each video aligns as it does alone."""
    model, _ = small_model()
    aligner = Aligner(model, decoding="greedy")
    assert aligner.warm_up(WarmupSize(128, 64, batch=4)) == 2 * 3  # two shapes at batches 1, 2 and 4
    decoder = model.compiled_decoder("greedy")
    traced = decoder.experimental_get_tracing_count()
    rng = np.random.default_rng(1)
    clips, texts = [rng.normal(size=(n, 300)) for n in (100, 70, 90)], [rng.normal(size=(n, 300)) for n in (50, 9, 30)]
    together = aligner.align(clips, texts)
    assert decoder.experimental_get_tracing_count() == traced
    for i, alignment in enumerate(together):
        np.testing.assert_array_equal(aligner.align(clips[i], texts[i]).clip_to_text, alignment.clip_to_text)
