"""Tiny CLIP and SigLIP presets built here (small configs and vocabularies, random
weights), saved as keras-hub saves its presets: what ``--encoder FOLDER`` loads in
tests, with nothing downloaded."""

import io
import string

import keras
import keras_hub

IMAGE_SIZE = 32
WIDTH = 16


def _characters():
    return list(string.ascii_lowercase + string.digits + ".,'!?-")


def save_tiny_clip(folder, seed=0) -> str:
    """A CLIP preset: a character-level BPE vocabulary (no merges), two-layer towers."""
    keras.utils.set_random_seed(seed)
    vocabulary = {}
    for token in ["<|endoftext|>", "<|startoftext|>"] + _characters() + [c + "</w>" for c in _characters()]:
        vocabulary.setdefault(token, len(vocabulary))
    vocabulary.setdefault("ab", len(vocabulary))  # the one merge a BPE tokenizer needs
    tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=["a b"])
    converter = keras_hub.layers.CLIPImageConverter(image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1 / 255.0)
    preprocessor = keras_hub.models.CLIPPreprocessor(tokenizer, converter, sequence_length=24)
    backbone = keras_hub.models.CLIPBackbone(
        vision_encoder=keras_hub.models.CLIPVisionEncoder(patch_size=8, hidden_dim=16, num_layers=2, num_heads=2,
                                                          intermediate_dim=32,
                                                          image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
        text_encoder=keras_hub.models.CLIPTextEncoder(vocabulary_size=len(vocabulary), embedding_dim=16,
                                                      hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                                                      max_sequence_length=24),
        projection_dim=WIDTH)
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return str(folder)


def save_tiny_siglip(folder, seed=0) -> str:
    """A SigLIP preset: a small SentencePiece vocabulary trained here, two-layer towers."""
    import sentencepiece

    keras.utils.set_random_seed(seed)
    proto = io.BytesIO()
    sentences = ["the red scene", "a blue sky over green fields", "yellow light and purple shade",
                 "orange, white and black."] * 20
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=proto, vocab_size=20, model_type="word", minloglevel=2,
        pad_id=0, unk_id=1, eos_id=2, bos_id=-1, pad_piece="<pad>", unk_piece="<unk>", eos_piece="</s>",
        user_defined_symbols=[])
    tokenizer = keras_hub.models.SigLIPTokenizer(proto=proto.getvalue())
    converter = keras_hub.layers.SigLIPImageConverter(image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1 / 127.5,
                                                      offset=-1.0)
    preprocessor = keras_hub.models.SigLIPPreprocessor(tokenizer, converter, sequence_length=16)
    backbone = keras_hub.models.SigLIPBackbone(
        vision_encoder=keras_hub.models.SigLIPVisionEncoder(patch_size=8, hidden_dim=16, num_layers=2, num_heads=2,
                                                            intermediate_dim=32,
                                                            image_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
        text_encoder=keras_hub.models.SigLIPTextEncoder(vocabulary_size=tokenizer.vocabulary_size(),
                                                        embedding_dim=16, hidden_dim=16, num_layers=2, num_heads=2,
                                                        intermediate_dim=32, max_sequence_length=16,
                                                        projection_dim=WIDTH))
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return str(folder)
