"""Episode preparation on Apache Beam: annotations + feature shards -> episodes.

  python -m pipelines.prepare --annotations yms:../shared/data/yms --features 'features/*.npz' \\
      --out episodes/ [--project 300] [--num-shards 4] [--runner DirectRunner ...]
  python -m pipelines.prepare --annotations jsonl:videos.jsonl --features 'features/*.npz' --out episodes/

Joins every video's clips and texts with their feature vectors by element id
(``{video_id}/clip/{i}``, ``{video_id}/text/{j}``), validates each episode
with tfalign's checks, applies the seeded random projection when asked, and
writes ``OUT/{train,val,test}/`` as sharded TFRecords with the manifest that
``python -m tfalign.train --dataset tfrecord:OUT`` reads. Records that fail
(a missing feature, a bad episode, an unparsable line) go to
``OUT/rejected.jsonl`` with the reason; the run ends with the counts.

videos.jsonl (--annotations jsonl:FILE) holds one video a line:
  {"video_id": "v1", "split": "train",
   "clips": [{"id": "v1/clip/00000", "start": 0.0, "end": 1.5, "text": "v1/text/00000"},
             {"id": "v1/clip/00001", "start": 1.5, "end": 2.0, "text": null}, ...],
   "texts": [{"id": "v1/text/00000", "start": 0.0, "end": 1.6, "text": "A man walks in."}, ...]}
- split: train, val or test;
- clips: in time order, start and end in seconds; a clip's "text" is the id of
  the text it belongs to, or null when no text describes it (unmatched);
- texts: in narration order, with the span (seconds) they cover and their words
  (the words are for pipelines.features; here only the ids and spans are read);
- ids are the element ids of the feature shards (pipelines.features).
Options this command does not know are passed to Beam (--runner, ...).
"""

from __future__ import annotations

if __name__ == "__main__":  # before Beam is imported: without it, one line naming the extra
    from pipelines import exit_without_beam

    exit_without_beam("python -m pipelines.prepare")

import dataclasses
import glob
import json
import pathlib
import sys

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam_metrics import check_beam_flags, counter_totals, run_pipeline
from pipelines.feature_store import read_shard, video_of
from pipelines.progress import ReportProgress, finish
from pipelines.sources import skeleton_from_json, yms_skeletons
from tfalign import cli, console
from tfalign.data import records
from tfalign.data.episode import Episode, EpisodeError
from tfalign.data.projection import RandomProjection
from tfalign.media.extractors import EXTRACTORS_FILE, FeatureExtractors
from tfalign.errors import UserError

SPLITS = ("train", "val", "test", "unlabelled")  # unlabelled: OUT/unlabelled/, for --unlabelled-file
NAMESPACE = "tfalign.prepare"


class AssembleEpisode(beam.DoFn):
    """(video_id, {"skeleton": [...], "features": [...]}) -> serialized episode, or a rejection."""

    REJECTED = "rejected"

    def __init__(self, project_dim=None, projection_seed=0):
        self.project_dim, self.projection_seed = project_dim, projection_seed
        self._matrices = {}

    def _project(self, vectors, seed_offset):
        key = (vectors.shape[1], seed_offset)
        if key not in self._matrices:
            self._matrices[key] = RandomProjection(vectors.shape[1], self.project_dim,
                                                   self.projection_seed + seed_offset).matrix
        return vectors @ self._matrices[key]

    def process(self, element):
        video_id, grouped = element
        skeletons, features = list(grouped["skeleton"]), dict(grouped["features"])
        try:
            if not skeletons:
                raise EpisodeError(f"features for {len(features)} element(s) of video {video_id!r}, "
                                   f"which no annotation names")
            if len(skeletons) > 1:
                raise EpisodeError(f"video {video_id!r} is annotated {len(skeletons)} times")
            skeleton = skeletons[0]
            vectors = {}
            for field, ids in (("clip_features", skeleton["clip_ids"]), ("text_features", skeleton["text_ids"])):
                missing = [i for i in ids if i not in features]
                if missing:
                    raise EpisodeError(f"episode {video_id!r}: field {field!r}: no feature for {len(missing)} "
                                       f"element(s), first {missing[0]!r}")
                widths = {features[i].shape for i in ids}
                if len(widths) > 1:
                    raise EpisodeError(f"episode {video_id!r}: field {field!r}: vectors of different shapes "
                                       f"{sorted(widths)}")
                vectors[field] = np.stack([features[i] for i in ids])
            if self.project_dim:
                vectors["clip_features"] = self._project(vectors["clip_features"], 0)
                vectors["text_features"] = self._project(vectors["text_features"], 1)
            episode = Episode(video_id=video_id, clip_times=skeleton["clip_times"],
                              text_spans=skeleton["text_spans"], clip_to_text=skeleton["clip_to_text"],
                              unmatched_spans=skeleton["unmatched_spans"], **vectors).validate()
        except (EpisodeError, ValueError) as error:
            Metrics.counter(NAMESPACE, "episodes_rejected").inc()
            yield beam.pvalue.TaggedOutput(self.REJECTED, {"video_id": video_id, "reason": str(error)})
            return
        split = skeleton["split"]
        Metrics.counter(NAMESPACE, f"episodes_{split}").inc()
        Metrics.counter(NAMESPACE, f"clips_{split}").inc(episode.num_clips)
        Metrics.counter(NAMESPACE, f"texts_{split}").inc(episode.num_texts)
        yield split, records.episode_to_example(episode).SerializeToString()


