"""Align a new video's clip features with its text features.

  python -m tfalign.align --model saved_models/NAME --clips clips.npy --texts texts.npy \\
      [--clip-times times.csv] [--texts-file texts.txt] --out alignment.json [--plot timeline.png]
  python -m tfalign.align --server http://HOST:8501 --model-name NAME ...   (TF Serving REST)
  python -m tfalign.align --server grpc://HOST:8500 --model-name NAME ...   (TF Serving gRPC)

clips.npy is [T_v, D_v] and texts.npy [T_s, D_s], in natural order. times.csv
holds one "start,end" line (seconds) per clip; without it clip i spans [i, i+1).
texts.txt holds one text a line, used as labels. The JSON lists, per text, the
clips (and their times) aligned to it, and the unmatched clips, and the
model's action sequence: 0 POP_CLIP (the current clip is left unmatched),
1 POP_TEXT (the current text is done: go to the next), 2 MATCH (the current
clip belongs to the current text).

Example with the embedded data, after python -m tfalign.train --experiment
tfalign_rp_sbn --epochs 40 (scripts/dump_episode.py writes a test video's files):
  python scripts/dump_episode.py --split test --index 0 --out episode/
  python -m tfalign.align --model runs/tfalign_rp_sbn-*/saved_model --clips episode/clips.npy \\
      --texts episode/texts.npy --clip-times episode/times.csv --texts-file episode/texts.txt \\
      --ground-truth episode/truth.csv --out alignment.json --plot timeline.png

From a video file and its narration (the media extra: pip install -e ".[media]"):
  python -m tfalign.align --model saved_models/NAME --video movie.mp4 --narration script.txt \
      --out alignment.json --srt aligned.srt --vtt aligned.vtt [--plot timeline.png]
cuts the video into shots (PySceneDetect; --clip-seconds for fixed windows),
encodes each clip's centre frame and each text with the encoders the model was
trained with (its assets/feature_extractors.json; --image-model, --text-config
etc. override), aligns, and writes the JSON, the picture and the narration
retimed to the video (each text from its first clip's start to its last
clip's end; a text no clip is aligned to gets no cue and is listed in the
JSON's texts with span null). --narration is a .srt, .vtt, .ass or .ssa file
(its cues are the texts, markup removed) or a plain-text script (sentences, or
one text a line with --split lines), in any encoding (detected, or
--narration-encoding). Every output's missing folders are created; an output
that cannot be written is refused before any work.

--subtitles OUT writes the narration file itself retimed: only the times of
its cues change (text, markup, numbering, headers, styles, encoding,
byte-order mark and line ends as written; OUT's suffix picks the format, and
another format than the narration's is converted by pysubs2). A cue no clip is
aligned to keeps its place with times mapped from its aligned neighbours; it
is listed in the JSON's "unaligned" and on the console, never dropped.
--subtitles-encoding writes another encoding.

With no trained model at all (features in one space, a vision-language encoder's):
  python -m tfalign.align --video movie.mp4 --narration movie.srt --encoder clip_preset/ \
      --out alignment.json --subtitles retimed.srt
encodes a few frames of each clip with the CLIP or SigLIP preset's image tower
and each text with its text tower, and aligns them zero-shot
(tfalign.Aligner.zero_shot: their cosine similarity centred on this video,
exact DTW, each clip's confidence in the JSON). A preset folder loads
offline; a preset name downloads.

Confidence: a CRF model (the recipe's, under either decoding) or exact
decoding gives each clip's posterior probability ("clip_confidence" in the
JSON), each text's (the mean of its clips', "confidence") and the video's.
--min-confidence P marks the --srt / --vtt cue of each text below P with
"(?) " (--drop-uncertain: leaves it out) and lists those texts in the JSON's
"uncertain_texts"; --plot draws each clip as opaque as its confidence. A video
whose mean clip confidence is below what the lowest 10% of the model's
validation videos reached (a run's recipe model records it) is warned about in
one line and marked "doubtful" in the JSON.

--ground-truth truth.csv (one integer a line: the text index of each clip, -1
for unmatched; scripts/dump_episode.py writes one) adds the true alignment to
the JSON (with the share of clips that agree) and draws it in the picture as a
second row under the prediction, wrong clips marked.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys

import numpy as np

from tfalign import cli, console
from tfalign.data.decoding_choice import Decoding
from tfalign.errors import UserError
from tfalign.files import check_output_path

ZERO_SHOT_FRAMES = 3  # frames a clip a vision-language encoder sees, averaged


def build_parser():
    parser = cli.make_parser("python -m tfalign.align", __doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a SavedModel folder, or saved_models/NAME (its highest version) (default: "
                                        "none: --server, or --encoder to align a video zero-shot)")
    source.add_argument("--server", help="TF Serving: http://HOST:PORT (REST) or grpc://HOST:PORT (default: none)")
    parser.add_argument("--model-name", default="tfalign", help="the model's name on the server")
    parser.add_argument("--clips", help=".npy of clip features [T_v, D_v] (required unless --video)")
    parser.add_argument("--texts", help=".npy of text features [T_s, D_s] (required unless --narration)")
    media = parser.add_argument_group("from media (instead of --clips and --texts)")
    media.add_argument("--video", help="a video file: cut into clips, each clip's frames encoded "
                                       "(default: none, --clips given)")
    media.add_argument("--narration", help="a .srt, .vtt, .ass or .ssa file (its cues) or a plain-text script (its "
                            "sentences); its encoding is detected (default: none, --texts given)")
    media.add_argument("--narration-encoding",
                       help="the narration's text encoding, e.g. cp1252, latin-1, utf-16 (default: detected from its "
                            "byte-order mark, UTF-8, else by charset-normalizer)")
    media.add_argument("--split", choices=("sentences", "lines"), default="sentences",
                       help="a plain-text script's texts: its sentences (pysbd) or its non-empty lines")
    cli.add_clip_arguments(media)
    for flag, help_text in (("--image-model", "override the recorded keras.applications image backbone"),
                            ("--image-weights", "override its weights: a local file, 'none' or 'imagenet' "
                                                "(downloads)"),
                            ("--image-hub", "override with a TF-Hub image feature vector folder"),
                            ("--text-preset", "override the text encoder with a keras-hub preset folder"),
                            ("--text-config", "override it with a small BERT's JSON config"),
                            ("--text-hub", "override it with a TF-Hub text embedding folder")):
        media.add_argument(flag, help=help_text + " (default: the model's recorded extractors)")
    media.add_argument("--encoder", metavar="NAME|FOLDER",
                       help="a keras-hub CLIP or SigLIP preset encoding the clips' frames and the texts into one "
                            "space: a local preset folder (offline), or a preset name such as "
                            "clip_vit_base_patch32 (it downloads, and only when named). Without --model the video "
                            "is aligned zero-shot, with no trained model (tfalign.Aligner.zero_shot: cosine "
                            "similarity centred on this video, exact DTW, each clip's confidence); with --model it "
                            "replaces the recorded encoders (default: none)")
    media.add_argument("--image-size", type=cli.number(int, 32),
                       help="override the recorded frame size (default: recorded)")
    media.add_argument("--frames-per-clip", type=cli.number(int, 1),
                       help="override the frames encoded a clip (default: recorded; with --encoder "
                            f"{ZERO_SHOT_FRAMES})")
    media.add_argument("--srt", help="write the narration retimed to the video as SRT here (default: not written)")
    media.add_argument("--vtt", help="write the narration retimed to the video as WebVTT here (default: not written)")
    _add_confidence_options(media)
    media.add_argument("--subtitles", help="write the narration file retimed here, nothing but its cue times changed "
                                           "(.srt, .vtt, .ass or .ssa; default: not written)")
    media.add_argument("--subtitles-encoding", help="the text encoding of --subtitles (default: the narration's, "
                                                    "with its byte-order mark)")
    parser.add_argument("--clip-times", help="CSV of start,end seconds, one line per clip (default: clip i spans "
                                             "[i, i+1))")
    parser.add_argument("--texts-file",
                        help="the texts, one a line (labels for the JSON and the plot; default: 'text 0', ...)")
    parser.add_argument("--out", required=True, help="where to write the alignment JSON (every output's missing "
                                                     "folders are created)")
    parser.add_argument("--plot", help="also draw a timeline PNG here (default: no picture)")
    parser.add_argument("--ground-truth", help="CSV of the true text index of each clip (-1 unmatched), one a line: "
                                               "compared in the JSON and drawn under the prediction (default: none)")
    parser.add_argument("--signature", default="serving_default",
                        help="the signature to call: serving_default (the run's own decoding), align_greedy, or "
                             "align_exact (exact best path; models whose decoder has no history)")
    return parser


def _add_confidence_options(group) -> None:
    group.add_argument("--min-confidence", type=cli.number(float, 0, 1), metavar="P",
                       help="in --srt and --vtt, begin the cue of a text whose confidence (the mean posterior "
                            "probability of its clips' assignment) is below P with \"(?) \"; the JSON lists them "
                            "under \"uncertain_texts\" (a CRF model, such as the recipe's, or exact decoding gives "
                            "confidences; default: no check)")
    group.add_argument("--drop-uncertain", action="store_true",
                       help="leave the cues below --min-confidence out of --srt and --vtt instead of marking them")


def _check_sources(args) -> None:
    if not (args.model or args.server):
        if not args.encoder:
            raise UserError("--model, --server, or --encoder with --video and --narration (zero-shot, no trained "
                            "model): one is needed")
        if not args.video:
            raise UserError("--encoder without --model: aligns a --video with its --narration zero-shot (give both)")
    if args.encoder and args.server:
        raise UserError("--encoder: not with --server (the server's model has its own encoders; encode locally with "
                        "--model)")
    if args.encoder:
        for flag in ("image_model", "image_weights", "image_hub", "text_preset", "text_config", "text_hub",
                     "image_size"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')}: not with --encoder (its preset encodes both sides)")
    if args.video or args.narration:
        if not (args.video and args.narration):
            raise UserError("--video and --narration: give both (a video and its narration)")
        for flag in ("clips", "texts", "clip_times", "texts_file"):
            if getattr(args, flag):
                raise UserError(f"--{flag.replace('_', '-')}: not with --video (the clips and texts come from the "
                                f"media)")
    elif not (args.clips and args.texts):
        raise UserError("--clips and --texts (features), or --video and --narration (media): one pair is needed")
    else:
        for flag in ("srt", "vtt", "subtitles", "narration_encoding"):
            if getattr(args, flag):
                raise UserError(f"--{flag.replace('_', '-')}: only with --video and --narration (it is about the "
                                f"narration's texts and times)")
    if args.drop_uncertain and args.min_confidence is None:
        raise UserError("--drop-uncertain: needs --min-confidence P (the confidence below which a cue is left out)")
    if args.subtitles_encoding and not args.subtitles:
        raise UserError("--subtitles-encoding: only with --subtitles (the encoding of that file)")
    for flag in ("srt", "vtt"):
        if getattr(args, flag) and not getattr(args, flag).lower().endswith(f".{flag}"):
            raise UserError(f"--{flag}: expected a file name ending in .{flag}, got {getattr(args, flag)!r}")
    if args.subtitles and pathlib.Path(args.subtitles).suffix.lower() not in (".srt", ".vtt", ".ass", ".ssa"):
        raise UserError(f"--subtitles: expected a file name ending in .srt, .vtt, .ass or .ssa, got "
                        f"{args.subtitles!r}")
    if args.subtitles_encoding:
        import codecs

        try:
            codecs.lookup(args.subtitles_encoding)
        except LookupError:
            raise UserError(f"--subtitles-encoding: unknown encoding {args.subtitles_encoding!r} (e.g. utf-8, "
                            f"cp1252, utf-16)") from None


def _media_inputs(args, aligner):
    """The video cut and encoded, the narration read and encoded (tfalign.media)."""
    from tfalign.media.extractors import FeatureExtractors
    from tfalign.media.inputs import media_inputs

    options = cli.clip_options_from_args(args)
    recorded = aligner.feature_extractors if aligner is not None else None
    overrides = {k: getattr(args, k) for k in ("image_model", "image_weights", "image_hub", "text_preset",
                                               "text_config", "text_hub", "image_size", "frames_per_clip")}
    if args.encoder:  # a vision-language preset: a few frames a clip, averaged
        overrides.update(vision_language=args.encoder, frames_per_clip=args.frames_per_clip or ZERO_SHOT_FRAMES)
    if recorded is None and any(v is not None for v in overrides.values()):
        recorded = FeatureExtractors(text_config=None)
    extractors = recorded.override(**overrides) if recorded is not None else None
    return media_inputs(args.video, args.narration, extractors, options, args.split,
                        narration_encoding=args.narration_encoding)


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    from tfalign.serving import document

    _check_sources(args)
    for flag in ("out", "plot", "srt", "vtt", "subtitles"):  # every output checked before any work
        if getattr(args, flag):
            check_output_path(getattr(args, flag), f"--{flag}")
    if args.video:  # bad media are refused before any model loads
        from tfalign.media.narration import read_narration
        from tfalign.media.video import probe

        probe(args.video)
        read_narration(args.narration, args.split, encoding=args.narration_encoding)
    aligner = _load_aligner(args) if args.model else None
    narration = None
    if args.video:
        inputs = _media_inputs(args, aligner)
        clips, texts, clip_times, labels = inputs.clip_features, inputs.text_features, inputs.clip_times, inputs.texts
        narration = inputs.cues
        if aligner is None and not args.server:
            from tfalign.api.aligner import zero_shot_for_video

            console.say(f"aligning zero-shot: no trained model, {args.encoder}'s clips and texts compared in their "
                        f"space")
            aligner = zero_shot_for_video(clips, texts)
    else:
        clips, texts = document.load_matrix(args.clips, "clips"), document.load_matrix(args.texts, "texts")
        clip_times = document.load_times(args.clip_times, len(clips))
        labels = document.load_labels(args.texts_file, len(texts))
    truth = document.load_truth(args.ground_truth, len(clips), len(texts)) if args.ground_truth else None
    if aligner is not None:
        alignment = _align_locally(args, aligner, clips, texts, clip_times, labels)
    else:
        alignment = _align_on_server(args, clips, texts, clip_times, labels)
        if alignment is None:
            return 3
    result = alignment.to_dict()
    if truth is not None:
        result["ground_truth"] = truth.tolist()
        result["clips_agreeing"] = float(np.mean(truth == alignment.clip_to_text))
    subtitles, unaligned = _subtitle_files(args, alignment, narration)
    if args.subtitles:
        result["unaligned"] = unaligned
    uncertain = _uncertain_texts(args, alignment, result), _doubtful(alignment, aligner, result)
    with _written_last(subtitles):
        document.write_outputs(result, clip_times, truth, args.out, args.plot)
    if (args.srt or args.vtt) and alignment.unaligned_texts:
        console.warn(f"the --srt / --vtt subtitles hold no cue for {len(alignment.unaligned_texts)} text(s): no clip "
                     f"was aligned to them (texts {alignment.unaligned_texts[:10]})")
    if args.subtitles and unaligned:
        console.say(f"{args.subtitles}: {len(unaligned)} cue(s) no clip is aligned to keep their place, their times "
                    f"mapped from the aligned cues around them (cues {[u['cue'] for u in unaligned[:10]]}; the JSON "
                    f"lists them under \"unaligned\")")
    _say_uncertain(args, *uncertain)
    matched = int((alignment.clip_to_text >= 0).sum())
    written = [args.out, *([args.plot] if args.plot else []), *subtitles]
    print(f"aligned {matched} of {len(clips)} clips to {len(texts) - len(alignment.unaligned_texts)} of "
          f"{len(texts)} texts; wrote {', '.join(written)}")
    return 0


def _uncertain_texts(args, alignment, result: dict) -> list[dict] | None:
    """The texts below --min-confidence ({"index", "text", "confidence"}), also put in the
    JSON's ``result``; None without --min-confidence."""
    if args.min_confidence is None:
        return None
    try:
        indices = alignment.uncertain_texts(args.min_confidence)
    except UserError as error:
        raise UserError(str(error).replace("min_confidence:", "--min-confidence:", 1), field="--min-confidence") \
            from None
    result["min_confidence"] = args.min_confidence
    result["uncertain_texts"] = [{"index": j, "text": alignment.labels[j],
                                  "confidence": round(alignment.text_confidence(j), 6)} for j in indices]
    return result["uncertain_texts"]


