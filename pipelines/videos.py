"""Videos with timed subtitles -> clip elements and annotations, on Apache Beam.

  python -m pipelines.videos --videos media/ --out cut/ [--clip-seconds 2] \\
      [--val-videos 2 --test-videos 2] [--runner DirectRunner ...]
  python -m pipelines.features --elements cut/elements.jsonl --out features/ --image-weights W --text-config C
  python -m pipelines.prepare --annotations jsonl:cut/videos.jsonl --features 'features/*.npz' --out episodes/
  python -m tfalign.train --experiment tfalign_rp_sbn --dataset tfrecord:episodes/

--videos holds the videos (.mp4 .mkv .mov .avi .webm), each with its
subtitles beside it under the same name (movie.mp4 and movie.srt, .vtt, .ass
or .ssa). Each video is cut into clips (shots by PySceneDetect, or fixed
windows with --clip-seconds) and its cues become its texts: a clip belongs to
the cue that covers most of it (at least half of it), other clips are
unmatched. A video with a plain-text narration beside it instead (movie.txt:
a script, a summary, no times) is an *unlabelled* video: its split is
"unlabelled" and its clips belong to no text; pipelines.prepare writes those
to OUT/unlabelled/, for tfalign.train --unlabelled-file. The output:
- OUT/elements.jsonl: the clips (video, start, end) and texts, for pipelines.features;
- OUT/videos.jsonl: one video a line (clip times, cue spans, the ground truth),
  for pipelines.prepare --annotations jsonl:OUT/videos.jsonl;
- OUT/rejected.jsonl: the videos that could not be read, with the reason.
Videos go to the validation and test splits by a hash of their name (stable
as the folder grows). Options this command does not know are passed to Beam.
"""

from __future__ import annotations

if __name__ == "__main__":  # before Beam is imported: without it, one line naming the extra
    from pipelines import exit_without_beam

    exit_without_beam("python -m pipelines.videos")

import json
import pathlib
import sys
import zlib

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam_metrics import check_beam_flags, counter_totals, run_pipeline
from pipelines.feature_store import clip_id, text_id
from pipelines.progress import ReportProgress, finish
from tfalign import cli, console
from tfalign.errors import UserError
from tfalign.media import require
from tfalign.media.clips import ClipOptions, cut_video
from tfalign.media.episodes import video_record
from tfalign.media.narration import SUBTITLE_SUFFIXES, read_narration

NAMESPACE = "tfalign.videos"
UNLABELLED = "unlabelled"  # the split of a video whose narration has no times
REJECTED = "rejected"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


SCRIPT_SUFFIX = ".txt"  # a narration without times: the video is unlabelled


def find_videos(folder) -> list[tuple[str, str | None]]:
    """(video, its narration: a subtitle file, else a .txt script, else None) of each video in ``folder``."""
    pairs = []
    for video in sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        subtitles = next((video.with_suffix(s) for s in (*SUBTITLE_SUFFIXES, SCRIPT_SUFFIX)
                          if video.with_suffix(s).is_file()), None)
        pairs.append((str(video.resolve()), None if subtitles is None else str(subtitles.resolve())))
    return pairs


def assign_splits(video_ids: list[str], val_videos: int, test_videos: int) -> dict[str, str]:
    """test, then val, for the videos first by a hash of their id; the rest train."""
    order = sorted(video_ids, key=lambda v: (zlib.crc32(v.encode()), v))
    return {v: "test" if k < test_videos else "val" if k < test_videos + val_videos else "train"
            for k, v in enumerate(order)}


class CutVideo(beam.DoFn):
    """(video, subtitles, split) -> its annotation record and its elements."""

    ELEMENTS = "elements"

    def __init__(self, options: dict, min_overlap: float):
        self.options, self.min_overlap = options, min_overlap

    def process(self, item):
        video, subtitles, split = item
        video_id = pathlib.Path(video).stem
        try:
            if subtitles is None:
                raise UserError(f"no {' or '.join((*SUBTITLE_SUFFIXES, SCRIPT_SUFFIX))} file beside it")
            cues = read_narration(subtitles, field="subtitles")
            if cues[0].start is None and split != UNLABELLED:
                raise UserError("its subtitles hold no times")
            clip_times = cut_video(video, ClipOptions(**self.options))
        except (UserError, OSError) as error:
            Metrics.counter(NAMESPACE, "videos_rejected").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, {"video": video, "reason": str(error)})
            return
        clip_ids = [clip_id(video_id, i) for i in range(len(clip_times))]
        text_ids = [text_id(video_id, j) for j in range(len(cues))]
        Metrics.counter(NAMESPACE, f"videos_{split}").inc()
        Metrics.counter(NAMESPACE, "clips").inc(len(clip_ids))
        yield json.dumps(video_record(video_id, split, clip_times, cues, clip_ids, text_ids, self.min_overlap))
        for cid, (start, end) in zip(clip_ids, clip_times.tolist()):
            yield beam.pvalue.TaggedOutput(self.ELEMENTS, json.dumps(
                {"id": cid, "kind": "clip", "video": video, "start": start, "end": end}))
        for tid, cue in zip(text_ids, cues):
            yield beam.pvalue.TaggedOutput(self.ELEMENTS, json.dumps({"id": tid, "kind": "text", "text": cue.text}))


