import numpy as np
import pytest

from tfalign.data import yms
from tfalign.data.cutting import cut_at_text_boundaries
from tfalign.data.datasets import DataConfig, load_episodes
from tfalign.data.episode import EpisodeError


def write_fixture(folder):
    (folder / "clip_segmentation.txt").write_text(
        "0001/0001_00.00.00.000-00.00.02.000\n0001/0001_00.00.02.000-00.00.03.500\n"
        "0001/0001_00.00.03.500-00.00.05.000\n0001/0001_00.00.05.000-00.00.06.000\n"
        "0001/0001_00.00.06.000-00.00.09.000\n0002/0002_00.00.00.000-00.00.01.000\n"
        "0002/0002_00.00.01.000-00.00.02.000")
    (folder / "annotations_phrases.txt").write_text(
        "0001_00.00.00.100-00.00.03.000\tA man walks in, \n"
        "0001_00.00.03.000-00.00.03.200\tUNMATCHED: narration with no picture\n"
        "0001_00.00.03.200-00.00.05.100\t and sits down.\n"
        "0001_00.00.05.100-00.00.06.000\tUNMATCHED\n"
        "0002_00.00.00.000-00.00.02.000\tThe end", encoding="utf-8")
    (folder / "training_split.txt").write_text("0001\n")
    (folder / "val_split.txt").write_text("# 0003  # a duplicate\n0002\n")
    (folder / "test_split.txt").write_text("0002")


def test_fixture_parse(tmp_path):
    write_fixture(tmp_path)
    videos = {v["video_id"]: v for v in yms.parse_yms(tmp_path)["videos"]}
    first = videos["0001"]
    assert first["split"] == "train"
    assert first["text_spans"] == [[0.1, 3.0], [3.2, 5.1]]  # UNMATCHED and UNMATCHED: are not texts
    # Clip 1 (2.0-3.5) overlaps text 0 by 1.0 s and text 1 by 0.3 s; clip 3 and 4 overlap no text.
    assert first["clip_to_text"] == [0, 0, 1, -1, -1]
    assert first["unmatched_spans"] == [[0.0, 0.1], [3.0, 3.2], [5.1, 9.0]]
    assert [v["split"] for v in yms.parse_yms(tmp_path)["videos"]] == ["train", "val", "test"]


def test_fixture_bad_lines_name_the_file(tmp_path):
    write_fixture(tmp_path)
    (tmp_path / "annotations_phrases.txt").write_text("0001_00.00.00.100-00.00.03.000 no tab here\n")
    with pytest.raises(EpisodeError, match="annotations_phrases.txt:1: field 'annotation'"):
        yms.parse_yms(tmp_path)
    (tmp_path / "test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test_split.txt"):
        yms.parse_yms(tmp_path)


def test_real_annotations(yms_dir):
    videos = yms.parse_yms(yms_dir)["videos"]
    assert len(videos) == 93 and "0087" not in {v["video_id"] for v in videos}
    assert [sum(v["split"] == s for v in videos) for s in yms.SPLITS] == [66, 12, 15]
    assert sum(len(v["text_spans"]) for v in videos) == 5933
    all_clips = sum(len(s) for s in yms.read_clips(yms_dir / "clip_segmentation.txt").values())
    assert all_clips == 16960
    held_out = [v for v in videos if v["split"] != "train"]
    longest = max(held_out, key=lambda v: len(v["clip_times"]))
    assert (longest["video_id"], len(longest["clip_times"])) == ("0022", 249)
    most_texts = max(held_out, key=lambda v: len(v["text_spans"]))
    assert (most_texts["video_id"], len(most_texts["text_spans"])) == ("0089", 95)
    assert max(len(v["clip_times"]) + len(v["text_spans"]) for v in held_out) == 317


def test_embedded_structure_is_the_parsed_annotations(yms_dir):
    assert yms.load_structure()["videos"] == yms.parse_yms(yms_dir)["videos"]


def test_training_samples_are_cut_at_text_boundaries():
    train = load_episodes(DataConfig(features="rp"), "train")
    samples = [s for e in train for s in cut_at_text_boundaries(e, max_actions=100)]
    for s in samples:
        s.validate()
    assert max(s.num_actions for s in samples) <= 100
    assert sum(s.num_clips for s in samples) == sum(e.num_clips for e in train)
    assert sum(s.num_texts for s in samples) == sum(e.num_texts for e in train)
    # Recorded maxima (the paper's: 94 clips, 40 texts, 108 actions).
    assert (max(s.num_clips for s in samples), max(s.num_texts for s in samples)) == (92, 41)


def test_cut_pieces_reassemble():
    episode = load_episodes(DataConfig(features="rp"), "test")[0]
    pieces = cut_at_text_boundaries(episode, max_actions=40)
    assert np.array_equal(np.concatenate([p.clip_features for p in pieces]), episode.clip_features)
    offsets = np.cumsum([0] + [p.num_texts for p in pieces[:-1]])
    rebuilt = np.concatenate([np.where(p.clip_to_text >= 0, p.clip_to_text + o, -1) for p, o in zip(pieces, offsets)])
    assert np.array_equal(rebuilt, episode.clip_to_text)
