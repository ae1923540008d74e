"""One feature a clip, through random-weight encoders made by the test; the extractors' record."""

import dataclasses

import numpy as np
import pytest

from tfalign.errors import UserError
from tfalign.media.extractors import FeatureExtractors, clip_sample_times, encode_clips
from tfalign.media.inputs import media_inputs
from tfalign.media.samples import PALETTE, Scene, write_scene_video
from tfalign.media.video import read_frames


def test_one_feature_a_clip_and_frames_averaged(tmp_path, extractors):
    path = write_scene_video(tmp_path / "v.mp4", [Scene(PALETTE[i], 1.0 + i * 0.5) for i in range(4)], fps=10)
    clip_times = np.asarray([[0.0, 1.0], [1.0, 2.5], [2.5, 4.5], [4.5, 7.0]])
    encoder = extractors.image_encoder()
    single = encode_clips(path, clip_times, encoder, batch_size=3)
    assert single.shape == (4, 576) and single.dtype == np.float32
    frames = np.stack(list(read_frames(path, clip_times.mean(axis=1), encoder.image_size))).astype(np.float32)
    assert np.allclose(single, encoder(frames), atol=1e-5)  # the centre frame's feature
    averaged = encode_clips(path, clip_times, encoder, frames_per_clip=3, batch_size=4)
    times = clip_sample_times(clip_times, 3)
    assert np.all(np.diff(times) > 0) and np.allclose(times[:3], [1 / 6, 0.5, 5 / 6])
    each = encoder(np.stack(list(read_frames(path, times, encoder.image_size))).astype(np.float32))
    assert np.allclose(averaged, each.reshape(4, 3, -1).mean(axis=1), atol=1e-5)


def test_media_inputs_cut_encode_and_project(tmp_path, extractors):
    from tfalign.data.projection import RandomProjection
    from tfalign.media.samples import srt_text

    path = write_scene_video(tmp_path / "v.mp4", [Scene(PALETTE[i], 1.0) for i in range(3)], fps=10)
    (tmp_path / "v.srt").write_text(srt_text([(0.0, 2.0, "the red scene then the green scene"),
                                              (2.0, 3.0, "the yellow scene")]))
    inputs = media_inputs(path, tmp_path / "v.srt", extractors, show_progress=False)
    assert inputs.clip_times.tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]
    assert inputs.clip_features.shape == (3, 576) and inputs.text_features.shape == (2, 16)
    assert inputs.texts == ["the red scene then the green scene", "the yellow scene"]
    projected = media_inputs(path, tmp_path / "v.srt", dataclasses.replace(
        extractors, projection={"output_dim": 20, "clip_seed": 4, "text_seed": 5}), show_progress=False)
    assert np.allclose(projected.clip_features, RandomProjection(576, 20, 4)(inputs.clip_features), atol=1e-4)
    assert np.allclose(projected.text_features, RandomProjection(16, 20, 5)(inputs.text_features), atol=1e-4)
    with pytest.raises(UserError, match="name no feature extractor"):
        media_inputs(path, tmp_path / "v.srt", None)


def test_the_extractors_record_round_trips_and_overrides(tmp_path, extractors):
    assert FeatureExtractors.from_dict(extractors.to_dict()) == extractors
    hub = extractors.override(image_hub=str(tmp_path), text_hub=str(tmp_path))
    assert hub.image_hub == str(tmp_path) and hub.text_config is None and hub.text_hub == str(tmp_path)
    with pytest.raises(UserError, match="image_hub: .* not a SavedModel folder"):
        hub.check_files()
    with pytest.raises(UserError, match="image_weights: .*absent.h5: no such file"):
        extractors.override(image_weights=str(tmp_path / "absent.h5")).check_files()
    with pytest.raises(UserError, match="image_model: expected one of"):
        extractors.override(image_model="vgg99")
    with pytest.raises(UserError, match="unknown field 'colour'"):
        FeatureExtractors.from_dict({"colour": 1})