def build(pipeline, items, out_dir, options: ClipOptions, min_overlap: float = 0.5):
    cut = (pipeline | "Videos" >> beam.Create(items)
           | "Progress" >> beam.ParDo(ReportProgress("videos cut", len(items)))
           | "Cut" >> beam.ParDo(CutVideo(vars(options), min_overlap)).with_outputs(
               CutVideo.ELEMENTS, REJECTED, main="records"))
    for name, collection in (("videos", cut.records), ("elements", cut[CutVideo.ELEMENTS])):
        collection | f"Write{name}" >> beam.io.WriteToText(f"{out_dir}/{name}", file_name_suffix=".jsonl",
                                                           shard_name_template="")
    (cut[REJECTED] | "RejectedJSON" >> beam.Map(json.dumps)
     | "WriteRejected" >> beam.io.WriteToText(f"{out_dir}/rejected", file_name_suffix=".jsonl", shard_name_template=""))


def build_parser():
    parser = cli.make_parser("python -m pipelines.videos", __doc__)
    parser.add_argument("--videos", required=True, help="the folder of videos, each with its .srt or .vtt beside it")
    parser.add_argument("--out", required=True, help="output folder (elements.jsonl, videos.jsonl, rejected.jsonl)")
    cli.add_clip_arguments(parser)
    parser.add_argument("--min-overlap", type=cli.number(float, 0, 1, low_open=True), default=0.5,
                        help="the share of a clip a cue must cover for the clip to be the cue's")
    parser.add_argument("--val-videos", type=cli.number(int, 0), help="videos for validation (default: 15%%, at "
                                                                       "least one of three or more)")
    parser.add_argument("--test-videos", type=cli.number(int, 0), help="videos for test (default: as --val-videos)")
    return parser


def main(argv=None) -> int:
    args, beam_args = cli.parse(build_parser(), argv, known_only=True)
    check_beam_flags(beam_args, "python -m pipelines.videos")
    require("av", "reading videos")
    require("scenedetect", "shot detection")
    folder = pathlib.Path(args.videos)
    if not folder.is_dir():
        raise UserError(f"--videos: {args.videos}: no such folder")
    pairs = find_videos(folder)
    if not pairs:
        raise UserError(f"--videos: {args.videos} holds no video ({' '.join(VIDEO_SUFFIXES)})")
    options = cli.clip_options_from_args(args)
    labelled = sum(1 for _, s in pairs if not (s and s.endswith(SCRIPT_SUFFIX)))
    default = max(1, round(0.15 * labelled)) if labelled >= 3 else 0
    val = default if args.val_videos is None else args.val_videos
    test = default if args.test_videos is None else args.test_videos
    if labelled and val + test >= labelled:
        raise UserError(f"--val-videos {val} and --test-videos {test} leave no training video of the {labelled} "
                        f"with timed subtitles")
    timed = [(v, s) for v, s in pairs if not (s and s.endswith(SCRIPT_SUFFIX))]
    splits = assign_splits([pathlib.Path(v).stem for v, _ in timed], val, test)
    items = [(video, subtitles, splits.get(pathlib.Path(video).stem, UNLABELLED)) for video, subtitles in pairs]
    beam_options = beam_args or ["--runner", "DirectRunner"]
    pipeline = beam.Pipeline(options=PipelineOptions(beam_options))
    build(pipeline, items, args.out, options, args.min_overlap)
    console.say(f"cutting {len(items)} videos of {args.videos} into {args.out} ({' '.join(beam_options)})")
    result = run_pipeline(pipeline, args.out, "the videos pipeline")
    finish("videos cut")
    counts = counter_totals(result, NAMESPACE)
    written = {s: counts.get(f"videos_{s}", 0) for s in ("train", "val", "test", UNLABELLED)
               if s != UNLABELLED or counts.get(f"videos_{s}")}
    print(f"videos cut: {written} ({counts.get('clips', 0)} clips); rejected: {counts.get('videos_rejected', 0)} "
          f"(see {args.out}/rejected.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
