"""The action oracle (alignment -> actions) and its inverse (actions -> alignment).

Three actions act on a clip stack and a text stack whose tops are the first
remaining clip and the first remaining text (DESIGN.md 1).
"""

from __future__ import annotations

import numpy as np

POP_CLIP = 0
POP_TEXT = 1
MATCH = 2
NUM_ACTIONS = 3
ACTION_NAMES = ("POP_CLIP", "POP_TEXT", "MATCH")


def alignment_to_actions(clip_to_text, num_texts: int) -> np.ndarray:
    """The canonical oracle: MATCH, else POP_CLIP if unmatched, else POP_TEXT.

    Returns int32 actions of length T_v + T_s for a valid (monotone)
    alignment; when one stack is empty the rest of the other is popped.
    """
    clip_to_text = np.asarray(clip_to_text)
    num_clips = len(clip_to_text)
    actions = []
    clip, text = 0, 0
    while clip < num_clips and text < num_texts:
        target = clip_to_text[clip]
        if target == text:
            actions.append(MATCH)
            clip += 1
        elif target == -1:
            actions.append(POP_CLIP)
            clip += 1
        elif target > text:
            actions.append(POP_TEXT)
            text += 1
        else:
            raise ValueError(f"alignment is not monotone at clip {clip}: text {target} after text {text}")
    actions.extend([POP_CLIP] * (num_clips - clip))
    actions.extend([POP_TEXT] * (num_texts - text))
    return np.asarray(actions, np.int32)


def actions_to_alignment(actions, num_clips: int, num_texts: int) -> np.ndarray:
    """Decodes actions back to clip_to_text (the paper's act2align).

    Decoding stops when either stack is empty or the actions run out; clips
    left over are unmatched.
    """
    clip_to_text = np.full(num_clips, -1, np.int64)
    clip, text = 0, 0
    for action in np.asarray(actions).reshape(-1):
        if clip >= num_clips or text >= num_texts:
            break
        if action == MATCH:
            clip_to_text[clip] = text
            clip += 1
        elif action == POP_CLIP:
            clip += 1
        elif action == POP_TEXT:
            text += 1
        else:
            raise ValueError(f"unknown action {int(action)}: expected 0 (POP_CLIP), 1 (POP_TEXT) or 2 (MATCH)")
    return clip_to_text


def decoded_length(actions, num_clips: int, num_texts: int) -> int:
    """Number of actions consumed before one of the stacks ran empty.

    The network's greedy decoder stops at the same point: when it consumes the
    last clip or the last text.
    """
    clip, text = 0, 0
    for step, action in enumerate(np.asarray(actions).reshape(-1)):
        if action == POP_TEXT:
            text += 1
        else:
            clip += 1
        if clip >= num_clips or text >= num_texts:
            return step + 1
    return len(actions)
