import json

import numpy as np
import pytest

pytest.importorskip("keras_hub")

from tfalign.media.extractors import ImageEncoder, TextEncoder  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "walks", "dog", "runs"]


def test_image_encoder_loads_a_local_weights_file(tmp_path):
    first = ImageEncoder("mobilenet_v3_small", weights=None, image_size=32)
    first.model.save_weights(tmp_path / "small.weights.h5")
    again = ImageEncoder("mobilenet_v3_small", weights=str(tmp_path / "small.weights.h5"), image_size=32)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype(np.float32)
    assert first(images).shape == (2, 576)
    assert np.allclose(first(images), again(images), atol=1e-5)
    with pytest.raises(ValueError, match="image_weights: .*absent.h5: no such file"):
        ImageEncoder("mobilenet_v3_small", weights=str(tmp_path / "absent.h5"), image_size=32)
    with pytest.raises(ValueError, match="image_model: expected one of"):
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


def write_hub_models(folder):
    """Two TF2 SavedModels in TF-Hub's format (callable, no Keras): an image
    feature vector ([B, H, W, 3] in [0, 1] -> [B, 8]) and a text embedding
    (strings [B] -> [B, 5], hashed words averaged)."""
    import tensorflow as tf

    class ImageVector(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 8], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, images):
            return tf.matmul(tf.reduce_mean(images, axis=[1, 2]), self.kernel)

    class TextVector(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.Variable(tf.random.stateless_normal([64, 5], seed=[3, 4]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            ids = tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(texts)), 64)
            return tf.reduce_mean(tf.gather(self.table, ids), axis=1)

    image, text = ImageVector(), TextVector()
    tf.saved_model.save(image, str(folder / "image"))
    tf.saved_model.save(text, str(folder / "text"))
    return image, text


def test_tf_hub_savedmodels_as_image_and_text_encoders(tmp_path):
    pytest.importorskip("tensorflow_hub")
    image, text = write_hub_models(tmp_path)
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 16, 16, 3)).astype(np.float32)
    encoder = ImageEncoder(hub=str(tmp_path / "image"), image_size=16)
    assert np.allclose(encoder(images), image(images / 255.0).numpy(), atol=1e-6)  # TF-Hub images are in [0, 1]
    texts = ["A man walks", "a dog runs fast"]
    assert np.allclose(TextEncoder(hub=str(tmp_path / "text"))(texts), text(texts).numpy(), atol=1e-6)
    import keras

    assert isinstance(encoder.hub, keras.layers.Layer)  # Keras 3 layer around hub.load
    with pytest.raises(ValueError, match="text_hub: .* not a SavedModel folder"):
        TextEncoder(hub=str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="exactly one"):
        TextEncoder(hub=str(tmp_path / "text"), config="x.json")
