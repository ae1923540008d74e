"""Feature extraction on Apache Beam: clip frames and texts -> feature shards.

  python -m pipelines.features --elements elements.jsonl --out features/ \\
      --image-model mobilenet_v3_small --image-weights none --image-size 224 \\
      --text-config tiny_bert.json [--num-shards 4] [--runner DirectRunner ...]
  python -m pipelines.features --elements elements.jsonl --out features/ \\
      --image-hub models/image_feature_vector/ --text-hub models/sentence_encoder/

elements.jsonl holds one element a line:
  {"id": "v1/clip/00000", "kind": "clip", "image": "frames/v1_00000.png"}   (the clip's central frame)
  {"id": "v1/clip/00001", "kind": "clip", "video": "v1.mp4", "start": 1.5, "end": 4.0}   (frames decoded)
  {"id": "v1/text/00000", "kind": "text", "text": "A man walks in."}
Relative paths are read from beside elements.jsonl. A clip of a video is read
with PyAV (the media extra), --frames-per-clip frames spread inside it,
encoded and averaged (pipelines.videos writes such elements from a folder of
videos). OUT/feature_extractors.json records the encoders (the preparation
pipeline and exports carry it on, so tfalign.align --video encodes alike). The output is
``OUT/features-SSSSS-of-NNNNN.npz`` mapping each id to its vector (see
pipelines.feature_store), and ``OUT/rejected.jsonl`` for elements that could
not be encoded, with the reason. Nothing is downloaded unless a named preset,
a TF-Hub handle (https://...) or --image-weights imagenet is asked for.

Encoders: images through a keras.applications backbone (--image-model) or a
TF-Hub image feature vector SavedModel (--image-hub: float32 [B, H, W, 3] in
[0, 1] -> [B, D]); texts through a keras-hub preset folder (--text-preset), a
small BERT config (--text-config) or a TF-Hub text SavedModel (--text-hub:
strings [B] -> [B, D]). Options this command does not know are passed to Beam
(--runner, --direct_num_workers, ...).
"""

from __future__ import annotations

if __name__ == "__main__":  # before Beam is imported: without it, one line naming the extra
    from pipelines import exit_without_beam

    exit_without_beam("python -m pipelines.features")

import json
import pathlib
import sys
import zlib

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam_metrics import check_beam_flags, counter_totals, run_pipeline
from pipelines.feature_store import write_shard
from pipelines.progress import ReportProgress, finish
from tfalign import cli, console
from tfalign.errors import UserError
from tfalign.files import write_json_atomic
from tfalign.media.extractors import EXTRACTORS_FILE, IMAGE_MODELS, FeatureExtractors, encode_clips

NAMESPACE = "tfalign.features"
REJECTED = "rejected"


def parse_element(line, base_dir):
    try:
        element = json.loads(line)
        if not isinstance(element, dict) or element.get("kind") not in ("clip", "text") or \
                not isinstance(element.get("id"), str):
            raise ValueError("expected an object {'id': '...', 'kind': 'clip' | 'text', ...}")
        if element["kind"] == "clip":
            source = "video" if "video" in element else "image"
            if not isinstance(element.get(source), str):
                raise ValueError("a clip element needs a string field 'image' (the frame's path) or 'video'")
            if source == "video" and not all(isinstance(element.get(k), (int, float)) and
                                             not isinstance(element.get(k), bool) for k in ("start", "end")):
                raise ValueError("a clip of a video needs number fields 'start' and 'end' (seconds)")
            path = pathlib.Path(element[source])
            element[source] = str(path if path.is_absolute() else pathlib.Path(base_dir) / path)
        elif not isinstance(element.get("text"), str):
            raise ValueError("a text element needs a string field 'text'")
        yield element
    except (ValueError, KeyError, TypeError) as error:
        Metrics.counter(NAMESPACE, "rejected").inc()
        yield beam.pvalue.TaggedOutput(REJECTED, {"line": line[:200], "reason": str(error)})


class EncodeBatch(beam.DoFn):
    """A batch of elements -> (id, vector); models load once a worker (setup)."""

    def __init__(self, extractors: dict):
        self.extractors = extractors

    def setup(self):
        extractors = FeatureExtractors.from_dict(self.extractors)
        self.frames_per_clip = extractors.frames_per_clip
        self.images, self.texts = extractors.image_encoder(), extractors.text_encoder()

    def _video_clips(self, elements):
        """Clips of videos: each video's clips decoded in one forward pass."""
        by_video = {}
        for element in elements:
            by_video.setdefault(element["video"], []).append(element)
        for video, clips in by_video.items():
            clips.sort(key=lambda e: e["start"])
            try:
                vectors = encode_clips(video, [[e["start"], e["end"]] for e in clips], self.images,
                                       self.frames_per_clip)
            except (OSError, ValueError) as error:
                for element in clips:
                    Metrics.counter(NAMESPACE, "rejected").inc()
                    yield beam.pvalue.TaggedOutput(REJECTED, {"id": element["id"], "reason": f"video: {error}"})
                continue
            for element, vector in zip(clips, vectors):
                Metrics.counter(NAMESPACE, "clips_encoded").inc()
                yield element["id"], vector

    def process(self, batch):
        yield from self._video_clips([e for e in batch if e["kind"] == "clip" and "video" in e])
        clips, frames = [], []
        for element in (e for e in batch if e["kind"] == "clip" and "image" in e):
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


