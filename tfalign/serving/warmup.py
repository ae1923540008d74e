"""Warm-up requests: every compilation paid before the first live request.

The greedy decoder is XLA-compiled once per padded request shape (the time
axes go to geometric buckets, model/classifier_inputs.py), 2-3 s each on two CPU
cores. TF Serving replays the records of a SavedModel's
``assets.extra/tf_serving_warmup_requests`` (a TFRecord file of
``PredictionLog`` protos) when it loads a version, before it serves it; an
export writes one request for every (clip bucket, text bucket) up to a size,
for the signatures that compile per shape, and one for each other signature
(their first run builds the graph's kernels). ``Aligner.warm_up`` runs the
same shapes in process.

The requests hold zeros, written as one value broadcast to the shape (a
TensorProto with a single ``float_val``), so the file stays a few kilobytes
whatever the sizes.
"""

from __future__ import annotations

import dataclasses
import pathlib

from tfalign.errors import UserError
from tfalign.model.classifier_inputs import bucket_sizes

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"


@dataclasses.dataclass(frozen=True)
class WarmupSize:
    """The largest request a warm-up covers: every bucket up to ``clips`` x ``texts``.

    The default holds every video of the embedded data (396 clips, 154 texts at
    most): 8 clip buckets x 3 text buckets, 24 compilations when a version loads.
    ``clips = 0`` turns warm-up off.
    """
    clips: int = 512
    texts: int = 192

    def __post_init__(self):
        for name in ("clips", "texts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserError(f"warmup.{name}: expected a whole number >= 0, got {value!r}", field="warmup")
        if (self.clips == 0) != (self.texts == 0):
            raise UserError(f"warmup: expected both sizes > 0, or 0x0 for none, got {self.clips}x{self.texts}",
                            field="warmup")

    @classmethod
    def parse(cls, text: str) -> WarmupSize:
        """``"CLIPSxTEXTS"`` (``"512x192"``), or ``"none"`` / ``"0x0"`` for no warm-up."""
        if text.strip().lower() == "none":
            return cls(0, 0)
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise UserError(f"warmup: expected CLIPSxTEXTS (as 512x192) or 'none', got {text!r}", field="warmup")
        return cls(int(parts[0]), int(parts[1]))

    @property
    def enabled(self) -> bool:
        return self.clips > 0

    def shapes(self) -> list[tuple[int, int]]:
        """The (clips, texts) bucket shapes to compile, smallest first."""
        if not self.enabled:
            return []
        return [(c, t) for c in bucket_sizes(self.clips) for t in bucket_sizes(self.texts)]


def warmup_plan(signatures: dict[str, bool], size: WarmupSize) -> list[tuple[str, int, int]]:
    """(signature, clips, texts) for each warm-up request.

    Args:
        signatures: signature name -> whether it compiles per request shape
            (the XLA greedy decoder) or once (op by op, or the exact decoder).
        size: the largest shape to warm.

    Returns:
        Every bucket shape for the per-shape signatures, the smallest for the others.
    """
    shapes = size.shapes()
    plan = []
    for name, per_shape in signatures.items():
        plan += [(name, c, t) for c, t in (shapes if per_shape else shapes[:1])]
    return plan


def zeros_request(clips: int, texts: int, widths: tuple[int, int]) -> dict:
    """A request of one all-zero video of ``clips`` x ``texts`` (numpy arrays)."""
    import numpy as np

    return {"clip_features": np.zeros([1, clips, widths[0]], np.float32),
            "text_features": np.zeros([1, texts, widths[1]], np.float32),
            "clip_lengths": np.asarray([clips], np.int32), "text_lengths": np.asarray([texts], np.int32)}


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
    for signature, clips, texts in plan:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        request.inputs["clip_features"].CopyFrom(broadcast([1, clips, widths[0]], types_pb2.DT_FLOAT, 0.0))
        request.inputs["text_features"].CopyFrom(broadcast([1, texts, widths[1]], types_pb2.DT_FLOAT, 0.0))
        request.inputs["clip_lengths"].CopyFrom(broadcast([1], types_pb2.DT_INT32, clips))
        request.inputs["text_lengths"].CopyFrom(broadcast([1], types_pb2.DT_INT32, texts))
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