def parse_jsonl_line(line):
    try:
        yield skeleton_from_json(line)
    except (ValueError, KeyError, TypeError) as error:
        Metrics.counter(NAMESPACE, "episodes_rejected").inc()
        yield beam.pvalue.TaggedOutput(AssembleEpisode.REJECTED, {"line": line[:200], "reason": str(error)})


def count_videos(annotations: str) -> int:
    """How many videos the annotations hold (for the progress count; 0 if unknown)."""
    kind, _, location = annotations.partition(":")
    if kind == "jsonl" and pathlib.Path(location).is_file():
        return sum(1 for line in open(location, encoding="utf-8", errors="replace") if line.strip())
    if kind == "yms":
        try:
            return len(yms_skeletons(location))
        except (OSError, ValueError):
            return 0  # the pipeline reports the problem itself
    return 0


def build(pipeline, annotations: str, feature_paths: list[str], out_dir: str, project_dim=None,
          projection_seed=0, num_shards=1, total=0):
    kind, _, location = annotations.partition(":")
    rejected = []
    if kind == "yms":
        skeletons = pipeline | "YMS" >> beam.Create(yms_skeletons(location))
    elif kind == "jsonl":
        parsed = (pipeline | "ReadJSONL" >> beam.io.ReadFromText(location)
                  | "ParseJSONL" >> beam.FlatMap(parse_jsonl_line).with_outputs(AssembleEpisode.REJECTED, main="ok"))
        skeletons, rejected = parsed.ok, [parsed[AssembleEpisode.REJECTED]]
    else:
        raise UserError(f"--annotations must be yms:FOLDER or jsonl:FILE, got {annotations!r}")
    keyed = skeletons | "KeySkeletons" >> beam.Map(lambda s: (s["video_id"], s))
    features = (pipeline | "FeatureShards" >> beam.Create(feature_paths)
                | "ReadShards" >> beam.FlatMap(read_shard)
                | "KeyFeatures" >> beam.Map(lambda kv: (video_of(kv[0]), kv)))
    episodes = ({"skeleton": keyed, "features": features} | "JoinById" >> beam.CoGroupByKey()
                | "Progress" >> beam.ParDo(ReportProgress("videos assembled", total))
                | "Assemble" >> beam.ParDo(AssembleEpisode(project_dim, projection_seed)).with_outputs(
                    AssembleEpisode.REJECTED, main="episodes"))
    for split in SPLITS:
        (episodes.episodes
         | f"Only{split}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
         | f"Bytes{split}" >> beam.Map(lambda kv: kv[1])
         | f"Write{split}" >> beam.io.WriteToTFRecord(f"{out_dir}/{split}/episodes", file_name_suffix=".tfrecord",
                                                      num_shards=num_shards))
    ((episodes[AssembleEpisode.REJECTED], *rejected) | "AllRejected" >> beam.Flatten()
     | "RejectedJSON" >> beam.Map(json.dumps)
     | "WriteRejected" >> beam.io.WriteToText(f"{out_dir}/rejected", file_name_suffix=".jsonl", shard_name_template=""))


