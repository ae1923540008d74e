import json

import numpy as np
import pytest

pytest.importorskip("keras_hub")

from pipelines.encoders import ImageEncoder, TextEncoder  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "walks", "dog", "runs"]


def test_image_encoder_loads_a_local_weights_file(tmp_path):
    first = ImageEncoder("mobilenet_v3_small", weights=None, image_size=32)
    first.model.save_weights(tmp_path / "small.weights.h5")
    again = ImageEncoder("mobilenet_v3_small", weights=str(tmp_path / "small.weights.h5"), image_size=32)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
    assert first(images).shape == (2, 576)
    assert np.allclose(first(images), again(images), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="--image-weights"):
        ImageEncoder("mobilenet_v3_small", weights=str(tmp_path / "absent.h5"), image_size=32)
    with pytest.raises(ValueError, match="--image-model"):
        ImageEncoder("vgg99")


def test_text_encoder_from_a_config_and_from_a_local_preset_folder(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"vocabulary": VOCAB, "num_layers": 1, "num_heads": 2, "hidden_dim": 8,
                                  "intermediate_dim": 16, "sequence_length": 8}))
    built = TextEncoder(config=str(config))
    texts = ["a man walks", "a dog runs", "a man"]
    vectors = built(texts)
    assert vectors.shape == (3, 8) and np.all(np.isfinite(vectors))
    # Mean pooling ignores padding: the same text alone or beside a longer one gives the same vector.
    assert np.allclose(built(["a man"])[0], vectors[2], atol=1e-5)
    built.backbone.save_to_preset(str(tmp_path / "preset"))
    built.preprocessor.save_to_preset(str(tmp_path / "preset"))
    loaded = TextEncoder(preset=str(tmp_path / "preset"))
    assert np.allclose(loaded(texts), vectors, atol=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        TextEncoder()
