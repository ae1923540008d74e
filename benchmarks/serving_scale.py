"""Serving under load at film length: a SavedModel behind the TF Serving
stand-in the tests use (tests/serving/fake_serving.py: gRPC and REST on
127.0.0.1, one load of the version, its warm-up records replayed in place
when it loads, as TF Serving does), and a stream of requests of mixed
lengths, from the embedded data's videos up to ``--max`` (4000 clips x 800
texts), some holding several videos.

The model is the recipe's network (random weights: the time does not depend
on them) exported with ``--warmup`` (``tfalign.export --warmup``: the lengths
a deployment declares), or ``--saved-model PATH``. The server runs in a child
process; the stream is sent once one request at a time over gRPC, then from
``--clients`` concurrent gRPC clients, and a share of the small requests over
REST (JSON is too large for a film). Afterwards every shape met is sent again
twice (warm) and each request's latency is also given as a ratio to its
shape's warm latency: a request over 2x means something was built on its path.
Reported: load and warm-up seconds, p50 / p99 / max latency, clips aligned per
second, the server's peak resident memory. Run from the repository root:

    python benchmarks/serving_scale.py --json benchmarks/results/serving_scale.json

About 10 minutes on 2 cores with the defaults (200 requests, 4 clients).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import REPO, machine, report  # noqa: E402

import numpy as np  # noqa: E402

SERVING_TESTS = REPO / "tests" / "serving"  # the stand-in lives beside the tests that use it


def export(experiment: str, decoding: str, warmup: str, folder: str) -> str:
    from tfalign.experiments import get_experiment
    from tfalign.model import build_model
    from tfalign.serving.saved_model import export_saved_model
    from tfalign.serving.warmup import WarmupSize

    model = build_model(get_experiment(experiment).model, seed=0)
    return str(export_saved_model(model, os.path.join(folder, "model"), decoding=decoding,
                                  warmup=WarmupSize.parse(warmup)))


def peak_resident_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def serve(path: str, workers: int) -> None:
    """The server process: load, warm up, serve on both APIs until stdin closes."""
    sys.path.insert(0, str(SERVING_TESTS))
    from fake_serving import Served, start_grpc, start_rest

    start = time.perf_counter()
    served = Served(path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    records = served.warm_up()
    warmup_s = time.perf_counter() - start
    grpc_server, target = start_grpc(path, served=served, workers=workers)
    rest_server, url = start_rest(path, served=served)
    print(json.dumps({"grpc": target, "rest": url, "load_s": round(load_s, 2), "warmup_records": records,
                      "warmup_s": round(warmup_s, 1), "resident_after_warmup_mb": peak_resident_mb(os.getpid())}),
          flush=True)
    sys.stdin.read()  # the parent closes it when it is done
    grpc_server.stop(0)
    rest_server.shutdown()
    print(json.dumps({"peak_resident_mb": peak_resident_mb(os.getpid())}), flush=True)


def yms_lengths() -> list[tuple[int, int]]:
    from tfalign.data.datasets import DataConfig, load_episodes

    return [(e.num_clips, e.num_texts) for split in ("train", "val", "test")
            for e in load_episodes(DataConfig(), split)]


def request_stream(count: int, largest: tuple[int, int], seed: int) -> list[list[tuple[int, int]]]:
    """Each request a list of videos' (clips, texts): 3 in 5 one YMS-sized video, 1 in 5
    two to four of them, 1 in 5 one long video between a tenth of ``largest`` and it
    (log-uniform, clips and texts in the film's ratio); two of the largest always."""
    rng = np.random.default_rng(seed)
    yms = yms_lengths()
    requests = [[largest], [largest]]
    while len(requests) < count:
        kind = rng.random()
        if kind < 0.6:
            requests.append([yms[rng.integers(len(yms))]])
        elif kind < 0.8:
            requests.append([yms[i] for i in rng.integers(len(yms), size=int(rng.integers(2, 5)))])
        else:
            scale = float(np.exp(rng.uniform(np.log(0.1), 0.0)))
            requests.append([(max(1, int(largest[0] * scale)), max(1, int(largest[1] * scale)))])
    order = rng.permutation(len(requests))
    return [requests[i] for i in order]


def request_arrays(videos, widths, seed):
    rng = np.random.default_rng(seed)
    clips, texts = max(c for c, _ in videos), max(t for _, t in videos)
    request = {"clip_features": np.zeros((len(videos), clips, widths[0]), np.float32),
               "text_features": np.zeros((len(videos), texts, widths[1]), np.float32),
               "clip_lengths": np.asarray([c for c, _ in videos], np.int32),
               "text_lengths": np.asarray([t for _, t in videos], np.int32)}
    for row, (c, t) in enumerate(videos):
        request["clip_features"][row, :c] = rng.normal(size=(c, widths[0]))
        request["text_features"][row, :t] = rng.normal(size=(t, widths[1]))
    return request


def summary(seconds, clips) -> dict:
    seconds = np.asarray(seconds)
    return {"requests": len(seconds),
            "latency_ms": {"p50": round(1000 * float(np.median(seconds)), 1),
                           "p99": round(1000 * float(np.quantile(seconds, 0.99)), 1),
                           "max": round(1000 * float(seconds.max()), 1)},
            "clips_per_second": round(float(clips) / max(float(seconds.sum()), 1e-9), 1)}


def run(args) -> dict:
    from tfalign.serving.client import GrpcClient, RestClient

    largest = tuple(int(v) for v in args.max.split("x"))
    with tempfile.TemporaryDirectory(prefix="tfalign-serving-") as folder:
        path = args.saved_model or export(args.experiment, args.decoding, args.warmup, folder)
        server = subprocess.Popen([sys.executable, __file__, "--serve", path, "--clients", str(args.clients)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            started = json.loads(server.stdout.readline())
            print(f"server: {started}", flush=True)
            grpc_client = GrpcClient(started["grpc"], signature=args.signature, timeout=600)
            spec = _widths(path)
            stream = request_stream(args.requests, largest, args.seed)
            requests = [request_arrays(videos, spec, args.seed * 100003 + i) for i, videos in enumerate(stream)]

            def timed(client, request):
                start = time.perf_counter()
                client.align(request)
                return time.perf_counter() - start

            sequential = [timed(grpc_client, r) for r in requests]
            print(f"sequential: {summary(sequential, _clips(requests))}", flush=True)
            concurrent, lock = [None] * len(requests), threading.Lock()
            cursor = iter(range(len(requests)))

            def worker():
                client = GrpcClient(started["grpc"], signature=args.signature, timeout=600)
                while True:
                    with lock:
                        index = next(cursor, None)
                    if index is None:
                        return
                    concurrent[index] = timed(client, requests[index])

            start = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            concurrent_wall = time.perf_counter() - start
            small = [r for r in requests if r["clip_features"].shape[1] <= 512][: args.rest_requests]
            rest_client = RestClient(started["rest"], signature=args.signature, timeout=600)
            rest = [timed(rest_client, r) for r in small]
            # Each shape warm: the better of two more calls.
            shape_of = lambda r: (r["clip_features"].shape[:2], r["text_features"].shape[1])
            warm = {}
            for request in requests:
                key = shape_of(request)
                if key not in warm:
                    warm[key] = min(timed(grpc_client, request), timed(grpc_client, request))
            ratios = [s / warm[shape_of(r)] for s, r in zip(sequential, requests)]
            largest_warm = [warm[shape_of(r)] for r in requests
                            if r["clip_features"].shape[:2] == (1, largest[0])
                            and r["text_features"].shape[1] == largest[1]]
            server.stdin.close()
            finished = json.loads(server.stdout.readline())
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        peak = finished["peak_resident_mb"]
    clips = _clips(requests)
    return {
        "signature": args.signature, "decoding": args.decoding if not args.saved_model else None,
        "declared_warmup": args.warmup, "largest": args.max, "server": {k: v for k, v in started.items()
                                                                        if k not in ("grpc", "rest")},
        "stream": {"requests": len(requests), "videos": int(sum(r["clip_lengths"].shape[0] for r in requests)),
                   "clips": int(clips), "distinct_shapes": len(warm),
                   "several_videos": sum(r["clip_lengths"].shape[0] > 1 for r in requests)},
        "grpc_sequential": summary(sequential, clips),
        "grpc_concurrent": {**summary(concurrent, clips), "clients": args.clients,
                            "wall_seconds": round(concurrent_wall, 1),
                            "clips_per_second_wall": round(clips / concurrent_wall, 1)},
        "rest_sequential_small": summary(rest, _clips(small)) if rest else None,
        "ratio_to_warm": {"p50": round(float(np.median(ratios)), 2), "max": round(max(ratios), 2)},
        "requests_over_2x_warm": int(sum(r > 2 for r in ratios)),
        "over_2x": [{"videos": int(r["clip_lengths"].shape[0]), "clips": int(r["clip_features"].shape[1]),
                     "texts": int(r["text_features"].shape[1]), "ratio": round(ratio, 2)}
                    for r, ratio in zip(requests, ratios) if ratio > 2],
        "largest_warm_seconds": round(min(largest_warm), 3) if largest_warm else None,
        "server_peak_resident_mb": peak,
    }


def _clips(requests) -> int:
    return int(sum(r["clip_lengths"].sum() for r in requests))


def _widths(path):
    import tensorflow as tf

    spec = tf.saved_model.load(path).signatures["serving_default"].structured_input_signature[1]
    return spec["clip_features"].shape[-1], spec["text_features"].shape[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="tfalign_rp_sbn")
    parser.add_argument("--saved-model", help="serve this SavedModel instead of exporting the experiment's network")
    parser.add_argument("--decoding", default="exact", choices=["greedy", "exact"],
                        help="the export's serving_default decoding")
    parser.add_argument("--signature", default="serving_default", help="the signature the stream calls")
    parser.add_argument("--warmup", default="4000x800x4",
                        help="the export's declared range, CLIPSxTEXTSxVIDEOS (tfalign.export --warmup)")
    parser.add_argument("--max", default="4000x800", help="the longest video of the stream, CLIPSxTEXTS")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent gRPC clients (and server threads)")
    parser.add_argument("--rest-requests", type=int, default=30, help="small requests also sent over REST")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--serve", metavar="SAVED_MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.clients)
    result = {"benchmark": "serving_scale", "machine": machine(), "experiment": args.experiment, **run(args)}
    report(result, args.json)


if __name__ == "__main__":
    main()
