"""Narrations in, subtitles out: parsed back with srt and webvtt-py."""

import numpy as np
import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from tfalign.data.alignment import Alignment
from tfalign.errors import UserError
from tfalign.media.episodes import cue_assignment
from tfalign.media.narration import Cue, read_narration
from tfalign.media.subtitles import retimed_cues, srt_text, vtt_text, write_subtitles

SRT = "1\n00:00:00,500 --> 00:00:02,000\nHello <i>there</i>\nfriend.\n\n2\n00:00:02,000 --> 00:00:04,250\nSecond.\n"
VTT = "WEBVTT\n\n00:00.500 --> 00:02.000\nHello there friend.\n\n00:00:02.000 --> 00:00:04.250\nSecond.\n"


def test_subtitle_cues_keep_their_times_and_lose_their_markup(tmp_path):
    for name, text in (("a.srt", SRT), ("a.vtt", VTT)):
        (tmp_path / name).write_text(text)
        assert read_narration(tmp_path / name) == [Cue("Hello there friend.", 0.5, 2.0), Cue("Second.", 2.0, 4.25)]


def test_a_script_is_split_into_sentences_or_lines(tmp_path):
    (tmp_path / "script.txt").write_text("Dr. Smith walks in. He sits down!\nThen he\nleaves.\n\nThe end")
    assert [c.text for c in read_narration(tmp_path / "script.txt")] == [
        "Dr. Smith walks in.", "He sits down!", "Then he leaves.", "The end"]
    assert [c.text for c in read_narration(tmp_path / "script.txt", split="lines")] == [
        "Dr. Smith walks in. He sits down!", "Then he", "leaves.", "The end"]
    assert all(c.start is None for c in read_narration(tmp_path / "script.txt"))


@pytest.mark.parametrize("name, content, expected", [
    ("absent.srt", None, "no such file"),
    ("empty.txt", b"  \n\n", "the file is empty"),
    ("nul.txt", b"\x00" * 64, "is a binary file"),
    ("broken.srt", b"1\n00:00:00,500 -> 00:00:02,000\nHello\n", "not a valid SRT file"),
    ("broken.vtt", b"NOT A WEBVTT FILE\n\nfoo\n", "not a valid WebVTT file"),
    ("tags.srt", b"1\n00:00:00,000 --> 00:00:01,000\n<i></i>\n", "holds no text"),
])
def test_bad_narrations_are_one_line_naming_the_field(tmp_path, name, content, expected):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=expected) as caught:
        read_narration(tmp_path / name)
    assert str(caught.value).startswith(f"narration: {tmp_path / name}: ") and "\n" not in str(caught.value)


@st.composite
def alignments(draw):
    num_clips = draw(st.integers(1, 12))
    num_texts = draw(st.integers(1, 6))
    ends = np.cumsum(draw(st.lists(st.integers(1, 40), min_size=num_clips, max_size=num_clips))) / 10.0
    times = np.stack([np.concatenate([[0.0], ends[:-1]]), ends], axis=1)
    cuts = sorted(draw(st.lists(st.integers(-1, num_texts - 1), min_size=num_clips, max_size=num_clips)))
    assignment = np.asarray([c if draw(st.booleans()) else -1 for c in cuts])
    return Alignment(clip_to_text=assignment, num_texts=num_texts, clip_times=times)


@settings(max_examples=60)
@given(alignments())
def test_subtitles_parse_back_with_times_on_clip_boundaries_in_order(alignment):
    texts = [f"text number {j}" for j in range(alignment.num_texts)]
    boundaries = set(np.round(alignment.clip_times.reshape(-1), 3).tolist())
    parsed_srt = [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in srt.parse(
        srt_text(alignment, texts))]
    parsed_vtt = [(c.start_in_seconds + int(c.start[-3:]) / 1000, c.end_in_seconds + int(c.end[-3:]) / 1000, c.text)
                  for c in webvtt.from_string(vtt_text(alignment, texts)).captions]
    expected = [(round(s, 3), round(e, 3), t) for _, s, e, t in retimed_cues(alignment, texts)]
    assert [(round(s, 3), round(e, 3), t) for s, e, t in parsed_srt] == expected
    assert [(round(s, 3), round(e, 3), t) for s, e, t in parsed_vtt] == expected
    assert len(expected) == alignment.num_texts - len(alignment.unaligned_texts)  # no cue invented
    for start, end, _ in expected:
        assert start in boundaries and end in boundaries and start < end
    assert all(a[0] <= b[0] for a, b in zip(expected, expected[1:]))


