"""Stand-ins for a TF Serving binary (none can be installed here): a gRPC
PredictionService and a REST :predict endpoint on 127.0.0.1, both backed by
one SavedModel loaded in-process, as TF Serving loads a version once: every
signature of it, chosen by the request's ``signature_name`` (default
``serving_default``), warmed in place when the version loads. The real
clients talk to them; benchmarks/serving_scale.py loads the same stand-in."""

import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfalign.serving.client import SIGNATURE, LocalClient, ServingError, resolve_model_dir


class Served:
    """One loaded version: a LocalClient per signature over a single load."""

    def __init__(self, model_dir):
        self.path = resolve_model_dir(model_dir)
        self.default = LocalClient(self.path)
        self.clients = {SIGNATURE: self.default}

    def align(self, request: dict, signature: str = "") -> dict:
        signature = signature or SIGNATURE
        if signature not in self.clients:
            signatures = self.default.signatures
            if signature not in signatures:
                raise ServingError(f"signature_name: {signature!r} is not a signature of the model "
                                   f"(it has {sorted(signatures)})")
            self.clients[signature] = LocalClient.of_signature(self.path, signatures, signature)
        return self.clients[signature].align(request)

    def warm_up(self) -> int:
        """What TF Serving does when it loads a version: every record of
        assets.extra/tf_serving_warmup_requests parsed as a PredictionLog and run
        through its signature of this very load; a record that fails fails the load.
        Returns the count."""
        from tfalign.serving.warmup import read_warmup_file, request_arrays

        logs = read_warmup_file(self.path)
        for log in logs:
            assert log.WhichOneof("log_type") == "predict_log"
            signature, inputs = request_arrays(log)
            self.align(inputs, signature)
        return len(logs)


def replay_warmup(model_dir):
    """A fresh load of ``model_dir`` warmed as TF Serving warms it; returns the record count."""
    return Served(model_dir).warm_up()


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, served, name):
        self.served, self.name = served, name

    def Predict(self, request, context):
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({request.model_spec.name})")
        try:
            out = self.served.align({k: tf.make_ndarray(v) for k, v in request.inputs.items()},
                                    request.model_spec.signature_name)
        except ServingError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        for key, value in out.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def start_grpc(model_dir, name="tfalign", warmup=False, served=None, workers=2):
    """``warmup``: replay the version's warm-up requests before serving, as TF Serving does;
    ``served``: an already loaded version (shared with the REST endpoint)."""
    served = served or Served(model_dir)
    if warmup:
        served.warm_up()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 1 << 30),
                                  ("grpc.max_send_message_length", 1 << 30)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Servicer(served, name), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def start_rest(model_dir, name="tfalign", served=None):
    served = served or Served(model_dir)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            if self.path != f"/v1/models/{name}:predict":
                return self._reply(404, {"error": f"Servable not found for request: Latest({self.path})"})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = body["inputs"]
            request = {"clip_features": np.asarray(inputs["clip_features"], np.float32),
                       "text_features": np.asarray(inputs["text_features"], np.float32),
                       "clip_lengths": np.asarray(inputs["clip_lengths"], np.int32),
                       "text_lengths": np.asarray(inputs["text_lengths"], np.int32)}
            try:
                out = served.align(request, body.get("signature_name", ""))
            except ServingError as error:
                return self._reply(400, {"error": str(error)})
            self._reply(200, {"outputs": {k: v.tolist() for k, v in out.items()}})

        def _reply(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
