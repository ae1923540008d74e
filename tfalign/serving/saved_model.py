"""Exporting a trained aligner as a SavedModel whose signature aligns.

``serving_default`` takes padded features in *natural* order and their
lengths, reverses them inside the graph, runs the encoders, stacks and the
decoder, and returns what ``AlignerTask.align`` returns: the action
sequence, its length, the clip-to-text assignment (-1 = unmatched), the
path's log-probability (``score``) and the decoder's action probabilities at
each step; exact decoding, and a CRF model's (the recipe's) greedy decoding, also
each clip's posterior ``clip_confidence``. It
decodes as the run does: greedily (the decoder's
tf.while_loop), or, for a decoder without history, by the exact best path
over the (clip, text) lattice. ``align_greedy`` and (without history)
``align_exact`` name each decoding; ``action_probabilities`` is
``align_greedy`` under the name older clients call.
"""

from __future__ import annotations

import pathlib
import shutil

import tensorflow as tf

from tfalign.files import atomic_path, remove_leftovers, replace_folder, writing
from tfalign.data.decoding_choice import Decoding
from tfalign.serving.warmup import WarmupSize, prediction_logs, warmup_plan, write_warmup_file

# What the alignment signatures return, as AlignerTask.align does; the confidences (each clip's
# and each video's) where there are posteriors: exact decoding, a CRF model's greedy too.
OUTPUT_KEYS = ("actions", "num_actions", "clip_to_text", "score", "probabilities", "clip_confidence",
               "video_confidence")


def _check_request(widths, clip_features, text_features, clip_lengths, text_lengths):
    """Bad requests fail with a message naming the input, not a garbage alignment.
    Rank and a batch of at least one row are checked before any other shape is read."""
    checks = []
    for name, features, lengths, lengths_name, width in (
            ("clip_features", clip_features, clip_lengths, "clip_lengths", widths[0]),
            ("text_features", text_features, text_lengths, "text_lengths", widths[1])):
        checks += [
            tf.debugging.assert_rank(features, 3, message=f"{name}: expected rank 3 ([B, T, {width}])"),
            tf.debugging.assert_rank(lengths, 1, message=f"{lengths_name}: expected rank 1 ([B])"),
            tf.debugging.assert_greater_equal(tf.shape(features)[0], 1,
                                              message=f"{name}: expected a batch of at least one row"),
            tf.debugging.assert_greater_equal(tf.shape(features)[1], 1,
                                              message=f"{name}: expected at least one element a row"),
        ]
    with tf.control_dependencies(checks):
        clip_features, text_features = tf.identity(clip_features), tf.identity(text_features)
    for name, features, lengths, lengths_name, width in (
            ("clip_features", clip_features, clip_lengths, "clip_lengths", widths[0]),
            ("text_features", text_features, text_lengths, "text_lengths", widths[1])):
        checks += [
            tf.debugging.assert_equal(tf.shape(features)[2], width,
                                      message=f"{name}: expected feature width {width} ([B, T, {width}])"),
            tf.debugging.assert_equal(tf.shape(features)[0], tf.shape(lengths)[0],
                                      message=f"{lengths_name}: expected one length per row of {name}"),
            tf.debugging.assert_greater_equal(lengths, 1, message=f"{lengths_name}: every length must be >= 1"),
            tf.debugging.assert_less_equal(lengths, tf.shape(features)[1],
                                           message=f"{lengths_name}: a length is larger than the padded size of "
                                                   f"{name}"),
            tf.debugging.assert_all_finite(features, message=f"{name}: holds NaN or inf"),
        ]
    checks.append(tf.debugging.assert_equal(tf.shape(clip_features)[0], tf.shape(text_features)[0],
                                            message="clip_features and text_features: batch sizes differ"))
    return checks


