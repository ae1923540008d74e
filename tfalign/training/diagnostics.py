"""TensorBoard extras: the paper's two arguments made visible, and the runs compared.

- The video-stack and text-stack outputs of a fixed validation batch (valid
  positions only), before and after normalization: histograms, their mean,
  spread and percentiles on one chart (video against text), and an image of
  both distributions on the same axes. Runs without normalization log no
  "after" series. What SBN aligns.
- Each variable's update-to-weight norm ratio ||dw|| / ||w|| over the
  epoch's first step, one chart per layer group with all its variables, and
  the spread: the largest ratio over the smallest, over the variables that
  do not start at zero (biases and betas start at zero: their ratio says
  little at first). What LARS equalizes.
- A custom-scalars layout (TensorBoard's "Custom Scalars" tab) that puts
  those charts, and the train and validation loss and step accuracy (the
  overfitting signal), each on one chart.
- HParams: each run's config and figures as one row of a table.
"""

import io
import re

import numpy as np
import tensorflow as tf

MODEL_PREFIX = re.compile(r"^[^/]*aligner[^/]*/(backbone/)?")
FEATURE_STATS = {"mean": np.mean, "std": np.std, "p05": lambda x: np.percentile(x, 5),
                 "p95": lambda x: np.percentile(x, 95)}
IMAGE_EVERY = 10  # epochs between the distribution images (and the first epoch)


def variable_group(path: str) -> str:
    """A variable's layer group: encoder, video_stack, ..., normalization, decoder."""
    first = MODEL_PREFIX.sub("", path).split("/")[0]
    first = re.sub(r"_\d+$", "", first)
    if re.search(r"(_sbn|_ln|norm)", first):
        return "normalization"
    if first.startswith("decoder"):
        return "decoder"
    return first


def variable_label(path: str, zero_init: bool) -> str:
    label = MODEL_PREFIX.sub("", path)
    return f"{label} (starts at zero)" if zero_init else label


def feature_arrays(model, batch) -> dict:
    """{"before_norm": {"video": values, "text": values}, "after_norm": ...} over valid positions."""
    # Compiled once per model: run eagerly, the stacks' loops cost about a second an epoch.
    encode = model.__dict__.setdefault("_tfalign_encode", tf.function(
        lambda b: model.encode_stacks(b, training=False), autograph=False))
    stacks = encode(batch)
    masks = {"video": tf.sequence_mask(batch["clip_lengths"], tf.shape(stacks["video"])[1]),
             "text": tf.sequence_mask(batch["text_lengths"], tf.shape(stacks["text"])[1])}
    values = lambda tensor, mask: tf.cast(tf.boolean_mask(tensor, mask), tf.float32).numpy().ravel()  # bf16 too
    arrays = {"before_norm": {k: values(stacks[f"{k}_raw"], m) for k, m in masks.items()}}
    if model.backbone.video_norm is not None:
        arrays["after_norm"] = {k: values(stacks[k], m) for k, m in masks.items()}
    return arrays


def write_feature_distributions(model, batch, step):
    """Histograms (as before: video_stack/... and text_stack/...), the stats of
    video and text on shared charts, and now and then an image of both."""
    arrays = feature_arrays(model, batch)
    for stage, pair in arrays.items():
        for stream, values in pair.items():
            tf.summary.histogram(f"{stream}_stack/{stage}", values, step=step)
            for stat, function in FEATURE_STATS.items():
                tf.summary.scalar(f"features/{stage}/{stream}_{stat}", float(function(values)), step=step)
    if step == 1 or step % IMAGE_EVERY == 0:
        tf.summary.image("features/video_vs_text", distribution_image(arrays, step)[None], step=step)