def _doubtful(alignment, aligner, result: dict) -> str | None:
    """The warning for a video whose mean clip confidence is below the aligner's floor (its
    validation videos' lowest 10%), also put in the JSON's ``result``; None otherwise."""
    floor = aligner.video_confidence_floor if aligner is not None else None
    if floor is None or alignment.confidence is None or alignment.confidence >= floor:
        return None
    result["doubtful"] = {"confidence": round(alignment.confidence, 6), "floor": round(floor, 6)}
    return (f"this video's mean clip confidence {alignment.confidence:.3f} is below {floor:.3f}, what the lowest 10% "
            f"of the model's validation videos reached: check its alignment (\"doubtful\" in the JSON)")


def _say_uncertain(args, uncertain, doubtful=None) -> None:
    if doubtful:
        console.warn(doubtful)
    if uncertain:
        what = "left out of" if args.drop_uncertain else "marked \"(?) \" in"
        console.say(f"{len(uncertain)} text(s) below confidence {args.min_confidence:g}, {what} the --srt / --vtt "
                    f"subtitles (texts {[u['index'] for u in uncertain[:10]]}; the JSON lists them under "
                    f"\"uncertain_texts\")")


def _subtitle_files(args, alignment, narration) -> tuple[dict, list]:
    """{path: bytes} of the subtitle outputs asked for, and the retimed file's unaligned cues."""
    from tfalign.media.subtitles import retimed_subtitles, srt_text, vtt_text

    files, unaligned = {}, []
    uncertain = args.min_confidence, args.drop_uncertain
    if args.srt:
        files[args.srt] = srt_text(alignment, alignment.texts, *uncertain).encode("utf-8")
    if args.vtt:
        files[args.vtt] = vtt_text(alignment, alignment.texts, *uncertain).encode("utf-8")
    if args.subtitles:
        files[args.subtitles], unaligned = retimed_subtitles(alignment, narration, pathlib.Path(args.subtitles).suffix,
                                                             args.subtitles_encoding)
    return files, unaligned