class AlignmentModule(tf.Module):
    def __init__(self, model, decoding="greedy", xla=True):
        super().__init__()
        self.xla = xla
        decoding = Decoding.check(decoding, model.decoder_history)
        self.model, self.decoding = model, decoding
        clip_dim, text_dim = model.input_widths
        spec = (tf.TensorSpec([None, None, clip_dim], tf.float32, "clip_features"),
                tf.TensorSpec([None, None, text_dim], tf.float32, "text_features"),
                tf.TensorSpec([None], tf.int32, "clip_lengths"), tf.TensorSpec([None], tf.int32, "text_lengths"))
        self.align_greedy = tf.function(self._align_greedy, input_signature=spec, autograph=False)
        self.align_exact = (tf.function(self._align_exact, input_signature=spec, autograph=False)
                            if "exact" in Decoding.available(model.decoder_history) else None)
        # The default signature is one of the two functions, not a copy: traced and stored once.
        self.align = self.align_greedy if decoding == "greedy" else self.align_exact
        self.probabilities = self.align_greedy

    def _checked_inputs(self, clip_features, text_features, clip_lengths, text_lengths):
        checks = _check_request(self.model.input_widths, clip_features, text_features, clip_lengths, text_lengths)
        with tf.control_dependencies(checks):  # no op reads an input before it is checked
            clip_features, text_features = tf.identity(clip_features), tf.identity(text_features)
            clip_lengths, text_lengths = tf.identity(clip_lengths), tf.identity(text_lengths)
        return {"clip_features": clip_features, "text_features": text_features, "clip_lengths": clip_lengths,
                "text_lengths": text_lengths}

    def _align_greedy(self, clip_features, text_features, clip_lengths, text_lengths):
        return self._align("greedy", clip_features, text_features, clip_lengths, text_lengths)

    def _align_exact(self, clip_features, text_features, clip_lengths, text_lengths):
        return self._align("exact", clip_features, text_features, clip_lengths, text_lengths)

    def _align(self, decoding_name, *request):
        """The checked request through the model's own ``align`` (what ``Aligner.align`` runs in
        process): greedily, the request padded to its buckets and the decoder XLA-compiled for
        each (on the first request of that shape, or when TF Serving loads the version and
        replays its warm-up requests)."""
        out = self.model.make_align_function(decoding_name, xla=self.xla)(self._checked_inputs(*request))
        return {key: out[key] for key in OUTPUT_KEYS if key in out}  # confidences where align has them


def export_saved_model(model, path, decoding="greedy", assets=None, xla=True,
                       warmup: WarmupSize | None = None) -> pathlib.Path:
    """Writes the SavedModel at ``path`` (through a temporary folder, then a rename).

    ``xla``: the greedy decoder runs XLA-compiled, per request shape padded to
    its geometric bucket (as fast as in process); TF Serving then needs
    ``--xla_cpu_compilation_enabled=true`` (deploy/serve.sh passes it). Without,
    the decoder runs op by op (about 3x slower), on any server.

    ``warmup`` (default ``WarmupSize()``: every bucket up to 512 clips x 192
    texts): the TF Serving warm-up requests written to
    ``assets.extra/tf_serving_warmup_requests`` (serving/warmup.py), so that
    no live request pays a compilation; ``WarmupSize(0, 0)`` writes none.

    ``assets`` (file name -> text; serving.model_card.export_assets) are
    written into its ``assets/`` folder before the rename.

    keras.export.ExportArchive tracks the Keras 3 variables as plain
    tf.Variables, which TF Serving's (and saved_model_cli's) TF1-style loader
    needs; tf.saved_model.save of the module alone is not enough for that.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent, f".{path.name}.tmp-*")  # of a killed earlier export
    tmp = atomic_path(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with writing("the SavedModel", path):
            _write_archive(model, tmp, decoding, assets, xla)
            write_warmup_file(tmp, prediction_logs(
                warmup_plan(warmup_signatures(model, decoding, xla), warmup or WarmupSize()), model.input_widths))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, path)  # a re-export swaps the folders atomically
    return path


def warmup_signatures(model, decoding: str, xla: bool) -> dict[str, str]:
    """The signatures an export's warm-up runs -> what each compiles (serving/warmup.py).

    The XLA greedy decoder of a model without the CRF compiles whole per shape
    ("pair"): ``serving_default`` when it decodes greedily, else ``align_greedy``.
    Every decoder of a model whose stacks are plain LSTMs compiles their loops per
    length bucket ("axis"); other signatures compile nothing ("once"). The
    signatures that share a function with a warmed one are left out.
    """
    stacks = "axis" if xla and model.compiles_stacks else "once"
    greedy = "pair" if xla and not model.dtw_start else stacks
    names = {"serving_default": greedy if decoding == "greedy" else stacks}
    if decoding != "greedy":
        names["align_greedy"] = greedy
    if decoding != "exact" and "exact" in Decoding.available(model.decoder_history):
        names["align_exact"] = stacks
    return names


def _write_archive(model, tmp: pathlib.Path, decoding: str, assets, xla: bool) -> None:
    import keras

    module = AlignmentModule(model, decoding, xla=xla)
    archive = keras.export.ExportArchive()
    # No archive.track(model): it would list the model's Keras variables beside the
    # tf.Variables the endpoints capture (_all_variables), and the SavedModel would
    # store every weight twice (keras issue 23553). The endpoints' own are all it needs.
    archive.add_endpoint("serving_default", module.align)
    archive.add_endpoint("align_greedy", module.align_greedy)
    if module.align_exact is not None:
        archive.add_endpoint("align_exact", module.align_exact)
    archive.add_endpoint("action_probabilities", module.probabilities)
    archive.write_out(str(tmp), verbose=False)
    (tmp / "assets").mkdir(exist_ok=True)
    for name, text in (assets or {}).items():
        (tmp / "assets" / name).write_text(text, encoding="utf-8")
