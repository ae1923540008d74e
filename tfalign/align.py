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

import os
import pathlib
import sys

import numpy as np

from tfalign import cli, console
from tfalign.files import write_json_atomic
from tfalign.errors import UserError, first_line
from tfalign.files import atomic_path, new_parents


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


def _load_matrix(path, field):
    if not pathlib.Path(path).is_file():
        raise UserError(f"--{field}: {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"--{field}: cannot read {path} as .npy ({first_line(error, 'truncated')})") from None
    if not isinstance(array, np.ndarray):
        raise UserError(f"--{field}: {path} is an .npz archive; expected one .npy array [N, D]")
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise UserError(f"--{field}: {path} holds {array.dtype} values; expected numbers")
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"--{field}: expected a non-empty [N, D] array, got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise UserError(f"--{field}: {path} holds NaN or inf")
    return array.astype(np.float32)


def _load_times(path, num_clips):
    if not path:
        return np.stack([np.arange(num_clips), np.arange(num_clips) + 1.0], axis=1)
    if not pathlib.Path(path).is_file():
        raise UserError(f"--clip-times: {path}: no such file")
    try:
        times = np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"--clip-times: {path}: expected lines of start,end ({first_line(error)})") from None
    if times.shape != (num_clips, 2):
        raise UserError(f"--clip-times: {path}: expected {num_clips} lines of start,end (one per clip), "
                        f"got shape {list(times.shape)}")
    if not np.all(np.isfinite(times)):
        raise UserError(f"--clip-times: {path}: line {int(np.argwhere(~np.isfinite(times))[0, 0]) + 1} is not finite")
    if np.any(times[:, 1] <= times[:, 0]):
        line = int(np.argmax(times[:, 1] <= times[:, 0])) + 1
        raise UserError(f"--clip-times: {path}: line {line}: the end must be after the start "
                        f"({times[line - 1].tolist()})")
    if np.any(np.diff(times[:, 0]) <= 0):
        line = int(np.argmax(np.diff(times[:, 0]) <= 0)) + 2
        raise UserError(f"--clip-times: {path}: line {line}: clips must start in increasing order")
    if np.any(times[:-1, 1] - times[1:, 0] > 1e-3):
        line = int(np.argmax(times[:-1, 1] - times[1:, 0] > 1e-3)) + 2
        raise UserError(f"--clip-times: {path}: line {line} overlaps the clip before it")
    return times


def _load_truth(path, num_clips, num_texts):
    if not pathlib.Path(path).is_file():
        raise UserError(f"--ground-truth: {path}: no such file")
    try:
        truth = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"--ground-truth: {path}: expected one integer a line ({error})") from None
    if truth.shape != (num_clips,):
        raise UserError(f"--ground-truth: expected {num_clips} lines (one per clip), got {truth.size}")
    if truth.min() < -1 or truth.max() >= num_texts:
        raise UserError(f"--ground-truth: text indices must be -1 (unmatched) or in 0..{num_texts - 1}")
    matched = truth[truth >= 0]
    if np.any(np.diff(matched) < 0):
        raise UserError("--ground-truth: the alignment must be monotone (text indices never decrease)")
    return truth


def alignment_document(clip_to_text, clip_times, texts, actions) -> dict:
    clip_to_text = np.asarray(clip_to_text)
    entries = []
    for j, label in enumerate(texts):
        clips = np.flatnonzero(clip_to_text == j)
        entries.append({"index": j, "text": label, "clips": clips.tolist(),
                        "clip_times": clip_times[clips].tolist(),
                        "span": [float(clip_times[clips, 0].min()), float(clip_times[clips, 1].max())]
                        if len(clips) else None})
    unmatched = np.flatnonzero(clip_to_text < 0)
    return {"texts": entries, "unmatched_clips": unmatched.tolist(),
            "unmatched_clip_times": clip_times[unmatched].tolist(), "actions": [int(a) for a in actions]}


def _draw_row(ax, y, clip_to_text, clip_times, palette, span, wrong=None):
    """One row of clips coloured by text (unmatched: light grey), text numbers above."""
    last_label = -float("inf")
    for i, (a, b) in enumerate(clip_times):
        text = int(clip_to_text[i])
        color = "0.85" if text < 0 else palette[text % len(palette)]
        ax.barh(y, b - a, left=a, height=0.6, color=color, edgecolor="white", linewidth=0.3)
    for text in np.unique(clip_to_text[clip_to_text >= 0]):
        own = clip_times[clip_to_text == text]
        middle = (own[0, 0] + own[-1, 1]) / 2
        if middle - last_label > 0.012 * span:  # skip labels that would overlap
            ax.text(middle, y + 0.32, str(text), ha="center", va="bottom", fontsize=6)
            last_label = middle
    if wrong is not None and wrong.any():
        middles = clip_times[wrong].mean(axis=1)
        ax.plot(middles, np.full(len(middles), y - 0.42), linestyle="none", marker="^", markersize=3.5,
                color="crimson")


