"""Warm-up requests: every compilation paid before the first live request.

What is XLA-compiled is compiled once per padded request shape (the time axes
go to geometric buckets, the batch axis to powers of two: data/length_buckets.py).
The greedy decoder of a model without the CRF is compiled whole, per (clip
bucket, text bucket) pair, 2-3 s each on two CPU cores ("pair"); otherwise only
the stacks' LSTM loops are, each per length and batch bucket of its own axis, a
fraction of a second each ("axis": a request for every clip bucket and every
text bucket is enough). TF Serving replays the records of a SavedModel's
``assets.extra/tf_serving_warmup_requests`` (a TFRecord file of
``PredictionLog`` protos) when it loads a version, before it serves it; an
export writes those requests up to a declared size (``WarmupSize``), and one
for each signature that compiles nothing ("once": its first run builds the
graph's kernels). ``Aligner.warm_up`` runs the same shapes in process.

The requests hold zeros, written as one value broadcast to the shape (a
TensorProto with a single ``float_val``), so the file stays a few kilobytes
whatever the sizes.
"""

from __future__ import annotations

import dataclasses
import pathlib

from tfalign.errors import UserError
from tfalign.data.length_buckets import batch_buckets, bucket_sizes

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"


@dataclasses.dataclass(frozen=True)
class WarmupSize:
    """The largest request a warm-up covers: every bucket up to ``clips`` x ``texts``,
    in requests of up to ``batch`` videos (each power of two up to it: a request
    of any number of videos up to ``batch`` is padded to one of them).

    The default holds every video of the embedded data (396 clips, 154 texts at
    most): 8 clip buckets x 3 text buckets, 24 compilations when a version loads
    for the greedy decoder compiled whole. ``clips = 0`` turns warm-up off.
    """
    clips: int = 512
    texts: int = 192
    batch: int = 1

    def __post_init__(self):
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise UserError(f"warmup.batch: expected a whole number >= 1, got {self.batch!r}", field="warmup")
        for name in ("clips", "texts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserError(f"warmup.{name}: expected a whole number >= 0, got {value!r}", field="warmup")
        if (self.clips == 0) != (self.texts == 0):
            raise UserError(f"warmup: expected both sizes > 0, or 0x0 for none, got {self.clips}x{self.texts}",
                            field="warmup")

    @classmethod
    def parse(cls, text: str) -> WarmupSize:
        """``"CLIPSxTEXTS"`` (``"512x192"``), ``"CLIPSxTEXTSxBATCH"`` (``"4000x800x4"``: requests
        of up to 4 videos too), or ``"none"`` / ``"0x0"`` for no warm-up."""
        if text.strip().lower() == "none":
            return cls(0, 0)
        parts = text.lower().split("x")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
            raise UserError(f"warmup: expected CLIPSxTEXTS or CLIPSxTEXTSxBATCH (as 512x192 or 4000x800x4) or "
                            f"'none', got {text!r}", field="warmup")
        return cls(*(int(p) for p in parts))

    @property
    def enabled(self) -> bool:
        return self.clips > 0

    def shapes(self) -> list[tuple[int, int]]:
        """The (clips, texts) bucket shapes to compile, smallest first."""
        if not self.enabled:
            return []
        return [(c, t) for c in bucket_sizes(self.clips) for t in bucket_sizes(self.texts)]

    def axis_shapes(self) -> list[tuple[int, int]]:
        """(clips, texts) shapes that meet every clip bucket and every text bucket, each beside
        the smallest bucket of the other axis (what compiles per axis needs no more, and a
        film's clips beside 64 texts cost little to run), smallest first."""
        if not self.enabled:
            return []
        clips, texts = bucket_sizes(self.clips), bucket_sizes(self.texts)
        return [(c, texts[0]) for c in clips] + [(clips[0], t) for t in texts[1:]]


MODES = ("pair", "axis", "once")


def warmup_plan(signatures: dict[str, str | bool], size: WarmupSize) -> list[tuple[str, int, int, int]]:
    """(signature, clips, texts, videos) for each warm-up request.

    Args:
        signatures: signature name -> what it compiles: "pair" (per (clip, text)
            bucket pair: the XLA greedy decoder; ``True`` says the same), "axis"
            (per bucket of each axis: the stacks' loops) or "once" (nothing
            per shape; ``False``).
        size: the largest shape to warm, and the most videos a request.

    Returns:
        For "pair" and "axis" signatures their shapes at every batch bucket up to
        ``size.batch``, for the others the smallest shape once.
    """
    shapes = {"pair": size.shapes(), "axis": size.axis_shapes(), "once": size.shapes()[:1]}
    plan = []
    for name, mode in signatures.items():
        mode = {True: "pair", False: "once"}.get(mode, mode)
        if mode not in MODES:
            raise ValueError(f"warmup_plan: {name}: expected one of {MODES}, got {mode!r}")
        batches = batch_buckets(size.batch) if mode != "once" else [1]
        plan += [(name, c, t, b) for b in batches for c, t in shapes[mode]]
    return plan


def zeros_request(clips: int, texts: int, widths: tuple[int, int], videos: int = 1) -> dict:
    """A request of ``videos`` all-zero videos of ``clips`` x ``texts`` (numpy arrays)."""
    import numpy as np

    return {"clip_features": np.zeros([videos, clips, widths[0]], np.float32),
            "text_features": np.zeros([videos, texts, widths[1]], np.float32),
            "clip_lengths": np.full([videos], clips, np.int32), "text_lengths": np.full([videos], texts, np.int32)}


def prediction_logs(plan, widths: tuple[int, int], model_name: str = "tfalign") -> list:
    """``PredictionLog`` protos (tensorflow_serving.apis) for a warm-up plan."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    def broadcast(shape, dtype, value):
        proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
        (proto.float_val if dtype == types_pb2.DT_FLOAT else proto.int_val).append(value)
        return proto

    logs = []
    for signature, clips, texts, videos in plan:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        request.inputs["clip_features"].CopyFrom(broadcast([videos, clips, widths[0]], types_pb2.DT_FLOAT, 0.0))
        request.inputs["text_features"].CopyFrom(broadcast([videos, texts, widths[1]], types_pb2.DT_FLOAT, 0.0))
        request.inputs["clip_lengths"].CopyFrom(broadcast([videos], types_pb2.DT_INT32, clips))
        request.inputs["text_lengths"].CopyFrom(broadcast([videos], types_pb2.DT_INT32, texts))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_file(saved_model_dir, logs) -> pathlib.Path | None:
    """Writes ``logs`` as the SavedModel's TF Serving warm-up file (none when empty)."""
    import tensorflow as tf

    if not logs:
        return None
    path = pathlib.Path(saved_model_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(saved_model_dir) -> list:
    """The ``PredictionLog`` records of a SavedModel's warm-up file ([] when it has none)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = pathlib.Path(saved_model_dir) / WARMUP_FILE
    if not path.exists():
        return []
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]


def request_arrays(log) -> tuple[str, dict]:
    """A warm-up record as TF Serving runs it: (signature name, inputs as numpy arrays)."""
    import tensorflow as tf

    request = log.predict_log.request
    return request.model_spec.signature_name, {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