@contextlib.contextmanager
def _written_last(subtitles: dict):
    """The subtitle files ({path: bytes}) are written under temporary names first and
    renamed once the other outputs are written: a failure leaves none of them."""
    from tfalign.files import atomic_path, new_parents, writing

    temporary = {}
    with contextlib.ExitStack() as stack, _removing(temporary):
        for path, data in subtitles.items():
            path = pathlib.Path(path)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            temporary[path] = atomic_path(path, path.suffix)
            with writing("the subtitles", path):
                stack.enter_context(new_parents(path))  # its missing folders, removed again if anything fails
                temporary[path].write_bytes(data)
        yield
        for path, tmp in temporary.items():
            os.replace(tmp, path)


@contextlib.contextmanager
def _removing(temporary: dict):
    """The temporary files named in ``temporary`` are gone after the block, whatever happens."""
    try:
        yield
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)


# --signature names a SavedModel signature; Aligner.align takes the decoding it runs.
SIGNATURE_DECODINGS = {"serving_default": None, "align_greedy": "greedy", "align_exact": "exact"}


def _load_aligner(args):
    from tfalign.api.aligner import Aligner

    if args.signature not in SIGNATURE_DECODINGS:
        raise UserError(f"--signature: expected one of {list(SIGNATURE_DECODINGS)}, got {args.signature!r}")
    console.say(f"loading {args.model}")
    return Aligner.from_saved_model(args.model)


