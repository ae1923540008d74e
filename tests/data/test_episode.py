import numpy as np
import pytest

from conftest import make_episode
from tfalign.data.episode import Episode, EpisodeError, validate_episodes


def test_valid_episode_passes():
    make_episode([-1, 0, 0, 1, -1, 2], 3).validate(clip_dim=6, text_dim=5)


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda e: e.replace(clip_features=e.clip_features[:, :, None]), "clip_features", "shape"),
        (lambda e: e.replace(clip_features=e.clip_features[:, :3]), "clip_features", "width 6"),
        (lambda e: e.replace(text_features=np.zeros((0, 5))), "text_features", "non-empty"),
        (lambda e: e.replace(clip_features=np.zeros((0, 6))), "clip_features", "non-empty"),
        (lambda e: e.replace(text_features=np.where(np.eye(3, 5) > 0, np.nan, e.text_features)), "text_features",
         "NaN"),
        (lambda e: e.replace(clip_features=np.full_like(e.clip_features, np.inf)), "clip_features", "inf"),
        (lambda e: e.replace(clip_times=e.clip_times[::-1]), "clip_times", "not monotone"),
        (lambda e: e.replace(clip_times=e.clip_times + np.array([[0, 0.5]] + [[0, 0]] * 5)), "clip_times", "overlaps"),
        (lambda e: e.replace(clip_times=e.clip_times[:, ::-1]), "clip_times", "ends before"),
        (lambda e: e.replace(clip_times=e.clip_times[:4]), "clip_times", "6 rows"),
        (lambda e: e.replace(text_spans=e.text_spans[:2]), "text_spans", "3 rows"),
        (lambda e: e.replace(clip_to_text=np.array([-1, 0, 2, 1, -1, 2])), "clip_to_text", "not monotone"),
        (lambda e: e.replace(clip_to_text=np.array([-1, 0, 0, 1, -1, 3])), "clip_to_text", "[0, 3)"),
        (lambda e: e.replace(clip_to_text=np.array([-1, 0, 0])), "clip_to_text", "shape [6]"),
        (lambda e: e.replace(known_clips=[True, False]), "known_clips", "one flag per clip (6)"),
        (lambda e: e.without_labels().replace(known_clips=[True] * 6), "known_clips", "without clip_to_text"),
    ],
)
def test_bad_episodes_name_the_field(change, field, words):
    with pytest.raises(EpisodeError) as info:  # an episode is checked as it is made, and against widths
        change(make_episode([-1, 0, 0, 1, -1, 2], 3)).validate(clip_dim=6, text_dim=5)
    message = str(info.value)
    assert f"'{field}'" in message and words in message and "\n" not in message


def test_collections_must_share_widths():
    with pytest.raises(EpisodeError, match="width 6"):
        validate_episodes([make_episode([0], 1), make_episode([0], 1, clip_dim=4)])
    with pytest.raises(EpisodeError, match="no episodes"):
        validate_episodes([])


def test_an_episode_from_features_and_labels_alone_derives_its_times():
    episode = Episode(video_id="v", clip_features=np.ones((5, 512)), text_features=np.ones((3, 384)),
                      clip_to_text=[0, 0, -1, 2, 2])
    assert episode.clip_times.tolist() == [[i, i + 1] for i in range(5)]
    assert episode.text_spans.tolist() == [[0, 2], [2, 2], [3, 5]]  # text 1 has no clip: a moment
    assert episode.unmatched_spans.tolist() == [[2, 3]]
    unlabelled = Episode(clip_features=np.ones((2, 4)), text_features=np.ones((1, 4)))  # no label: unlabelled
    assert not unlabelled.labelled and unlabelled.clip_to_text is None and unlabelled.text_spans is None
    with pytest.raises(EpisodeError, match="'text_features': expected numbers"):
        Episode(clip_features=np.ones((2, 4)), text_features=[["a"]], clip_to_text=[0, 0])