def test_write_subtitles_by_suffix(tmp_path):
    alignment = Alignment(clip_to_text=np.array([0, 0, -1, 1]), num_texts=3)
    write_subtitles(alignment, ["one", "two", "three"], tmp_path / "out.srt")
    write_subtitles(alignment, ["one", "two", "three"], tmp_path / "out.vtt")
    assert [s.content for s in srt.parse((tmp_path / "out.srt").read_text())] == ["one", "two"]
    assert [c.text for c in webvtt.read(str(tmp_path / "out.vtt"))] == ["one", "two"]
    with pytest.raises(ValueError, match="expected a subtitle file"):
        write_subtitles(alignment, ["one", "two", "three"], tmp_path / "out.txt")


@settings(max_examples=80)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=15), st.lists(st.integers(0, 60), min_size=2, max_size=12))
def test_cue_assignment_is_the_covering_cue_and_monotone(lengths, points):
    ends = np.cumsum(lengths) / 10.0
    times = np.stack([np.concatenate([[0.0], ends[:-1]]), ends], axis=1)
    points = sorted(points)
    cues = [Cue(f"c{k}", points[k] / 10.0, points[k + 1] / 10.0) for k in range(0, len(points) - 1, 2)]
    assignment = cue_assignment(times, cues)
    matched = assignment[assignment >= 0]
    assert np.all(np.diff(matched) >= 0)
    for (start, end), cue in zip(times, assignment):
        covers = [max(0.0, min(end, c.end) - max(start, c.start)) for c in cues]
        if cue >= 0:
            assert covers[cue] >= 0.5 * (end - start) - 1e-9 and covers[cue] == max(covers)
        else:
            assert max(covers) < 0.5 * (end - start) + 1e-9


@settings(max_examples=60)
@given(alignments(), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_cues_below_a_confidence_are_marked_or_left_out(alignment, threshold, seed):
    """A text's confidence is its clips' mean posterior (computed here by hand); the cues below
    the threshold begin with the marker, or are gone with drop_uncertain; the others are as before."""
    from tfalign.media.subtitles import UNCERTAIN_MARKER

    confidence = np.random.default_rng(seed).random(alignment.num_clips)
    alignment.clip_confidence = confidence.astype(np.float32)
    texts = [f"text number {j}" for j in range(alignment.num_texts)]
    mean_of = {j: float(np.mean(alignment.clip_confidence[alignment.clip_to_text == j]))
               for j in set(alignment.clip_to_text.tolist()) if j >= 0}
    below = sorted(j for j, c in mean_of.items() if c < threshold)
    assert alignment.uncertain_texts(threshold) == below
    assert all(alignment.text_confidence(j) == pytest.approx(c) for j, c in mean_of.items())
    plain = retimed_cues(alignment, texts)
    marked = retimed_cues(alignment, texts, threshold)
    dropped = retimed_cues(alignment, texts, threshold, drop_uncertain=True)
    assert [(j, s, e) for j, s, e, _ in marked] == [(j, s, e) for j, s, e, _ in plain]
    assert [t for *_, t in marked] == [UNCERTAIN_MARKER + t if j in below else t for j, _, _, t in plain]
    assert dropped == [cue for cue in plain if cue[0] not in below]
    assert [c.content for c in srt.parse(srt_text(alignment, texts, threshold))] == [t for *_, t in marked]


def test_a_confidence_threshold_needs_confidences_and_a_probability():
    alignment = Alignment(clip_to_text=np.array([0, 0, -1, 1]), num_texts=2)
    assert alignment.confidence is None and alignment.text_confidence(0) is None
    with pytest.raises(UserError, match="min_confidence: this alignment has no clip confidence") as info:
        alignment.uncertain_texts(0.5)
    assert info.value.field == "min_confidence"
    alignment.clip_confidence = np.array([0.9, 0.5, 0.2, 0.4], np.float32)
    with pytest.raises(UserError, match=r"expected a probability in \[0, 1\], got 1.5"):
        alignment.uncertain_texts(1.5)
    document = alignment.to_dict()
    assert document["confidence"] == pytest.approx(0.5) and document["texts"][0]["confidence"] == pytest.approx(0.7)
