"""TensorBoard extras: the paper's two arguments made visible.

- Histograms of the video-stack and text-stack outputs, before and after
  normalization, over the valid positions of a fixed validation batch: the
  feature distributions SBN aligns.
- Each variable's update-to-weight norm ratio ||dw|| / ||w|| for one step:
  what LARS equalizes.
"""

import numpy as np
import tensorflow as tf


def stack_histograms(model, batch, step):
    # Compiled once per model: run eagerly, the stacks' loops cost about a second an epoch.
    encode = model.__dict__.setdefault("_tfalign_encode", tf.function(lambda b: model.encode_stacks(b, training=False)))
    stacks = encode(batch)
    clip_mask = tf.sequence_mask(batch["clip_lengths"], tf.shape(stacks["video"])[1])
    text_mask = tf.sequence_mask(batch["text_lengths"], tf.shape(stacks["text"])[1])
    for key, mask in (("video_raw", clip_mask), ("text_raw", text_mask), ("video", clip_mask), ("text", text_mask)):
        name = {"video_raw": "video_stack/before_norm", "text_raw": "text_stack/before_norm",
                "video": "video_stack/after_norm", "text": "text_stack/after_norm"}[key]
        tf.summary.histogram(name, tf.boolean_mask(stacks[key], mask), step=step)


def snapshot(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def update_ratios(variables, before):
    """{variable path: ||w_after - w_before|| / ||w_before||}."""
    ratios = {}
    for variable, old in zip(variables, before):
        norm = np.linalg.norm(old)
        if norm > 0:
            ratios[variable.path] = float(np.linalg.norm(variable.numpy() - old) / norm)
    return ratios


def write_update_ratios(ratios, step):
    for path, ratio in ratios.items():
        tf.summary.scalar(f"update_to_weight/{path}", ratio, step=step)
    if ratios:
        values = np.asarray(list(ratios.values()))
        tf.summary.histogram("update_to_weight/all_variables", values, step=step)
        tf.summary.scalar("update_to_weight_spread/max_over_min", float(values.max() / max(values.min(), 1e-12)),
                          step=step)
