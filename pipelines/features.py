"""Feature extraction on Apache Beam: clip frames and texts -> feature shards.

  python -m pipelines.features --elements elements.jsonl --out features/ \\
      --image-model mobilenet_v3_small --image-weights none --image-size 224 \\
      --text-config tiny_bert.json [--num-shards 4] [--runner DirectRunner ...]

elements.jsonl holds one element a line:
  {"id": "v1/clip/00000", "kind": "clip", "image": "frames/v1_00000.png"}   (the clip's central frame)
  {"id": "v1/text/00000", "kind": "text", "text": "A man walks in."}
Relative image paths are read from beside elements.jsonl. The output is
``OUT/features-SSSSS-of-NNNNN.npz`` mapping each id to its vector (see
pipelines.feature_store), and ``OUT/rejected.jsonl`` for elements that could
not be encoded, with the reason. Nothing is downloaded unless a named preset
(or --image-weights imagenet) is asked for.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import zlib

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam_metrics import counter_totals
from pipelines.encoders import ImageEncoder, TextEncoder
from pipelines.feature_store import write_shard

NAMESPACE = "tfalign.features"
REJECTED = "rejected"


def parse_element(line, base_dir):
    try:
        element = json.loads(line)
        if element.get("kind") not in ("clip", "text") or "id" not in element:
            raise ValueError("expected {'id': ..., 'kind': 'clip' | 'text', ...}")
        if element["kind"] == "clip":
            path = pathlib.Path(element["image"])
            element["image"] = str(path if path.is_absolute() else pathlib.Path(base_dir) / path)
        elif not isinstance(element.get("text"), str):
            raise ValueError("a text element needs a string field 'text'")
        yield element
    except (ValueError, KeyError, TypeError) as error:
        Metrics.counter(NAMESPACE, "rejected").inc()
        yield beam.pvalue.TaggedOutput(REJECTED, {"line": line[:200], "reason": str(error)})


class EncodeBatch(beam.DoFn):
    """A batch of elements -> (id, vector); models load once a worker (setup)."""

    def __init__(self, image_args: dict, text_args: dict):
        self.image_args, self.text_args = image_args, text_args

    def setup(self):
        self.images = ImageEncoder(**self.image_args)
        self.texts = TextEncoder(**self.text_args)

    def process(self, batch):
        clips, frames = [], []
        for element in (e for e in batch if e["kind"] == "clip"):
            try:
                frames.append(self.images.load(element["image"]))
                clips.append(element["id"])
            except (OSError, ValueError) as error:
                Metrics.counter(NAMESPACE, "rejected").inc()
                yield beam.pvalue.TaggedOutput(REJECTED, {"id": element["id"], "reason": f"image: {error}"})
        if clips:
            for element_id, vector in zip(clips, self.images(np.stack(frames))):
                Metrics.counter(NAMESPACE, "clips_encoded").inc()
                yield element_id, vector
        texts = [e for e in batch if e["kind"] == "text"]
        if texts:
            for element, vector in zip(texts, self.texts([e["text"] for e in texts])):
                Metrics.counter(NAMESPACE, "texts_encoded").inc()
                yield element["id"], vector


def build(pipeline, elements_path, out_dir, image_args, text_args, num_shards=1, batch_size=32):
    base_dir = str(pathlib.Path(elements_path).parent)
    parsed = (pipeline | "Read" >> beam.io.ReadFromText(str(elements_path))
              | "Parse" >> beam.FlatMap(parse_element, base_dir).with_outputs(REJECTED, main="ok"))
    encoded = (parsed.ok | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
               | "Encode" >> beam.ParDo(EncodeBatch(image_args, text_args)).with_outputs(REJECTED, main="vectors"))
    (encoded.vectors
     | "Shard" >> beam.Map(lambda kv: (zlib.crc32(kv[0].encode()) % num_shards, kv))
     | "Group" >> beam.GroupByKey()
     | "WriteShard" >> beam.Map(lambda kv: write_shard(
         pathlib.Path(out_dir) / f"features-{kv[0]:05d}-of-{num_shards:05d}.npz", dict(kv[1]))))
    ((parsed[REJECTED], encoded[REJECTED]) | "Rejected" >> beam.Flatten() | beam.Map(json.dumps)
     | "WriteRejected" >> beam.io.WriteToText(f"{out_dir}/rejected", file_name_suffix=".jsonl", shard_name_template=""))


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m pipelines.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", required=True, help="JSONL of clip frames and texts")
    parser.add_argument("--out", required=True)
    parser.add_argument("--image-model", default="mobilenet_v3_small")
    parser.add_argument("--image-weights", default="none", help="a local weights file, 'none', or 'imagenet' (downloads)")
    parser.add_argument("--image-size", type=int, default=224)
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text-preset", help="a keras-hub preset folder (a preset name downloads)")
    text.add_argument("--text-config", help="JSON config of a small BERT (see pipelines.encoders)")
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def main(argv=None) -> int:
    args, beam_args = build_parser().parse_known_args(argv)
    if not pathlib.Path(args.elements).exists():
        raise FileNotFoundError(f"--elements: {args.elements} does not exist")
    image_args = {"model": args.image_model, "weights": args.image_weights, "image_size": args.image_size}
    text_args = {"preset": args.text_preset, "config": args.text_config}
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args or ["--runner", "DirectRunner"]))
    build(pipeline, args.elements, args.out, image_args, text_args, args.num_shards, args.batch_size)
    result = pipeline.run()
    result.wait_until_finish()
    counts = counter_totals(result, NAMESPACE)
    print(f"clips encoded: {counts.get('clips_encoded', 0)}, texts encoded: {counts.get('texts_encoded', 0)}, "
          f"rejected: {counts.get('rejected', 0)} (see {args.out}/rejected.jsonl)")
    return 0


if __name__ == "__main__":
    from tfalign import cli

    sys.exit(cli.run(main))
