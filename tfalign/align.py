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
  python -m tfalign.align --model runs/tfalign_rp_sbn-*/saved_model --clips episode/clips.npy \
      --texts episode/texts.npy --clip-times episode/times.csv --texts-file episode/texts.txt \
      --ground-truth episode/truth.csv --out alignment.json --plot timeline.png

--ground-truth truth.csv (one integer a line: the text index of each clip, -1
for unmatched; scripts/dump_episode.py writes one) adds the true alignment to
the JSON (with the share of clips that agree) and draws it in the picture as a
second row under the prediction, wrong clips marked.
"""

from __future__ import annotations

import sys

import numpy as np

from tfalign import cli, console
from tfalign.errors import UserError


def build_parser():
    parser = cli.make_parser("python -m tfalign.align", __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a SavedModel folder, or saved_models/NAME (its highest version)")
    source.add_argument("--server", help="TF Serving: http://HOST:PORT (REST) or grpc://HOST:PORT")
    parser.add_argument("--model-name", default="tfalign", help="the model's name on the server")
    parser.add_argument("--clips", required=True, help=".npy of clip features [T_v, D_v]")
    parser.add_argument("--texts", required=True, help=".npy of text features [T_s, D_s]")
    parser.add_argument("--clip-times", help="CSV of start,end seconds, one line per clip (default: clip i spans "
                                             "[i, i+1))")
    parser.add_argument("--texts-file",
                        help="the texts, one a line (labels for the JSON and the plot; default: 'text 0', ...)")
    parser.add_argument("--out", required=True, help="where to write the alignment JSON")
    parser.add_argument("--plot", help="also draw a timeline PNG here (default: no picture)")
    parser.add_argument("--ground-truth", help="CSV of the true text index of each clip (-1 unmatched), one a line: "
                                               "compared in the JSON and drawn under the prediction (default: none)")
    parser.add_argument("--signature", default="serving_default",
                        help="the signature to call: serving_default (the run's own decoding), align_greedy, or "
                             "align_exact (exact best path; models whose decoder has no history)")
    return parser


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    from tfalign.serving import document

    clips, texts = document.load_matrix(args.clips, "clips"), document.load_matrix(args.texts, "texts")
    clip_times = document.load_times(args.clip_times, len(clips))
    labels = document.load_labels(args.texts_file, len(texts))
    truth = document.load_truth(args.ground_truth, len(clips), len(texts)) if args.ground_truth else None
    if args.model:
        alignment = _align_locally(args, clips, texts, clip_times, labels)
    else:
        alignment = _align_on_server(args, clips, texts, clip_times, labels)
        if alignment is None:
            return 3
    result = alignment.to_dict()
    if truth is not None:
        result["ground_truth"] = truth.tolist()
        result["clips_agreeing"] = float(np.mean(truth == alignment.clip_to_text))
    document.write_outputs(result, clip_times, truth, args.out, args.plot)
    matched = int((alignment.clip_to_text >= 0).sum())
    print(f"aligned {matched} of {len(clips)} clips to {len(texts) - len(alignment.unaligned_texts)} of "
          f"{len(texts)} texts; wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


# --signature names a SavedModel signature; Aligner.align takes the decoding it runs.
SIGNATURE_DECODINGS = {"serving_default": None, "align_greedy": "greedy", "align_exact": "exact"}


def _align_locally(args, clips, texts, clip_times, labels):
    """Through ``tfalign.Aligner`` on the SavedModel, as from Python."""
    from tfalign.serving.aligner import Aligner

    if args.signature not in SIGNATURE_DECODINGS:
        raise UserError(f"--signature: expected one of {list(SIGNATURE_DECODINGS)}, got {args.signature!r}")
    console.say(f"loading {args.model}")
    aligner = Aligner.from_saved_model(args.model)
    decoding = SIGNATURE_DECODINGS[args.signature]
    if decoding is not None and decoding not in aligner.decodings:
        raise UserError(f"--signature: {args.model} has no signature {args.signature!r} (its decoder has history: "
                        f"only greedy decoding applies)")
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
    steps = int(np.asarray(out["num_actions"]).reshape(-1)[0])
    score = out.get("score")
    probabilities = out.get("probabilities")
    return Alignment(clip_to_text=np.asarray(out["clip_to_text"])[0, : len(clips)], num_texts=len(texts),
                     actions=np.asarray(out["actions"])[0, :steps], clip_times=clip_times, texts=labels,
                     score=None if score is None else float(np.asarray(score).reshape(-1)[0]),
                     probabilities=None if probabilities is None else np.asarray(probabilities)[0, :steps])


if __name__ == "__main__":
    sys.exit(cli.run(main))