def _align_locally(args, aligner, clips, texts, clip_times, labels):
    """Through ``tfalign.Aligner`` on the SavedModel, as from Python."""
    decoding = SIGNATURE_DECODINGS[args.signature]
    if decoding is not None:  # the SavedModel has the signature only if its decoder can run the decoding
        Decoding.check(decoding, history="exact" not in aligner.decodings, field="--signature", model=args.model)
    console.say(f"aligning {len(clips)} clips with {len(texts)} texts ({args.signature})")
    return aligner.align(clips, texts, decoding=decoding, clip_times=clip_times, labels=labels)


def _align_on_server(args, clips, texts, clip_times, labels):
    """Through TF Serving's REST or gRPC API; None when the server refuses the request."""
    from tfalign.data.alignment import Alignment
    from tfalign.serving.client import ServingError, connect

    console.say(f"connecting to {args.server} (model {args.model_name})")
    client = connect(None, args.server, args.model_name, signature=args.signature)
    request = {"clip_features": clips[None], "text_features": texts[None],
               "clip_lengths": np.asarray([len(clips)], np.int32), "text_lengths": np.asarray([len(texts)], np.int32)}
    console.say(f"aligning {len(clips)} clips with {len(texts)} texts ({args.signature})")
    try:
        out = client.align(request)
    except ServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return Alignment.from_outputs(out, 0, len(clips), len(texts), clip_times=clip_times, texts=labels)


if __name__ == "__main__":
    sys.exit(cli.run(main))
