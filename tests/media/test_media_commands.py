"""From generated videos with subtitles to a trained, exported model through the
pipelines, then from a video and its narration to subtitles in one command."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import srt

from conftest import command_here

pytest.importorskip("apache_beam")

from tfalign.media.episodes import cue_assignment  # noqa: E402
from tfalign.media.narration import Cue  # noqa: E402
from tfalign.media.samples import cut_times  # noqa: E402

pytestmark = pytest.mark.large  # subprocesses and a training run


def run(*args, check=True, cwd=None, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def align_here(capfd, *args, check=True):
    """``tfalign.align`` in this process (conftest.command_here); the damaged-video test keeps real processes."""
    return command_here(capfd, "tfalign.align", *args, check=check)


@pytest.fixture(scope="module")
def trained(video_folder, extractors, tmp_path_factory):
    """pipelines.videos -> features -> prepare -> tfalign.train (which exports)."""
    folder, made = video_folder
    work = tmp_path_factory.mktemp("media-run")
    out = run("pipelines.videos", "--videos", folder, "--out", work / "cut", "--val-videos", "1",
              "--test-videos", "1").stdout
    assert "videos cut: {'train': 4, 'val': 1, 'test': 1}" in out and "rejected: 0" in out
    out = run("pipelines.features", "--elements", work / "cut" / "elements.jsonl", "--out", work / "features",
              "--image-weights", extractors.image_weights, "--image-size", "32", "--text-config",
              extractors.text_config, "--num-shards", "2").stdout
    assert "rejected: 0" in out
    run("pipelines.prepare", "--annotations", f"jsonl:{work / 'cut' / 'videos.jsonl'}", "--features",
        work / "features" / "*.npz", "--out", work / "episodes")
    run("tfalign.train", "--experiment", "tfalign_rp_sbn", "--dataset", f"tfrecord:{work / 'episodes'}",
        "--epochs", "2", "--batch-size", "2", "--output-dir", work / "run")
    return work, made


def test_a_folder_of_videos_with_subtitles_becomes_episodes_and_trains(trained, extractors):
    from tfalign.data import records

    work, made = trained
    records_by_video = {json.loads(line)["video_id"]: json.loads(line)
                        for line in (work / "cut" / "videos.jsonl").read_text().splitlines()}
    episodes = {e.video_id: e for split in ("train", "val", "test")
                for e in records.read_tfrecords(work / "episodes" / split)}
    assert sorted(episodes) == sorted(made)
    for video_id, (path, scenes, cues) in made.items():
        episode = episodes[video_id]
        assert np.all(np.abs(episode.clip_times[1:, 0][:, None] - np.asarray(cut_times(scenes, 10))[None]).min(0)
                      <= 0.1 + 1e-6) or len(episode.clip_times) < len(scenes)  # same colours run together
        truth = cue_assignment(episode.clip_times, [Cue(t, s, e) for s, e, t in cues])
        assert episode.clip_to_text.tolist() == truth.tolist()  # the ground truth is the cues' cover
        assert [t["text"] for t in records_by_video[video_id]["texts"]] == [t for _, _, t in cues]
        assert episode.clip_features.shape[1] == 576 and episode.text_features.shape[1] == 16
    recorded = json.loads((work / "run" / "saved_model" / "assets" / "feature_extractors.json").read_text())
    assert recorded["image_weights"] == extractors.image_weights and recorded["image_size"] == 32


def test_align_a_video_and_its_narration_into_subtitles(trained, video_folder, tmp_path, capfd):
    work, made = trained
    path, scenes, cues = next(iter(made.values()))
    (tmp_path / "script.txt").write_text(" ".join(f"{t[0].upper()}{t[1:]}." for _, _, t in cues))
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--video", path, "--narration",
               tmp_path / "script.txt", "--out", tmp_path / "alignment.json", "--srt", tmp_path / "aligned.srt",
               "--vtt", tmp_path / "aligned.vtt", "--plot", tmp_path / "timeline.png")
    assert "wrote" in done.stdout and (tmp_path / "timeline.png").is_file()
    document = json.loads((tmp_path / "alignment.json").read_text())
    assert [t["text"] for t in document["texts"]] == [f"{t[0].upper()}{t[1:]}." for _, _, t in cues]
    subtitles = list(srt.parse((tmp_path / "aligned.srt").read_text()))
    aligned = [t for t in document["texts"] if t["span"]]
    assert [s.content for s in subtitles] == [t["text"] for t in aligned]
    assert document["unaligned_texts"] == [t["index"] for t in document["texts"] if not t["span"]]
    clip_edges = {round(x, 3) for t in document["texts"] for c in t["clip_times"] for x in c} | \
        {round(x, 3) for c in document["unmatched_clip_times"] for x in c}
    for subtitle in subtitles:
        assert round(subtitle.start.total_seconds(), 3) in clip_edges
        assert round(subtitle.end.total_seconds(), 3) in clip_edges
    assert (tmp_path / "aligned.vtt").read_text().startswith("WEBVTT")


def _bad_media(folder):
    from tfalign.media.samples import write_bad_videos

    write_bad_videos(folder)
    (folder / "empty.srt").write_text("")
    (folder / "nul.txt").write_bytes(b"\x00" * 2048)
    (folder / "broken.srt").write_text("1\n00:00:00,500 -> 00:00:02,000\nHello\n")
    (folder / "broken.vtt").write_text("NOT WEBVTT\n\nfoo\n")
    (folder / "good.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nThe red scene.\n")


BAD_MEDIA = {
    "not a video": ("text.mp4", "good.srt", "--video: .*text.mp4: not a video file"),
    "no video stream": ("audio.wav", "good.srt", "--video: .*audio.wav: holds no video stream"),
    "zero frames": ("empty.mkv", "good.srt", "--video: .*empty.mkv: .*holds no frame"),
    "narration missing": (None, "absent.srt", "--narration: .*absent.srt: no such file"),
    "narration empty": (None, "empty.srt", "--narration: .*empty.srt: the file is empty"),
    "narration of NUL bytes": (None, "nul.txt", "--narration: .*nul.txt: is a binary file \\(it holds NUL bytes"),
    "a folder as the video": ("a_folder.mp4", "good.srt", "--video: .*a_folder.mp4: is a folder, not a video file"),
    "a still image as the video": ("still.png", "good.srt", "--video: .*still.png: is a still image \\(png\\)"),
    "broken SRT": (None, "broken.srt", "--narration: .*broken.srt: not a valid SRT file"),
    "broken VTT": (None, "broken.vtt", "--narration: .*broken.vtt: not a valid WebVTT file"),
}


def test_bad_media_are_one_line_and_write_nothing(trained, tmp_path, capsys):
    import re

    from tfalign import align, cli

    work, made = trained
    good_video = next(iter(made.values()))[0]
    _bad_media(tmp_path)
    for name, (video, narration, expected) in BAD_MEDIA.items():
        out = tmp_path / name.replace(" ", "_")
        code = cli.run(align.main, ["--model", str(work / "run" / "saved_model"), "--video",
                                    str(tmp_path / video if video else good_video), "--narration",
                                    str(tmp_path / narration), "--out", str(out / "a.json"), "--srt",
                                    str(out / "a.srt")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and re.search(expected, lines[0]), (name, lines)
        assert not out.exists(), name


def test_a_model_without_feature_extractors_needs_overrides(trained, tmp_path, extractors, capfd):
    import shutil

    work, made = trained
    model = tmp_path / "model"
    shutil.copytree(work / "run" / "saved_model", model)
    (model / "assets" / "feature_extractors.json").unlink()
    video = next(iter(made.values()))[0]
    done = align_here(capfd, "--model", model, "--video", video, "--narration", video.with_suffix(".srt"),
               "--out", tmp_path / "a.json", check=False)
    assert done.returncode == 2 and "--image-model: the model's assets name no feature extractor" in done.stderr
    assert not (tmp_path / "a.json").exists()
    align_here(capfd, "--model", model, "--video", video, "--narration", video.with_suffix(".srt"),
        "--out", tmp_path / "a.json", "--image-weights", extractors.image_weights, "--image-size", "32",
        "--text-config", extractors.text_config)
    assert json.loads((tmp_path / "a.json").read_text())["texts"]


def test_a_cp1252_narration_aligns_and_its_accents_survive(trained, tmp_path, capfd):
    """Most subtitle files in the wild are not UTF-8: a Windows-1252 .srt with accents and
    typographic quotes aligns, and the retimed .srt (into a folder that did not exist) holds
    the same text; a video cut short is aligned up to where it decodes."""
    work, made = trained
    path, scenes, cues = next(iter(made.values()))
    texts = [f"Café n°{k} — «{t}», déjà vu!" for k, (_, _, t) in enumerate(cues)]
    body = "".join(f"{k + 1}\r\n00:00:{s:06.3f} --> 00:00:{e:06.3f}\r\n{{\\an8}}<i>{text}</i>\r\n\r\n".replace(".", ",")
                   for k, ((s, e, _), text) in enumerate(zip(cues, texts)))
    (tmp_path / "narration.srt").write_bytes(body.encode("cp1252"))
    out = tmp_path / "new" / "folder"
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--video", path, "--narration",
               tmp_path / "narration.srt", "--out", out / "a.json", "--srt", out / "a.srt", "--clip-seconds", "1")
    document = json.loads((out / "a.json").read_text(encoding="utf-8"))
    assert [t["text"] for t in document["texts"]] == texts
    written = [s.content for s in srt.parse((out / "a.srt").read_text(encoding="utf-8"))]
    assert written == [t["text"] for t in document["texts"] if t["span"]] and written
    assert "Traceback" not in done.stderr
    # The same video with its second half missing: aligned up to where it decodes, one warning.
    from tfalign.media.samples import write_scene_video

    data = write_scene_video(tmp_path / "indexed.mp4", scenes, fps=10, index_first=True).read_bytes()
    (tmp_path / "cut_short.mp4").write_bytes(data[: len(data) // 2])
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--video", tmp_path / "cut_short.mp4",
               "--narration", tmp_path / "narration.srt", "--out", tmp_path / "short.json", "--clip-seconds", "1",
               check=False)
    warnings = [line for line in done.stderr.splitlines() if "frames stop at" in line]
    assert len(warnings) == 1 and not re.search(r"^\[[a-z0-9_,]+ @ 0x", done.stderr, re.M), done.stderr[-2000:]
    if done.returncode == 0:
        clips = json.loads((tmp_path / "short.json").read_text())["clip_to_text"]
        assert 0 < len(clips) < len(json.loads((out / "a.json").read_text())["clip_to_text"])


def test_a_damaged_video_ends_every_time(trained, tmp_path):
    """The zeroed-middle video once hung the command at exit (PyAV's log callback and a
    frame-threaded decoder): each run ends by itself, aligned with one warning."""
    from tfalign.media.samples import write_damaged_video

    work, made = trained
    video = write_damaged_video(tmp_path / "zeroed.mp4")
    (tmp_path / "n.srt").write_text("1\n00:00:01,000 --> 00:00:04,000\nThe red scene.\n\n"
                                    "2\n00:00:05,000 --> 00:00:09,000\nThe green scene.\n")
    for attempt in range(3):
        done = run("tfalign.align", "--model", work / "run" / "saved_model", "--video", video, "--narration",
                   tmp_path / "n.srt", "--out", tmp_path / f"a{attempt}.json", timeout=120)
        assert done.stderr.count("warning:") == 1 and "damaged there" in done.stderr, done.stderr[-1000:]
        assert "Failed to decode" not in done.stderr and (tmp_path / f"a{attempt}.json").is_file()


def test_subtitles_are_retimed_in_place(trained, tmp_path, capfd):
    """--subtitles: the narration's own file back with only its times changed (cp1252,
    CRLF, markup kept); an unaligned cue kept and listed; a flag without its partner refused."""
    work, made = trained
    path, scenes, cues = next(iter(made.values()))
    body = "".join(f"{k + 1}\r\n00:00:{s:06.3f} --> 00:00:{e:06.3f}\r\n<i>Déjà {t}</i>\r\nsecond line\r\n\r\n"
                   .replace(".", ",", 2) for k, (s, e, t) in enumerate(cues))
    body += f"{len(cues) + 1}\r\n00:01:00,000 --> 00:01:01,000\r\nAfter the end of the video.\r\n"
    (tmp_path / "n.srt").write_bytes(body.encode("cp1252"))
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--video", path, "--narration",
               tmp_path / "n.srt", "--out", tmp_path / "a.json", "--subtitles", tmp_path / "out" / "n.srt")
    written = (tmp_path / "out" / "n.srt").read_bytes()
    stamp = re.compile(rb"\d{2}:\d{2}:\d{2},\d{3}")
    assert stamp.split(written) == stamp.split(body.encode("cp1252"))
    document = json.loads((tmp_path / "a.json").read_text())
    assert len(document["unaligned"]) >= 1 and document["unaligned"][-1]["text"] == "After the end of the video."
    assert "no clip is aligned to keep their place" in done.stdout
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--clips", tmp_path / "c.npy", "--texts",
               tmp_path / "t.npy", "--out", tmp_path / "b.json", "--narration-encoding", "cp1252", check=False)
    assert done.returncode == 2 and "error: --narration-encoding: only with --video and --narration" in done.stderr
    done = align_here(capfd, "--model", work / "run" / "saved_model", "--video", path, "--narration",
               tmp_path / "n.srt", "--out", tmp_path / "b.json", "--subtitles-encoding", "utf-8", check=False)
    assert done.returncode == 2 and "error: --subtitles-encoding: only with --subtitles" in done.stderr
    assert not (tmp_path / "b.json").exists()


def test_every_output_is_checked_before_any_work(tmp_path, capfd):
    """A folder as --out, or a file as an output's folder, is refused before the model loads."""
    (tmp_path / "a_file").write_text("x")
    for flag, target in (("--out", tmp_path), ("--srt", tmp_path / "a_file" / "b.srt"), ("--plot", tmp_path),
                         ("--subtitles", tmp_path / "a_file" / "b.ass")):
        args = ["tfalign.align", "--model", tmp_path / "no_model", "--video", tmp_path / "v.mp4", "--narration",
                tmp_path / "n.srt", "--out", tmp_path / "ok.json", flag, target]
        if flag == "--out":
            args = args[:-4] + ["--out", target]
        done = align_here(capfd, *args[1:], check=False)
        assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(f"error: {flag}: "), \
            done.stderr[-500:]


