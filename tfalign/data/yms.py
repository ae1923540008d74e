"""The YMS (YouTube Movie Summaries) annotations: parsing and the embedded structure.

The text units are the narration *phrases*. Lines whose text is exactly
``UNMATCHED`` are video without narration; texts beginning ``UNMATCHED:`` have
no counterpart in the video and are dropped. A clip belongs to the annotation
line it overlaps most in time: a matched phrase, or else it is unmatched. The
unmatched spans of a video are the parts of its timeline that no matched
phrase covers. Video 0087 duplicates 0032 and is left out (it is commented
out of the split files).
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import pathlib

import numpy as np

from tfalign.data.episode import EpisodeError
from tfalign.errors import UserError
from tfalign.files import atomic_file

SPLITS = ("train", "val", "test")
_SPLIT_FILES = {"train": "training_split.txt", "val": "val_split.txt", "test": "test_split.txt"}
EMBEDDED_STRUCTURE = pathlib.Path(__file__).with_name("yms_structure.json.gz")


def default_annotation_dir() -> pathlib.Path | None:
    """``$TFALIGN_YMS_DIR``, else ``../shared/data/yms`` beside the checkout, if present."""
    candidates = [os.environ.get("TFALIGN_YMS_DIR")]
    repo = pathlib.Path(__file__).resolve().parents[2]
    candidates.append(repo.parent / "shared" / "data" / "yms")
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / "clip_segmentation.txt").exists():
            return pathlib.Path(candidate)
    return None


def parse_timestamp(text: str) -> float:
    """``HH.MM.SS.mmm`` -> seconds."""
    try:
        hours, minutes, seconds, millis = text.split(".")
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000.0
    except ValueError:
        raise UserError(f"bad timestamp {text!r}: expected HH.MM.SS.mmm") from None


def parse_span(text: str) -> tuple[float, float]:
    """``HH.MM.SS.mmm-HH.MM.SS.mmm`` -> (start, end) seconds."""
    start, sep, end = text.partition("-")
    if not sep:
        raise UserError(f"bad span {text!r}: expected HH.MM.SS.mmm-HH.MM.SS.mmm")
    return parse_timestamp(start), parse_timestamp(end)


def _lines(path: pathlib.Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EpisodeError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line


def read_clips(path) -> dict[str, list[tuple[float, float]]]:
    clips = collections.defaultdict(list)
    for number, line in _lines(pathlib.Path(path)):
        try:
            video, rest = line.strip().split("/", 1)
            prefix, span = rest.split("_", 1)
            clips[video].append(parse_span(span))
        except ValueError as error:
            raise EpisodeError(f"{path}:{number}: field 'clip_segmentation': {error}") from None
    return {video: sorted(spans) for video, spans in clips.items()}


def read_annotations(path) -> dict[str, list[tuple[tuple[float, float], str]]]:
    lines = collections.defaultdict(list)
    for number, line in _lines(pathlib.Path(path)):
        key, sep, text = line.partition("\t")
        try:
            if not sep:
                raise UserError("expected VVVV_HH.MM.SS.mmm-HH.MM.SS.mmm<TAB>text")
            video, span = key.strip().split("_", 1)
            lines[video].append((parse_span(span), text.strip()))
        except ValueError as error:
            raise EpisodeError(f"{path}:{number}: field 'annotation': {error}") from None
    return lines


def read_split(path) -> list[str]:
    ids = []
    for _, line in _lines(pathlib.Path(path)):
        video = line.split("#", 1)[0].strip()
        if video:
            ids.append(video)
    return ids


def structure_from_annotations(clips, annotations) -> dict:
    """One video's alignment structure (no features) from its clips and lines.

    Every annotation line competes for the clips it overlaps; a clip whose
    best line is ``UNMATCHED`` or ``UNMATCHED: ...`` (or that overlaps no
    line) is unmatched.
    """
    is_text = np.asarray([text != "UNMATCHED" and not text.startswith("UNMATCHED:") for _, text in annotations], bool)
    line_spans = np.asarray([span for span, _ in annotations], np.float64).reshape(-1, 2)
    clip_times = np.asarray(clips, np.float64).reshape(-1, 2)
    text_spans = line_spans[is_text]
    text_index = np.cumsum(is_text) - 1  # line -> index among the matched texts
    clip_to_text = np.full(len(clip_times), -1)
    if len(line_spans):
        start = np.maximum(clip_times[:, None, 0], line_spans[None, :, 0])
        end = np.minimum(clip_times[:, None, 1], line_spans[None, :, 1])
        overlap = np.maximum(end - start, 0.0)
        best = overlap.argmax(axis=1)
        claimed = (overlap.max(axis=1) > 0) & is_text[best]
        clip_to_text[claimed] = text_index[best[claimed]]
    return {
        "clip_times": clip_times.tolist(),
        "text_spans": text_spans.tolist(),
        "clip_to_text": clip_to_text.astype(int).tolist(),
        "unmatched_spans": uncovered_spans(clip_times[0, 0], clip_times[-1, 1], text_spans).tolist(),
    }


def uncovered_spans(start: float, end: float, spans: np.ndarray) -> np.ndarray:
    """Parts of [start, end] that no span covers."""
    gaps, cursor = [], start
    for span_start, span_end in sorted(spans.tolist()):
        if span_start > cursor:
            gaps.append([cursor, min(span_start, end)])
        cursor = max(cursor, span_end)
    if cursor < end:
        gaps.append([cursor, end])
    return np.asarray([g for g in gaps if g[1] > g[0]], np.float64).reshape(-1, 2)


def parse_yms(annotation_dir, text_level: str = "phrases") -> dict:
    """Parses the annotation files into {"videos": [...]} with splits."""
    root = pathlib.Path(annotation_dir)
    for name in ["clip_segmentation.txt", f"annotations_{text_level}.txt", *_SPLIT_FILES.values()]:
        if not (root / name).exists():
            raise FileNotFoundError(f"YMS annotations: {root / name} is missing")
    clips = read_clips(root / "clip_segmentation.txt")
    annotations = read_annotations(root / f"annotations_{text_level}.txt")
    videos = []
    for split in SPLITS:
        for video in read_split(root / _SPLIT_FILES[split]):
            if video not in clips:
                raise EpisodeError(f"YMS video {video!r} of the {split} split has no clips in clip_segmentation.txt")
            entry = {"video_id": video, "split": split}
            entry.update(structure_from_annotations(clips[video], annotations.get(video, [])))
            if not entry["text_spans"]:
                raise EpisodeError(f"YMS video {video!r}: field 'text_spans': no matched text")
            videos.append(entry)
    return {"source": "YMS annotations", "text_level": text_level, "videos": videos}


def write_structure(structure: dict, path) -> None:
    path = pathlib.Path(path)
    with atomic_file(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(structure, handle, separators=(",", ":"))


def load_structure(path=None) -> dict:
    """The embedded structure file (or another one written by write_structure)."""
    with gzip.open(path or EMBEDDED_STRUCTURE, "rt", encoding="utf-8") as handle:
        return json.load(handle)
