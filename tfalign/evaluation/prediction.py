"""A model's alignments of whole videos, and their figures; a run folder's model on a split.

The trainer gets ``evaluate_model`` as its validation function (training/
does not import evaluation/); the end of a run, ``tfalign.evaluate``, the
push check and the benchmarks call it directly.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign import console
from tfalign.data.batching import pad_batch
from tfalign.data.decoding_choice import Decoding
from tfalign.data.datasets import describe_data, episode_widths, load_episodes
from tfalign.data.episode import Episode, validate_episodes
from tfalign.data.metrics import evaluate_alignments
from tfalign.errors import UserError
from tfalign.training.checkpoints import load_model
from tfalign.training.run_folder import run_decoding

BATCH = 16  # videos a request, at most: the one batching of prediction (Aligner, validation, push)


def decode_in_batches(decode, clips: list, texts: list, batch_size: int = BATCH, progress=None):
    """Every video through ``decode``, ``batch_size`` videos a padded request.

    Args:
        decode: a padded natural-order request (``pad_batch``) -> the decoder's
            outputs as NumPy arrays, a row a video.
        clips: one [T_v, D_v] array per video.
        texts: one [T_s, D_s] array per video.
        batch_size: videos a request, at most.
        progress: a ``console.Progress`` counting the videos done, or None.

    Yields:
        (video index, the outputs of its request, its row in them), in order.
    """
    for start in range(0, len(clips), batch_size):
        chunk = slice(start, start + batch_size)
        out = decode(pad_batch(clips[chunk], texts[chunk]))
        count = len(clips[chunk])
        for row in range(count):
            yield start + row, out, row
        if progress is not None:
            progress.update(start + count)


def predict_alignments(model, episodes, batch_size=BATCH, decoding="greedy", progress=None) -> list:
    """The alignment of every episode, as clip_to_text arrays: greedy, or the
    exact best action path (a decoder without history). The episodes' labels
    are not read. ``progress`` (a console.Progress) counts the videos done."""
    align = model.make_align_function(decoding, confidence=False)  # the assignments are all it reads

    def decode(request):
        return {"clip_to_text": align(request)["clip_to_text"].numpy()}

    return [out["clip_to_text"][row, :episodes[index].num_clips].astype(np.int64)
            for index, out, row in decode_in_batches(decode, [e.clip_features for e in episodes],
                                                     [e.text_features for e in episodes], batch_size, progress)]


def evaluate_aligner(aligner, episodes, decoding=None) -> dict:
    """``evaluate_alignments`` of an aligner's alignments of labelled episodes (``tfalign.evaluate``,
    ``Aligner.evaluate``): the episodes checked first, one line naming ``episodes``."""
    if isinstance(episodes, Episode) or not all(isinstance(e, Episode) and e.labelled for e in episodes):
        raise UserError("episodes: expected a list of labelled tfalign.Episode (Aligner.align aligns (clips, "
                        "texts) pairs without labels)", field="episodes")
    episodes = validate_episodes(episodes, *aligner.input_widths)
    decoding = aligner.resolve_decoding(decoding)
    predictions = [a.clip_to_text for a in aligner.align_episodes(episodes, decoding)]
    return {**evaluate_alignments(episodes, predictions), "decoding": decoding}


def evaluate_model(model, episodes, decoding="greedy", progress=None) -> dict:
    """{"clip_accuracy", "sentence_iou", "videos", ...} of the model's alignments of ``episodes``."""
    return evaluate_alignments(episodes, predict_alignments(model, episodes, decoding=decoding, progress=progress))


def evaluate_run(run_dir, split="test", checkpoint="clip_accuracy", data_changes=None, decoding=None,
                 log=print) -> dict:
    """A run's model on a split of its own data (``data_changes`` replace fields
    of it), decoded as the run does unless ``decoding`` says otherwise."""
    log(f"loading {run_dir} ({checkpoint} checkpoint)")
    config, model = load_model(run_dir, checkpoint)
    data_config = dataclasses.replace(config.data, **(data_changes or {}))
    decoding = decoding or run_decoding(run_dir, config)
    decoding = Decoding.check(decoding, config.model.decoder_history, model=config.name)
    log(f"loading the {split} split: {describe_data(data_config)}")
    episodes = load_episodes(data_config, split)
    episode_widths({split: episodes}, data_config.dataset, expected=config.model.input_widths)
    log(f"aligning {len(episodes)} {split} videos ({decoding} decoding)")
    progress = console.Progress(len(episodes), f"{split} videos")
    result = evaluate_model(model, episodes, decoding, progress=progress)
    progress.close()
    result.update(method=f"{config.name} ({checkpoint} checkpoint, {decoding})", dataset=data_config.dataset,
                  features=data_config.features, split=split, run_dir=str(run_dir))
    return result