def write_manifests(out_dir, counts: dict, extra: dict) -> None:
    """One manifest a split, written after its shards (a reader needs both)."""
    for split in SPLITS:
        folder = pathlib.Path(out_dir) / split
        shards = sorted(p.name for p in folder.glob("episodes-*.tfrecord"))
        if not shards:
            continue
        widths = None
        for name in shards:
            for example in records.tf_record_iterator(folder / name):
                e = records.example_to_episode(example, labelled=split != "unlabelled")
                widths = (e.clip_features.shape[1], e.text_features.shape[1])
                break
            if widths:
                break
        records.write_manifest(folder, shards, widths or (0, 0), counts.get(f"episodes_{split}", 0),
                               counts.get(f"clips_{split}", 0), counts.get(f"texts_{split}", 0), extra)


def features_extractors(paths) -> FeatureExtractors | None:
    """The encoders recorded beside the feature shards (pipelines.features writes them); None if none."""
    records = {}
    for folder in sorted({pathlib.Path(p).parent for p in paths}):
        if (folder / EXTRACTORS_FILE).is_file():
            records[str(folder)] = FeatureExtractors.read(folder / EXTRACTORS_FILE)
    if len({json.dumps(r.to_dict(), sort_keys=True) for r in records.values()}) > 1:
        raise UserError(f"--features: the shards come from different encoders ({', '.join(records)}: see their "
                        f"{EXTRACTORS_FILE})")
    return next(iter(records.values()), None)


def build_parser():
    parser = cli.make_parser("python -m pipelines.prepare", __doc__)
    parser.add_argument("--annotations", required=True,
                        help="yms:FOLDER (the YMS annotation files) or jsonl:FILE (videos.jsonl, the format above)")
    parser.add_argument("--features", required=True, action="append",
                        help="feature shards (.npz, a glob; repeatable), as written by pipelines.features")
    parser.add_argument("--out", required=True, help="output folder (OUT/{train,val,test}/, OUT/rejected.jsonl)")
    parser.add_argument("--project", type=cli.number(int, 0), default=0,
                        help="random projection to this width (0: none)")
    parser.add_argument("--projection-seed", type=cli.number(int, 0), default=0,
                        help="seed of the clip projection (the text projection uses seed + 1)")
    parser.add_argument("--num-shards", type=cli.number(int, 1), default=1, help="TFRecord shards a split")
    return parser


def main(argv=None) -> int:
    args, beam_args = cli.parse(build_parser(), argv, known_only=True)
    check_beam_flags(beam_args, "python -m pipelines.prepare")
    kind, _, location = args.annotations.partition(":")
    if kind not in ("yms", "jsonl") or not location:
        raise UserError(f"--annotations: expected yms:FOLDER or jsonl:FILE, got {args.annotations!r}")
    if kind == "jsonl" and not pathlib.Path(location).is_file():
        raise UserError(f"--annotations: {location}: no such file")
    if kind == "yms" and not pathlib.Path(location).is_dir():
        raise UserError(f"--annotations: {location}: no such folder")
    paths = sorted({p for pattern in args.features for p in glob.glob(pattern)})
    if not paths:
        raise UserError(f"--features: no file matches {args.features}")
    extractors = features_extractors(paths)
    options = beam_args or ["--runner", "DirectRunner"]
    pipeline = beam.Pipeline(options=PipelineOptions(options))
    total = count_videos(args.annotations)
    build(pipeline, args.annotations, paths, args.out, args.project or None, args.projection_seed, args.num_shards,
          total)
    console.say(f"preparing {total} videos of {args.annotations} with {len(paths)} feature shard(s) into {args.out} "
                f"({' '.join(options)})")
    result = run_pipeline(pipeline, args.out, "the preparation pipeline")
    finish("videos assembled")
    console.say("writing the manifests")
    counts = counter_totals(result, NAMESPACE)
    projection = {"output_dim": args.project, "clip_seed": args.projection_seed,
                  "text_seed": args.projection_seed + 1} if args.project else None
    extra = {"projection": projection} if projection else {}
    if extractors is not None:  # carried on to exports: tfalign.align --video encodes as the features were
        extra["feature_extractors"] = dataclasses.replace(extractors, projection=projection).to_dict()
    write_manifests(args.out, counts, extra)
    written = {s: counts.get(f"episodes_{s}", 0) for s in SPLITS if s != "unlabelled" or counts.get(f"episodes_{s}")}
    print(f"episodes written: {written} ({sum(written.values())} in all); rejected: "
          f"{counts.get('episodes_rejected', 0)} (see {args.out}/rejected.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
