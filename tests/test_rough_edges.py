"""What a new user tripped on, each pinned: one precise line, the help that explains,
nothing printed that is not theirs."""

import os
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import tfalign
from tfalign.errors import UserError


def test_episode_labels_of_the_wrong_length_order_or_type_name_clip_to_text():
    clips, texts = np.zeros((4, 3)), np.zeros((2, 3))
    for labels, expected in (([0, 0, 1], "expected shape \\[4\\]"), ([0, 1, 0, 1], "not monotone"),
                             ([0.5, 0, 1, 1], "expected integer text indices"), ([0.0, 0.0, 1.0, 1.0], "integer"),
                             ([0, 0, 1, 2], "entries must be -1")):
        with pytest.raises(tfalign.EpisodeError, match=f"field 'clip_to_text': .*{expected}"):
            tfalign.Episode(clip_features=clips, text_features=texts, clip_to_text=labels)


@pytest.fixture(scope="module")
def aligner():
    import keras

    keras.utils.set_random_seed(0)
    model = tfalign.LatticeAligner(tfalign.NeuMatchBackbone(units=8, similarity_units=4), hidden_units=6,
                                   position="normalized")
    model.build()
    return tfalign.Aligner(model)


def test_align_names_the_argument_that_is_wrong(aligner):
    with pytest.raises(UserError, match="^clips: expected one video's \\[T, 300\\] array or a list of them, got "
                                        "shape \\[300\\]"):
        aligner.align(np.zeros(300), np.zeros((2, 300)))
    with pytest.raises(UserError, match="^clips: a list of lists is read as a batch of videos"):
        aligner.align(np.zeros((3, 300)).tolist(), np.zeros((2, 300)))
    with pytest.raises(UserError, match="^texts: expected one video's"):
        aligner.align(np.zeros((3, 300)), np.zeros(300))


def test_evaluate_wants_labelled_episodes(aligner):
    with pytest.raises(UserError, match="^episodes: expected a list of labelled tfalign.Episode") as caught:
        tfalign.evaluate(aligner, [(np.zeros((3, 300)), np.zeros((2, 300)))])
    assert caught.value.field == "episodes"


def test_a_preset_under_a_file_and_a_span_out_of_range_are_errors(aligner, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=f"folder: .*{tmp_path / 'file'} is a file"):
        aligner.save_to_preset(tmp_path / "file" / "preset")
    with pytest.raises(UserError, match="folder: .* is a file; expected a preset folder"):
        aligner.save_to_preset(tmp_path / "file")
    alignment = tfalign.Alignment(clip_to_text=np.array([0, 0, -1, 1]), num_texts=2)
    assert alignment.text_span(1) == (3.0, 4.0) and alignment.text_span(-1) == (3.0, 4.0)
    for bad in (2, -3, 1.5):
        with pytest.raises(UserError, match="text: expected a text index in \\[0, 2\\)"):
            alignment.text_span(bad)


@pytest.mark.parametrize("target", ["train", "evaluate", "Aligner.from_preset", "Aligner.from_saved_model",
                                    "Aligner.align", "Aligner.align_video"])
def test_help_shows_args_returns_and_an_example(target):
    obj = tfalign
    for part in target.split("."):
        obj = getattr(obj, part)
    text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    assert "Args:" in text and "Returns:" in text and "Example:" in text, target


@pytest.mark.large  # a process of its own
def test_import_and_align_print_nothing_of_tensorflows():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "TFALIGN_VERBOSE"))}
    code = ("import tfalign\nimport numpy as np, keras\n"
            "keras.utils.set_random_seed(0)\n"
            "m = tfalign.LatticeAligner(tfalign.NeuMatchBackbone(units=8, similarity_units=4), hidden_units=6, "
            "position='normalized')\n"
            "m.build()\n"
            "a = tfalign.Aligner(m)\n"
            "for n in (3, 5, 9, 17, 33, 70):\n"
            "    a.align(np.zeros((n, 300)), np.zeros((2 + n // 3, 300)))\n"
            "    a.align(np.zeros((n, 300)), np.zeros((2 + n // 3, 300)), decoding='greedy')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr == "", done.stderr[-2000:]


def test_pipelines_without_beam_say_which_extra(tmp_path):
    fake = tmp_path / "apache_beam"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no Beam here')\n")
    for command in ("pipelines.videos", "pipelines.features", "pipelines.prepare"):
        done = subprocess.run([sys.executable, "-m", command, "--help"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=300)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [
            f'error: python -m {command} needs Apache Beam, which is not installed: pip install -e ".[pipelines]"']


def test_help_texts_keep_their_examples_and_say_their_defaults():
    from tfalign import align
    from tfalign.evaluate import build_parser as evaluate_parser

    text = align.build_parser().format_help()
    assert "--clips episode/clips.npy \\\n      --texts episode/texts.npy" in text
    dataset = " ".join(evaluate_parser().format_help().split()).replace("- ", "-")
    assert "for a --baseline, yms-synthetic" in dataset


def test_the_timeline_names_each_text_by_its_first_words(tmp_path):
    from tfalign.serving.document import plot_timeline, text_label

    assert text_label(3, "A man walks into the bar and sits down.", 0.5) == "3 A man walks into the bar and sits down."
    assert text_label(3, "A man walks into the bar and sits down.", 0.1) == "3 A man walks into th…"
    assert text_label(12, "Words", 0.01) == "12" and text_label(4, None, 0.5) == "4"
    alignment = tfalign.Alignment(clip_to_text=np.array([0, 0, -1, 1]), num_texts=2, texts=["Hello there.", "Bye."])
    plot_timeline(alignment.to_dict(), alignment.clip_times, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_new_shapes_do_not_retrace_without_bound(aligner):
    from tfalign.data.length_buckets import bucket_size

    shapes = [(n, 2 + n // 3) for n in (3, 5, 9, 17, 33, 70, 71, 130)]
    for clips, texts in shapes:
        aligner.align(np.zeros((clips, 300)), np.zeros((texts, 300)), decoding="exact")
        aligner.align(np.zeros((clips, 300)), np.zeros((texts, 300)), decoding="greedy")
    model = aligner.model
    assert model.compiled_decoder("exact", confidence=True).experimental_get_tracing_count() == 1
    buckets = {(bucket_size(c), bucket_size(t)) for c, t in shapes}
    assert model.compiled_decoder("greedy").experimental_get_tracing_count() <= len(buckets) < len(shapes)
