"""An alignment a person reads: a video's inputs loaded and checked, the JSON
document (per text its clips and times), the timeline picture, both written
all or nothing. ``python -m tfalign.align`` is the command around it.
"""

from __future__ import annotations

import pathlib

import numpy as np

from tfalign.errors import UserError, first_line
from tfalign.files import atomic_file, new_parents, write_json_atomic, writing


def _error(field: str, detail: str) -> UserError:
    """A bad input file, named by its argument (the command line shows the flag)."""
    return UserError(f"{field}: {detail}", field=field)


def load_matrix(path, field):
    """A .npy [N, D] of finite numbers as float32; ``field`` names the argument in errors."""
    if not pathlib.Path(path).is_file():
        raise _error(field, f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise _error(field, f"cannot read {path} as .npy ({first_line(error, 'truncated')})") from None
    if not isinstance(array, np.ndarray):
        raise _error(field, f"{path} is an .npz archive; expected one .npy array [N, D]")
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise _error(field, f"{path} holds {array.dtype} values; expected numbers")
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise _error(field, f"expected a non-empty [N, D] array, got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise _error(field, f"{path} holds NaN or inf")
    return array.astype(np.float32)


def default_times(num_clips: int) -> np.ndarray:
    """Clip i spans [i, i + 1) seconds: the times of clips given none."""
    return np.stack([np.arange(num_clips), np.arange(num_clips) + 1.0], axis=1)


def check_times(times, num_clips: int, field: str = "clip_times", where: str = "line") -> np.ndarray:
    """[N, 2] start/end seconds, one row a clip: finite, increasing, not overlapping."""
    times = np.asarray(times, np.float64)
    if times.shape != (num_clips, 2):
        raise _error(field, f"expected {num_clips} rows of start,end (one per clip), got shape {list(times.shape)}")
    if not np.all(np.isfinite(times)):
        raise _error(field, f"{where} {int(np.argwhere(~np.isfinite(times))[0, 0]) + 1} is not finite")
    if np.any(times[:, 1] <= times[:, 0]):
        row = int(np.argmax(times[:, 1] <= times[:, 0])) + 1
        raise _error(field, f"{where} {row}: the end must be after the start ({times[row - 1].tolist()})")
    if np.any(np.diff(times[:, 0]) <= 0):
        raise _error(field, f"{where} {int(np.argmax(np.diff(times[:, 0]) <= 0)) + 2}: clips must start in "
                            f"increasing order")
    if np.any(times[:-1, 1] - times[1:, 0] > 1e-3):
        raise _error(field, f"{where} {int(np.argmax(times[:-1, 1] - times[1:, 0] > 1e-3)) + 2} overlaps the clip "
                            f"before it")
    return times


def load_times(path, num_clips):
    """[N, 2] start/end seconds from a CSV (clip i spans [i, i+1) without one): increasing, not overlapping."""
    if not path:
        return default_times(num_clips)
    if not pathlib.Path(path).is_file():
        raise _error("clip_times", f"{path}: no such file")
    try:
        times = np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise _error("clip_times", f"{path}: expected lines of start,end ({first_line(error)})") from None
    if times.shape != (num_clips, 2):
        raise _error("clip_times", f"{path}: expected {num_clips} lines of start,end (one per clip), got shape "
                                   f"{list(times.shape)}")
    try:
        return check_times(times, num_clips)
    except UserError as error:
        raise _error("clip_times", f"{path}: {str(error).removeprefix('clip_times: ')}") from None


def load_truth(path, num_clips, num_texts):
    """The true text index of each clip (-1 unmatched), one a line: monotone."""
    if not pathlib.Path(path).is_file():
        raise _error("ground_truth", f"{path}: no such file")
    try:
        truth = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (ValueError, UnicodeDecodeError) as error:
        raise _error("ground_truth", f"{path}: expected one integer a line ({error})") from None
    if truth.shape != (num_clips,):
        raise _error("ground_truth", f"expected {num_clips} lines (one per clip), got {truth.size}")
    if truth.min() < -1 or truth.max() >= num_texts:
        raise _error("ground_truth", f"text indices must be -1 (unmatched) or in 0..{num_texts - 1}")
    matched = truth[truth >= 0]
    if np.any(np.diff(matched) < 0):
        raise _error("ground_truth", "the alignment must be monotone (text indices never decrease)")
    return truth


def load_labels(path, num_texts) -> list[str]:
    """One text a line (blank lines skipped), as many as the text features; "text j" without a file."""
    if not path:
        return [f"text {j}" for j in range(num_texts)]
    try:
        labels = [line for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise _error("texts_file", f"{path}: not a UTF-8 text file") from None
    if len(labels) != num_texts:
        raise _error("texts_file", f"{len(labels)} texts, but the text features have {num_texts} rows")
    return labels


def alignment_document(clip_to_text, clip_times, texts, actions) -> dict:
    """Per text its clips, their times and span; the unmatched clips; the action sequence."""
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


CHARACTERS_ACROSS = 220  # about how many 6-point characters the timeline's width holds


def text_label(index: int, words: str | None, share: float) -> str:
    """A text's label over its clips: its number and, as room allows, its first words
    (``share``: the fraction of the timeline its clips span).

    Example:
    >>> text_label(3, "A man walks into the bar and sits down.", 0.1)
    '3 A man walks into th…'
    """
    room = int(share * CHARACTERS_ACROSS) - len(str(index)) - 1
    if not words or room < 4:
        return str(index)
    return f"{index} {words if len(words) <= room else words[:room - 1].rstrip() + '…'}"


def _draw_row(ax, y, clip_to_text, clip_times, palette, span, wrong=None, texts=None, confidence=None):
    """One row of clips coloured by text (unmatched: light grey), each text's number and
    first words above its clips; with ``confidence``, each clip as opaque as its posterior."""
    last_end = -float("inf")
    for i, (a, b) in enumerate(clip_times):
        text = int(clip_to_text[i])
        color = "0.85" if text < 0 else palette[text % len(palette)]
        alpha = 1.0 if confidence is None else 0.15 + 0.85 * float(np.clip(confidence[i], 0.0, 1.0))
        ax.barh(y, b - a, left=a, height=0.6, color=color, alpha=alpha, edgecolor="white", linewidth=0.3)
    for text in np.unique(clip_to_text[clip_to_text >= 0]):
        own = clip_times[clip_to_text == text]
        label = text_label(int(text), (texts or {}).get(int(text)), (own[-1, 1] - own[0, 0]) / span)
        start = (own[0, 0] + own[-1, 1]) / 2 - len(label) * span / CHARACTERS_ACROSS / 2
        if start > last_end:  # skip labels that would overlap the one before
            ax.text((own[0, 0] + own[-1, 1]) / 2, y + 0.32, label, ha="center", va="bottom", fontsize=6)
            last_end = start + len(label) * span / CHARACTERS_ACROSS
    if wrong is not None and wrong.any():
        middles = clip_times[wrong].mean(axis=1)
        ax.plot(middles, np.full(len(middles), y - 0.42), linestyle="none", marker="^", markersize=3.5,
                color="crimson")


def plot_timeline(document, clip_times, path, ground_truth=None):
    """Clips as bars coloured by their text (unmatched: grey), each text's number and
    first words above (its label in the document, when it is not just "text j");
    each predicted clip shaded by its confidence when the document has
    ``clip_confidence`` (paler: less sure); with ``ground_truth``, the true
    alignment as a second row and the clips the prediction gets wrong marked
    under the prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # no greys
    predicted = np.full(len(clip_times), -1)
    texts = {}
    for entry in document["texts"]:
        predicted[entry["clips"]] = entry["index"]
        if entry.get("text") and entry["text"] != f"text {entry['index']}":
            texts[entry["index"]] = entry["text"]
    start, end = float(clip_times[0, 0]), float(clip_times[-1, 1])
    rows = 1 if ground_truth is None else 2
    fig, ax = plt.subplots(figsize=(13, 1.3 + 0.8 * rows))
    wrong = None if ground_truth is None else predicted != ground_truth
    top = rows - 1
    confidence = document.get("clip_confidence")
    _draw_row(ax, top, predicted, clip_times, palette, end - start, wrong, texts, confidence)
    labels = ["prediction"]
    if ground_truth is not None:
        _draw_row(ax, 0, np.asarray(ground_truth), clip_times, palette, end - start, texts=texts)
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
    shading = "; the paler, the less sure" if confidence is not None else ""
    ax.set_xlabel(f"seconds: clips coloured by their text (its number and first words above){shading}", fontsize=8)
    ax.set_xlim(start, end)
    ax.set_ylim(-0.6, top + 0.75)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(document, clip_times, truth, out, plot=None) -> None:
    """All or nothing: the picture is drawn under a temporary name first, the
    JSON written, then the picture renamed; a failure leaves neither."""
    if plot is None:
        write_json_atomic(out, document)
        return
    plot = pathlib.Path(plot)
    with writing("the alignment's picture and JSON", plot), new_parents(plot), \
            atomic_file(plot, ".png") as plot_tmp:
        if plot.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(plot))
        plot_timeline(document, clip_times, plot_tmp, ground_truth=truth)
        write_json_atomic(out, document)