def distribution_image(arrays: dict, step: int) -> np.ndarray:
    """Video and text feature densities on the same axes, one panel per stage: [H, W, 4] uint8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(arrays), figsize=(5 * len(arrays), 3.2), squeeze=False)
    for ax, (stage, pair) in zip(axes[0], arrays.items()):
        low = min(np.percentile(v, 0.5) for v in pair.values())
        high = max(np.percentile(v, 99.5) for v in pair.values())
        bins = np.linspace(low, high, 80) if high > low else 80
        for stream, color in (("video", "tab:blue"), ("text", "tab:orange")):
            # One filled outline a stream (ax.hist draws a patch a bar: ten times slower).
            density, edges = np.histogram(pair[stream], bins=bins, density=True)
            ax.stairs(density, edges, fill=True, alpha=0.5, color=color, label=stream)
        ax.set_title(f"{stage.replace('_', ' ')} (epoch {step})")
        ax.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=70)
    plt.close(figure)
    return tf.io.decode_png(buffer.getvalue(), channels=4).numpy()


def snapshot(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def zero_initialized(variables) -> set:
    """Paths of the variables that start at zero (call before any training or restore)."""
    return {v.path for v in variables if not np.any(v.numpy())}


def update_ratios(variables, before):
    """{variable path: ||w_after - w_before|| / ||w_before||} (variables at zero have none)."""
    ratios = {}
    for variable, old in zip(variables, before):
        norm = np.linalg.norm(old)
        if norm > 0:
            ratios[variable.path] = float(np.linalg.norm(variable.numpy() - old) / norm)
    return ratios


def ratio_spread(ratios: dict, zero_init=frozenset()) -> float | None:
    """The largest ratio over the smallest, over the variables that do not start at zero."""
    values = [r for path, r in ratios.items() if path not in zero_init and r > 0]
    return max(values) / min(values) if values else None


def write_update_ratios(ratios, step, zero_init=frozenset()):
    for path, ratio in ratios.items():
        tf.summary.scalar(f"update_to_weight/{variable_group(path)}/{variable_label(path, path in zero_init)}",
                          ratio, step=step)
    if ratios:
        tf.summary.histogram("update_to_weight_all_variables", np.asarray(list(ratios.values())), step=step)
    spread = ratio_spread(ratios, zero_init)
    if spread is not None:
        tf.summary.scalar("update_to_weight_spread/max_over_min", spread, step=step)


def write_layout(logdir, variable_paths, normalized: bool) -> None:
    """The Custom Scalars tab: the paper's arguments and the overfitting signal, a chart each."""
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.custom_scalar import summary as custom_scalar

    def chart(title, *patterns):
        return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=list(patterns)))

    groups = sorted({variable_group(p) for p in variable_paths})
    stages = ("before_norm", "after_norm") if normalized else ("before_norm",)
    layout = layout_pb2.Layout(category=[
        layout_pb2.Category(title="overfitting: train against validation", chart=[
            chart("loss (train, val)", r"^loss$"), chart("teacher-forced step accuracy (train, val)",
                                                         r"^step_accuracy$"),
            chart("validation clip accuracy and sentence IoU", r"^clip_accuracy$", r"^sentence_iou$")]),
        layout_pb2.Category(title="update-to-weight ratio per layer group (LARS equalizes it)", chart=[
            chart("spread: largest ratio / smallest (variables not starting at zero)",
                  r"^update_to_weight_spread/"),
            *[chart(group, rf"^update_to_weight/{group}/") for group in groups]]),
        layout_pb2.Category(title="video against text stack features (SBN aligns them)", chart=[
            chart(f"{stage.replace('_', ' ')}: {stat}", rf"^features/{stage}/(video|text)_{stat}$")
            for stage in stages for stat in FEATURE_STATS]),
    ])
    with tf.summary.create_file_writer(str(logdir)).as_default():
        tf.summary.experimental.write_raw_pb(custom_scalar.pb(layout).SerializeToString(), step=0)


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


HPARAMS_FIRST = ("name", "optimizer.name", "model.normalization", "model.encoder", "optimizer.learning_rate",
                 "trainer.seed", "trainer.epochs", "trainer.label_smoothing", "schedule.warmup_epochs", "family",
                 "data.dataset", "data.difficulty")


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
        # The most telling first (the legacy HParams dashboard sorts them by name and ticks the first five:
        # tick name, optimizer, normalization, seed there).
        first = [name for name in HPARAMS_FIRST if name in values]
        hp.hparams_config(hparams=[hp.HParam(name) for name in first + sorted(set(values) - set(first))],
                          metrics=[hp.Metric(tag, group=group, display_name=name)
                                   for tag, group, name in HPARAMS_METRICS])
        hp.hparams(values, trial_id=trial_id)


def write_final_figures(logdir, summary: dict, step: int) -> None:
    """The run's best validation and test figures, the HParams table's metrics."""
    best = summary["best_clip_accuracy"]
    with tf.summary.create_file_writer(str(logdir)).as_default():
        tf.summary.scalar("best/val_clip_accuracy", best["val"], step=step)
        for metric in ("clip_accuracy", "sentence_iou") if "test" in best else ():  # a run without a test split
            tf.summary.scalar(f"test/{metric}", best["test"][metric], step=step)


class RunSummaries:
    """A run's TensorBoard event files: its HParams session and the Custom Scalars
    layout (written at the start), then each epoch's figures in ``train/`` and ``val/``.

    Args:
        logdir: the run folder's ``tensorboard/``.
        config_dict: the resolved config (the HParams row).
        trial_id: the run's name in the HParams table.
        model: the model whose variables and stack features are shown.
        zero_init: the paths of the variables that start at zero (``zero_initialized``).
    """

    def __init__(self, logdir, config_dict: dict, trial_id: str, model, zero_init=frozenset()):
        self.model, self.zero_init = model, zero_init
        write_hparams(logdir, config_dict, trial_id=trial_id)
        write_layout(logdir, [v.path for v in model.trainable_variables],
                     normalized=model.backbone.video_norm is not None)
        self.writers = {k: tf.summary.create_file_writer(str(logdir / k)) for k in ("train", "val")}

    def write_epoch(self, epoch: int, logs: dict, ratios: dict, histogram_batch) -> None:
        """Epoch ``epoch`` (1-based)'s figures: ``logs`` as the trainer makes them."""
        with self.writers["train"].as_default():
            for name in ("loss", "learning_rate", "sequences_per_second", "step_accuracy", "gradient_norm"):
                if name in logs:
                    tf.summary.scalar(name, logs[name], step=epoch)
            write_update_ratios(ratios, step=epoch, zero_init=self.zero_init)
        with self.writers["val"].as_default():
            for metric in ("clip_accuracy", "sentence_iou", "loss", "step_accuracy"):
                tf.summary.scalar(metric, logs[f"val_{metric}"], step=epoch)
            write_feature_distributions(self.model, histogram_batch, step=epoch)
        for writer in self.writers.values():
            writer.flush()
