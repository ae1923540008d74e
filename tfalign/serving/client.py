"""Small clients for a deployed aligner: TF Serving's REST and gRPC APIs,
and a local SavedModel, all behind one ``align(request) -> outputs`` call.

A request is a dict of padded natural-order arrays: clip_features [B, T_v, D_v],
text_features [B, T_s, D_s], clip_lengths [B], text_lengths [B]; outputs are
numpy arrays: actions, num_actions, clip_to_text.
"""

from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request

import numpy as np

from tfalign.errors import UserError

SIGNATURE = "serving_default"


class ServingError(RuntimeError):
    """The server (or the SavedModel) refused the request."""


def resolve_model_dir(path) -> pathlib.Path:
    """A SavedModel folder, or TF Serving's saved_models/NAME (its highest version)."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((p for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists()),
                      key=lambda p: int(p.name))
    if not versions:
        raise UserError(f"{path}: neither a SavedModel nor a folder of numbered versions of one")
    return versions[-1]


REQUEST_RANKS = {"clip_features": 3, "text_features": 3, "clip_lengths": 1, "text_lengths": 1}


def check_request(request: dict) -> None:
    """The inputs, their ranks and a batch of at least one, named, before anything reads a shape."""
    missing = [name for name in REQUEST_RANKS if name not in request]
    if missing:
        raise ServingError(f"{missing[0]}: the request has no such input (it needs {list(REQUEST_RANKS)})")
    unknown = sorted(set(request) - set(REQUEST_RANKS))
    if unknown:
        raise ServingError(f"{unknown[0]}: not an input of the aligner (it takes {list(REQUEST_RANKS)})")
    for name, rank in REQUEST_RANKS.items():
        shape = np.shape(request[name])
        if len(shape) != rank:
            raise ServingError(f"{name}: expected rank {rank}, got shape {list(shape)}")
        if shape[0] < 1:
            raise ServingError(f"{name}: expected a batch of at least one row, got shape {list(shape)}")


class LocalClient:
    """A SavedModel loaded in this process, called through one of its signatures."""

    def __init__(self, model_dir, signature=SIGNATURE):
        import tensorflow as tf

        self.path = resolve_model_dir(model_dir)
        try:
            signatures = tf.saved_model.load(str(self.path)).signatures
        except Exception as error:  # a corrupt saved_model.pb or variables raise many kinds
            message = str(getattr(error, "message", error)).strip().splitlines()
            raise UserError(f"{self.path}: not a loadable SavedModel ({type(error).__name__}: "
                            f"{message[0] if message else 'no message'})") from None
        self._use(signatures, signature)

    @classmethod
    def of_signature(cls, path, signatures, signature):
        """Another signature of an already loaded SavedModel (``client.signatures``): no second load."""
        client = cls.__new__(cls)
        client.path = path
        client._use(signatures, signature)
        return client

    def _use(self, signatures, signature):
        if signature not in signatures:
            raise UserError(f"signature: {self.path} has no signature {signature!r}; it has {sorted(signatures)}",
                            field="signature")
        self.signatures, self._signature = signatures, signatures[signature]

    def input_widths(self) -> tuple[int, int]:
        spec = self._signature.structured_input_signature[1]
        return spec["clip_features"].shape[-1], spec["text_features"].shape[-1]

    def align(self, request: dict) -> dict:
        import tensorflow as tf

        check_request(request)
        try:
            out = self._signature(**{k: tf.constant(v) for k, v in request.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise ServingError(_first_line(getattr(error, "message", str(error)))) from None
        return {k: v.numpy() for k, v in out.items()}


class RestClient:
    """``POST /v1/models/NAME[/versions/N]:predict`` with the columnar "inputs" format."""

    def __init__(self, url, model_name="tfalign", version=None, timeout=60.0, signature=SIGNATURE):
        self.signature = signature
        base = url.rstrip("/")
        self.endpoint = f"{base}/v1/models/{model_name}" + (f"/versions/{version}" if version else "") + ":predict"
        self.timeout = timeout

    def align(self, request: dict) -> dict:
        check_request(request)
        body = json.dumps({"signature_name": self.signature,
                           "inputs": {k: np.asarray(v).tolist() for k, v in request.items()}}).encode()
        http = urllib.request.Request(self.endpoint, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except json.JSONDecodeError:
                pass
            raise ServingError(f"{self.endpoint}: HTTP {error.code}: {_first_line(detail)}") from None
        except urllib.error.URLError as error:
            raise ServingError(f"{self.endpoint}: {error.reason}") from None
        return {k: np.asarray(v) for k, v in payload["outputs"].items()}


class GrpcClient:
    """``PredictionService/Predict`` through tensorflow-serving-api."""

    def __init__(self, target, model_name="tfalign", version=None, timeout=60.0, signature=SIGNATURE):
        self.signature = signature
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_name, self.version, self.timeout = model_name, version, timeout

    def align(self, request: dict) -> dict:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        check_request(request)
        message = predict_pb2.PredictRequest()
        message.model_spec.name = self.model_name
        message.model_spec.signature_name = self.signature
        if self.version:
            message.model_spec.version.value = int(self.version)
        for key, value in request.items():
            message.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        try:
            response = self.stub.Predict(message, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingError(f"{self.target}: {error.code().name}: {_first_line(error.details() or '')}") from None
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def close(self):
        self.channel.close()


def connect(model=None, server=None, model_name="tfalign", version=None, signature=SIGNATURE):
    """A client for ``--model PATH`` or ``--server http://HOST:PORT`` / ``grpc://HOST:PORT``."""
    if server:
        if server.startswith("grpc://"):
            return GrpcClient(server[len("grpc://"):], model_name, version, signature=signature)
        if server.startswith(("http://", "https://")):
            return RestClient(server, model_name, version, signature=signature)
        raise UserError(f"server: expected a URL starting with http://, https:// or grpc://, got {server!r}",
                        field="server")
    if model:
        return LocalClient(model, signature)
    raise UserError("model: give a SavedModel folder (model) or a server URL (server)", field="model")


def _first_line(text: str) -> str:
    """The useful sentence of a TensorFlow error: a tf.debugging assertion's own
    message when there is one, else the first line that is not boilerplate."""
    import re

    text = str(text)
    assertion = re.search(r"assertion failed: \[([^\]]*)\]", text)
    if assertion:
        return assertion.group(1)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    boilerplate = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "File \"", "[[")
    lines = [line for line in lines if not line.startswith(boilerplate)]
    return lines[0] if lines else "unknown error"