def test_cues_below_the_minimum_confidence_are_marked_or_left_out(trained, tmp_path, capfd):
    """--min-confidence P: the texts whose confidence (their clips' mean posterior) is below P
    begin with "(?) " in --srt and --vtt, or are left out with --drop-uncertain; the JSON lists
    them; the picture is drawn. The recipe's model decodes greedily here: a CRF's greedy path
    has confidences too."""
    from tfalign.media.subtitles import UNCERTAIN_MARKER

    work, made = trained
    path = next(iter(made.values()))[0]
    model = work / "run" / "saved_model"
    align_here(capfd, "--model", model, "--video", path, "--narration", path.with_suffix(".srt"), "--out",
               tmp_path / "all.json", "--signature", "align_greedy")
    document = json.loads((tmp_path / "all.json").read_text())
    assert len(document["clip_confidence"]) == len(document["clip_to_text"])
    confidences = {t["index"]: t["confidence"] for t in document["texts"] if t["span"]}
    assert document["confidence"] == pytest.approx(np.mean(document["clip_confidence"]), abs=1e-6)
    threshold = float(np.median(list(confidences.values()))) + 1e-9  # some texts below, some not
    below = sorted(j for j, c in confidences.items() if c < threshold)
    assert below and len(below) < len(confidences)
    done = align_here(capfd, "--model", model, "--video", path, "--narration", path.with_suffix(".srt"), "--out",
                      tmp_path / "marked.json", "--signature", "align_greedy", "--srt", tmp_path / "marked.srt",
                      "--min-confidence", threshold, "--plot", tmp_path / "marked.png")
    marked = json.loads((tmp_path / "marked.json").read_text())
    assert [u["index"] for u in marked["uncertain_texts"]] == below and marked["min_confidence"] == threshold
    assert f"{len(below)} text(s) below confidence" in done.stdout and (tmp_path / "marked.png").is_file()
    cues = list(srt.parse((tmp_path / "marked.srt").read_text()))
    texts = {t["index"]: t["text"] for t in document["texts"]}
    assert [c.content for c in cues] == [UNCERTAIN_MARKER + texts[j] if j in below else texts[j]
                                         for j in sorted(confidences)]
    align_here(capfd, "--model", model, "--video", path, "--narration", path.with_suffix(".srt"), "--out",
               tmp_path / "dropped.json", "--signature", "align_greedy", "--vtt", tmp_path / "dropped.vtt",
               "--min-confidence", threshold, "--drop-uncertain")
    import webvtt

    assert [c.text for c in webvtt.read(str(tmp_path / "dropped.vtt"))] == [
        texts[j] for j in sorted(confidences) if j not in below]
    done = align_here(capfd, "--model", model, "--video", path, "--narration", path.with_suffix(".srt"), "--out",
                      tmp_path / "x.json", "--drop-uncertain", check=False)
    assert done.returncode == 2 and "error: --drop-uncertain: needs --min-confidence" in done.stderr
    assert not (tmp_path / "x.json").exists()
