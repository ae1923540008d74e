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


# HParams: each run's resolved config as hparams; these figures as its metrics, so all runs compare in one table.
HPARAMS_METRICS = (
    ("best/val_clip_accuracy", None, "best validation clip accuracy"),
    ("test/clip_accuracy", None, "test clip accuracy (best checkpoint by validation clip accuracy)"),
    ("test/sentence_iou", None, "test sentence IoU (best checkpoint by validation clip accuracy)"),
    ("clip_accuracy", "val", "validation clip accuracy"),
    ("sentence_iou", "val", "validation sentence IoU"),
    ("loss", "val", "validation loss (teacher-forced)"),
    ("step_accuracy", "val", "validation step accuracy (teacher-forced)"),
    ("loss", "train", "training loss"),
    ("step_accuracy", "train", "training step accuracy (teacher-forced)"),
)


def hparam_values(config_dict: dict) -> dict:
    """The config flattened to HParams values (bool, number or string; None as "none")."""
    from tfalign.training.run_folder import flatten

    return {k: (v if isinstance(v, (bool, int, float, str)) else "none" if v is None else str(v))
            for k, v in flatten(config_dict).items() if k != "description"}


def write_hparams(logdir, config_dict: dict, trial_id: str) -> None:
    """The run's session for the HParams dashboard. Every run writes the same
    experiment description (the same fields and metrics), so whichever
    TensorBoard reads first describes them all."""
    from tensorboard.plugins.hparams import api as hp

    values = hparam_values(config_dict)
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in sorted(values)],
                          metrics=[hp.Metric(tag, group=group, display_name=name)
                                   for tag, group, name in HPARAMS_METRICS])
        hp.hparams(values, trial_id=trial_id)


def write_final_figures(logdir, summary: dict, step: int) -> None:
    """The run's best validation and test figures, the HParams table's metrics."""
    best = summary["best_clip_accuracy"]
    with tf.summary.create_file_writer(str(logdir)).as_default():
        tf.summary.scalar("best/val_clip_accuracy", best["val"], step=step)
        for metric in ("clip_accuracy", "sentence_iou"):
            tf.summary.scalar(f"test/{metric}", best["test"][metric], step=step)