def build(pipeline, elements_path, out_dir, extractors: FeatureExtractors, num_shards=1, batch_size=32, total=0):
    base_dir = str(pathlib.Path(elements_path).parent)
    parsed = (pipeline | "Read" >> beam.io.ReadFromText(str(elements_path))
              | "Parse" >> beam.FlatMap(parse_element, base_dir).with_outputs(REJECTED, main="ok"))
    encoded = (parsed.ok | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
               | "Encode" >> beam.ParDo(EncodeBatch(extractors.to_dict())).with_outputs(REJECTED, main="vectors"))
    (encoded.vectors
     | "Progress" >> beam.ParDo(ReportProgress("encoded", total))
     | "Shard" >> beam.Map(lambda kv: (zlib.crc32(kv[0].encode()) % num_shards, kv))
     | "Group" >> beam.GroupByKey()
     | "WriteShard" >> beam.Map(lambda kv: write_shard(
         pathlib.Path(out_dir) / f"features-{kv[0]:05d}-of-{num_shards:05d}.npz", dict(kv[1]))))
    ((parsed[REJECTED], encoded[REJECTED]) | "Rejected" >> beam.Flatten() | beam.Map(json.dumps)
     | "WriteRejected" >> beam.io.WriteToText(f"{out_dir}/rejected", file_name_suffix=".jsonl", shard_name_template=""))


def build_parser():
    parser = cli.make_parser("python -m pipelines.features", __doc__)
    parser.add_argument("--elements", required=True, help="JSONL of clip frames and texts (the format above)")
    parser.add_argument("--out", required=True, help="output folder of the feature shards and rejected.jsonl")
    image = parser.add_mutually_exclusive_group()
    image.add_argument("--image-model", choices=sorted(IMAGE_MODELS), default="mobilenet_v3_small",
                       help="keras.applications backbone for the clips' frames")
    image.add_argument("--image-hub", metavar="PATH",
                       help="a TF-Hub image feature vector SavedModel folder instead of --image-model (default: none)")
    parser.add_argument("--image-weights", default="none",
                        help="--image-model's weights: a local .weights.h5 file, 'none' (random: tests and dry runs), "
                             "or 'imagenet' (downloads)")
    parser.add_argument("--image-size", type=cli.number(int, 32), default=224,
                        help="frames are resized to this square size")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text-preset", help="a keras-hub preset folder (a preset name downloads)")
    text.add_argument("--text-config", help="JSON config of a small BERT (see tfalign.media.extractors)")
    text.add_argument("--text-hub", metavar="PATH",
                      help="a TF-Hub text embedding SavedModel folder (strings -> [B, D])")
    text.add_argument("--encoder", metavar="NAME|FOLDER",
                      help="a keras-hub CLIP or SigLIP preset for both sides (its image tower on the frames, its "
                           "text tower on the texts: features in one space, which tfalign.Aligner.zero_shot "
                           "aligns with no training); a folder loads offline, a name downloads")
    parser.add_argument("--frames-per-clip", type=cli.number(int, 1), default=1,
                        help="for clips of videos: frames spread inside each clip, encoded and averaged "
                             "(1: the centre frame)")
    parser.add_argument("--num-shards", type=cli.number(int, 1), default=1, help="feature shards to write")
    parser.add_argument("--batch-size", type=cli.number(int, 1), default=32, help="elements encoded together")
    return parser


def extractors_from_args(args) -> FeatureExtractors:
    """The encoders the options name; their files checked here (they load inside the workers)."""
    extractors = FeatureExtractors(image_model=args.image_model, image_weights=args.image_weights,
                                   image_size=args.image_size, image_hub=args.image_hub, text_preset=args.text_preset,
                                   text_config=args.text_config, text_hub=args.text_hub,
                                   frames_per_clip=args.frames_per_clip, vision_language=args.encoder)
    extractors.check_files()
    return extractors.resolved()


def warn_random_weights(args) -> None:
    """Random weights make features that mean nothing: fine for a test, not for training."""
    if not args.image_hub and not args.encoder and args.image_weights == "none":
        console.warn(f"--image-weights none: the {args.image_model} backbone has random weights; its clip "
                     f"features mean nothing (give a local weights file, 'imagenet', or --image-hub)")
    if args.text_config:
        try:
            weights = json.loads(pathlib.Path(args.text_config).read_text()).get("weights")
        except (OSError, ValueError, AttributeError):
            return  # the encoder reports an unreadable config itself
        if not weights:
            console.warn(f"--text-config {args.text_config} names no 'weights': the text backbone has random "
                         f"weights; its text features mean nothing")


def main(argv=None) -> int:
    args, beam_args = cli.parse(build_parser(), argv, known_only=True)
    check_beam_flags(beam_args, "python -m pipelines.features")
    elements = pathlib.Path(args.elements)
    if not elements.is_file():
        raise UserError(f"--elements: {args.elements}: no such file")
    extractors = extractors_from_args(args)
    warn_random_weights(args)
    total = sum(1 for line in elements.open(encoding="utf-8", errors="replace") if line.strip())
    options = beam_args or ["--runner", "DirectRunner"]
    pipeline = beam.Pipeline(options=PipelineOptions(options))
    build(pipeline, args.elements, args.out, extractors, args.num_shards, args.batch_size, total)
    console.say(f"encoding {total} elements of {args.elements} into {args.out} ({' '.join(options)}); the encoders "
                f"load first")
    result = run_pipeline(pipeline, args.out, "the features pipeline")
    finish("encoded")
    write_json_atomic(pathlib.Path(args.out) / EXTRACTORS_FILE, extractors.to_dict())
    counts = counter_totals(result, NAMESPACE)
    print(f"clips encoded: {counts.get('clips_encoded', 0)}, texts encoded: {counts.get('texts_encoded', 0)}, "
          f"rejected: {counts.get('rejected', 0)} (see {args.out}/rejected.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
