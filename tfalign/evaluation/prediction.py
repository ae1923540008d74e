"""A model's alignments of whole videos, and their figures; a run folder's model on a split.

The trainer gets ``evaluate_model`` as its validation function (training/
does not import evaluation/); the end of a run, ``tfalign.evaluate``, the
push check and the benchmarks call it directly.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfalign import console
from tfalign.data.batching import REQUEST_VIDEOS, padded_requests
from tfalign.data.decoding_choice import Decoding
from tfalign.data.datasets import describe_data, episode_widths, load_episodes
from tfalign.data.metrics import evaluate_alignments
from tfalign.training.checkpoints import load_model
from tfalign.training.run_folder import run_decoding


def predict_alignments(model, episodes, batch_size=REQUEST_VIDEOS, decoding="greedy", progress=None) -> list:
    """The alignment of every episode, as clip_to_text arrays: greedy, or the
    exact best action path (a decoder without history), through the model's
    ``align`` (the one decoding every caller runs). The episodes' labels are not
    read. ``progress`` (a console.Progress) counts the videos done."""
    align = model.make_align_function(decoding, confidence=False)  # the assignments are all it reads
    predictions = []
    for start, request in padded_requests([e.clip_features for e in episodes], [e.text_features for e in episodes],
                                          batch_size):
        clip_to_text = align(request)["clip_to_text"].numpy()
        predictions += [row[:episode.num_clips].astype(np.int64)
                        for row, episode in zip(clip_to_text, episodes[start:start + batch_size])]
        if progress is not None:
            progress.update(len(predictions))
    return predictions


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
    decoding = Decoding.check(decoding, config.model.history, model=config.name)
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
