"""A video's clips and its timed cues as an annotation record (the ground truth a cue gives).

A clip belongs to the cue that covers most of it, when that cover is at least
``min_overlap`` of the clip (default a half: the clip's middle is inside the
cue); other clips are unmatched. The record is one line of
``pipelines.prepare``'s ``videos.jsonl`` (see ``pipelines.sources``), with the
element ids of ``pipelines.feature_store``.
"""

from __future__ import annotations

import numpy as np

from tfalign.media.narration import Cue


def cue_assignment(clip_times, cues: list[Cue], min_overlap: float = 0.5) -> np.ndarray:
    """The cue of each clip (-1: unmatched), monotone in time.

    Args:
        clip_times: [N, 2] (start, end) seconds.
        cues: timed cues, in time order.
        min_overlap: the share of a clip a cue must cover.

    Returns:
        [N] int cue indices.
    """
    clip_times = np.asarray(clip_times, np.float64).reshape(-1, 2)
    starts = np.asarray([c.start for c in cues], np.float64)
    ends = np.asarray([c.end for c in cues], np.float64)
    overlap = np.clip(np.minimum(clip_times[:, 1:2], ends[None]) - np.maximum(clip_times[:, 0:1], starts[None]),
                      0.0, None)
    length = np.maximum(clip_times[:, 1] - clip_times[:, 0], 1e-9)
    best = overlap.argmax(axis=1) if len(cues) else np.zeros(len(clip_times), int)
    covered = len(cues) > 0 and overlap[np.arange(len(clip_times)), best] >= min_overlap * length - 1e-9
    assignment = np.where(covered, best, -1)
    # Overlapping cues could send a clip back to an earlier cue: keep the order monotone.
    last = -1
    for i, cue in enumerate(assignment):
        if cue >= 0:
            if cue < last:
                assignment[i] = -1
            else:
                last = cue
    return assignment


def video_record(video_id: str, split: str, clip_times, cues: list[Cue], clip_ids, text_ids,
                 min_overlap: float = 0.5) -> dict:
    """One ``videos.jsonl`` record: the clips (times, their text), the texts (cue spans).
    Cues without times (a script: the split "unlabelled") give texts without spans and
    clips without a text: nobody aligned them."""
    if cues and cues[0].start is None:
        clips = [{"id": cid, "start": float(s), "end": float(e), "text": None}
                 for cid, (s, e) in zip(clip_ids, np.asarray(clip_times).tolist())]
        return {"video_id": video_id, "split": split, "clips": clips,
                "texts": [{"id": tid, "text": c.text} for tid, c in zip(text_ids, cues)]}
    assignment = cue_assignment(clip_times, cues, min_overlap)
    clips = [{"id": cid, "start": float(s), "end": float(e), "text": None if a < 0 else text_ids[a]}
             for cid, (s, e), a in zip(clip_ids, np.asarray(clip_times).tolist(), assignment.tolist())]
    texts = [{"id": tid, "start": float(c.start), "end": float(c.end), "text": c.text}
             for tid, c in zip(text_ids, cues)]
    return {"video_id": video_id, "split": split, "clips": clips, "texts": texts}
