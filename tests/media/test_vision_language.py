"""Vision-language encoders from keras-hub presets (``--encoder``): tiny CLIP and
SigLIP presets built here and loaded from their folders, zero-shot alignment of a
generated video with no trained model, and the one-line refusals."""

import json

import numpy as np
import pytest

pytest.importorskip("keras_hub")

import tfalign  # noqa: E402
from tfalign.align import main as align_main  # noqa: E402
from tfalign.errors import UserError  # noqa: E402
from tfalign.media import vision_language  # noqa: E402
from tfalign.media.extractors import FeatureExtractors  # noqa: E402
from tfalign.media.samples import sample_video  # noqa: E402
from tiny_vision_language import WIDTH, save_tiny_clip, save_tiny_siglip  # noqa: E402


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("presets")
    return {"clip": save_tiny_clip(folder / "clip"), "siglip": save_tiny_siglip(folder / "siglip")}


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    path, _, cues = sample_video(tmp_path_factory.mktemp("movie") / "movie.mp4", np.random.default_rng(5))
    return path, cues


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_a_preset_folder_encodes_frames_and_texts_into_one_space(presets, kind):
    images, texts = vision_language.ImageTower(presets[kind]), vision_language.TextTower(presets[kind])
    assert images.image_size == 32
    frames = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3))
    clip_features, text_features = images(frames), texts(["the red scene", "The Blue scene!", "green"])
    assert clip_features.shape == (3, WIDTH) and text_features.shape == (3, WIDTH)
    np.testing.assert_allclose(np.linalg.norm(clip_features, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_features, axis=1), 1, rtol=1e-5)
    assert not np.allclose(text_features[0], text_features[1])  # the texts are read, not a constant
    # The same as keras-hub's own preprocessing and towers.
    backbone, preprocessor = vision_language.load(presets[kind])
    packed = preprocessor({"images": frames.astype(np.float32), "prompts": ["the red scene", "The Blue scene!",
                                                                            "green"]})
    reference = np.asarray(backbone.get_text_embeddings(packed["token_ids"]))
    np.testing.assert_allclose(text_features, reference / np.linalg.norm(reference, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-5)
    pictures = np.asarray(backbone.get_vision_embeddings(packed["images"]))
    np.testing.assert_allclose(clip_features, pictures / np.linalg.norm(pictures, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-5)


def test_a_vision_language_preset_replaces_both_encoders_and_back():
    mixed = FeatureExtractors(image_hub=None, text_config="bert.json").override(vision_language="p")
    assert mixed.vision_language == "p" and mixed.text_config is None and mixed.shared_space
    back = mixed.override(text_preset="bert")
    assert back.vision_language is None and not back.shared_space
    assert FeatureExtractors(vision_language="p").has_text_encoder


@pytest.mark.large  # a video cut, encoded and aligned twice
@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_align_without_a_model_aligns_zero_shot(presets, movie, tmp_path, kind):
    path, cues = movie
    out = tmp_path / "alignment.json"
    assert align_main(["--video", str(path), "--narration", str(path.with_suffix(".srt")), "--encoder",
                       presets[kind], "--out", str(out), "--subtitles", str(tmp_path / "retimed.srt"),
                       "--plot", str(tmp_path / "timeline.png")]) == 0
    result = json.loads(out.read_text())
    assert len(result["clip_to_text"]) == len(result["clip_confidence"]) > 0
    assert result["decoding"] == "exact" and len(result["texts"]) == len(cues)
    assert (tmp_path / "retimed.srt").is_file() and (tmp_path / "timeline.png").is_file()
    # The same from Python.
    alignment = tfalign.align_video_zero_shot(path, path.with_suffix(".srt"), presets[kind], show_progress=False)
    assert alignment.clip_to_text.tolist() == result["clip_to_text"]


def test_bad_encoders_are_one_line_each_and_nothing_is_written(presets, movie, tmp_path, monkeypatch):
    import keras_hub

    path, _ = movie
    text_only = tmp_path / "bert"
    keras_hub.models.BertBackbone(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
                                  intermediate_dim=8, max_sequence_length=8).save_to_preset(str(text_only))
    (tmp_path / "plain").mkdir()
    base = ["--video", str(path), "--narration", str(path.with_suffix(".srt")), "--out", str(tmp_path / "o.json")]
    cases = {
        str(tmp_path / "missing"): "no such preset folder",
        str(tmp_path / "plain"): "not a keras-hub preset folder \\(no config.json",
        str(text_only): "is a BertBackbone preset: expected a vision-language preset \\(CLIP or SigLIP\\)",
        "clip_vit_base_patch32": "a named preset downloads: is this machine offline?",
    }
    # Offline: every connection refused at once (nothing downloads in tests).
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    for encoder, message in cases.items():
        vision_language.load.cache_clear()
        with pytest.raises(UserError, match=message) as raised:
            align_main([*base, "--encoder", encoder])
        assert "\n" not in str(raised.value) and str(raised.value).startswith("encoder: ")
        assert not (tmp_path / "o.json").exists()
    with pytest.raises(UserError, match="--model, --server, or --encoder"):
        align_main(base)
    with pytest.raises(UserError, match="--text-config: not with --encoder"):
        align_main([*base, "--encoder", presets["clip"], "--text-config", "x.json"])
