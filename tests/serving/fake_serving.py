"""Stand-ins for a TF Serving binary (none can be installed here): a gRPC
PredictionService and a REST :predict endpoint on 127.0.0.1, both backed by
the exported SavedModel loaded in-process. The real clients talk to them."""

import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfalign.serving.client import LocalClient, ServingError


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, client, name):
        self.client, self.name = client, name

    def Predict(self, request, context):
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: Latest({request.model_spec.name})")
        try:
            out = self.client.align({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except ServingError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        for key, value in out.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def replay_warmup(model_dir):
    """What TF Serving does when it loads a version: every record of
    assets.extra/tf_serving_warmup_requests parsed as a PredictionLog and run
    through its signature; a record that fails fails the load. Returns the count."""
    from tfalign.serving.client import resolve_model_dir
    from tfalign.serving.warmup import read_warmup_file, request_arrays

    path = resolve_model_dir(model_dir)
    clients = {}
    logs = read_warmup_file(path)
    for log in logs:
        assert log.WhichOneof("log_type") == "predict_log"
        signature, inputs = request_arrays(log)
        clients.setdefault(signature, LocalClient(path, signature)).align(inputs)
    return len(logs)


def start_grpc(model_dir, name="tfalign", warmup=False):
    """``warmup``: replay the version's warm-up requests before serving, as TF Serving does."""
    if warmup:
        replay_warmup(model_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Servicer(LocalClient(model_dir), name), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def start_rest(model_dir, name="tfalign"):
    client = LocalClient(model_dir)

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
                out = client.align(request)
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