def plot_timeline(document, clip_times, path, ground_truth=None):
    """Clips as bars coloured by their text (unmatched: grey), text numbers above;
    with ``ground_truth``, the true alignment as a second row and the clips
    the prediction gets wrong marked under the prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # no greys
    predicted = np.full(len(clip_times), -1)
    for entry in document["texts"]:
        predicted[entry["clips"]] = entry["index"]
    start, end = float(clip_times[0, 0]), float(clip_times[-1, 1])
    rows = 1 if ground_truth is None else 2
    fig, ax = plt.subplots(figsize=(13, 1.3 + 0.8 * rows))
    wrong = None if ground_truth is None else predicted != ground_truth
    top = rows - 1
    _draw_row(ax, top, predicted, clip_times, palette, end - start, wrong)
    labels = ["prediction"]
    if ground_truth is not None:
        _draw_row(ax, 0, np.asarray(ground_truth), clip_times, palette, end - start)
        labels.append("ground truth")
        agree = 1.0 - wrong.mean()
        ax.set_title(f"{int((~wrong).sum())} of {len(wrong)} clips agree with the ground truth ({agree:.0%})",
                     fontsize=9, loc="left")
    ax.set_yticks(range(top, -1, -1), labels, fontsize=8)
    handles = [Patch(color="0.85", label="unmatched clip")]
    if wrong is not None:
        handles.append(Line2D([], [], linestyle="none", marker="^", color="crimson", label="wrong clip"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=7, frameon=False,
              borderaxespad=0.2)
    ax.set_xlabel("seconds: clips coloured by their text (text number above)", fontsize=8)
    ax.set_xlim(start, end)
    ax.set_ylim(-0.6, top + 0.75)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = cli.parse(build_parser(), argv)
    from tfalign.serving.client import ServingError, connect

    clips, texts = _load_matrix(args.clips, "clips"), _load_matrix(args.texts, "texts")
    clip_times = _load_times(args.clip_times, len(clips))
    labels = [f"text {j}" for j in range(len(texts))]
    if args.texts_file:
        try:
            labels = [line for line in pathlib.Path(args.texts_file).read_text(encoding="utf-8").splitlines()
                      if line.strip()]
        except UnicodeDecodeError:
            raise UserError(f"--texts-file: {args.texts_file}: not a UTF-8 text file") from None
        if len(labels) != len(texts):
            raise UserError(f"--texts-file: {len(labels)} texts, but --texts has {len(texts)} rows")
    truth = _load_truth(args.ground_truth, len(clips), len(texts)) if args.ground_truth else None
    console.say(f"loading {args.model}" if args.model else f"connecting to {args.server} (model {args.model_name})")
    client = connect(args.model, args.server, args.model_name, signature=args.signature)
    if hasattr(client, "input_widths"):
        widths = client.input_widths()
        for name, array, width in (("clips", clips, widths[0]), ("texts", texts, widths[1])):
            if array.shape[1] != width:
                raise UserError(f"--{name}: the model expects width {width}, got shape {list(array.shape)}")
    request = {"clip_features": clips[None], "text_features": texts[None],
               "clip_lengths": np.asarray([len(clips)], np.int32), "text_lengths": np.asarray([len(texts)], np.int32)}
    console.say(f"aligning {len(clips)} clips with {len(texts)} texts ({args.signature})")
    try:
        out = client.align(request)
    except ServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    steps = int(np.asarray(out["num_actions"]).reshape(-1)[0])
    clip_to_text = np.asarray(out["clip_to_text"])[0, : len(clips)]
    document = alignment_document(clip_to_text, clip_times, labels, np.asarray(out["actions"])[0, :steps])
    if truth is not None:
        document["ground_truth"] = truth.tolist()
        document["clips_agreeing"] = float(np.mean(truth == clip_to_text))
    write_outputs(document, clip_times, truth, args.out, args.plot)
    matched = sum(len(t["clips"]) for t in document["texts"])
    print(f"aligned {matched} of {len(clips)} clips to {sum(bool(t['clips']) for t in document['texts'])} of "
          f"{len(texts)} texts; wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def write_outputs(document, clip_times, truth, out, plot=None) -> None:
    """All or nothing: the picture is drawn under a temporary name first, the
    JSON written, then the picture renamed; a failure leaves neither."""
    if plot is None:
        write_json_atomic(out, document)
        return
    plot = pathlib.Path(plot)
    plot_tmp = atomic_path(plot, ".png")
    with new_parents(plot):
        try:
            if plot.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(plot))
            plot_timeline(document, clip_times, plot_tmp, ground_truth=truth)
            write_json_atomic(out, document)
            os.replace(plot_tmp, plot)
        except BaseException:
            plot_tmp.unlink(missing_ok=True)
            raise


if __name__ == "__main__":
    sys.exit(cli.run(main))
