"""An experiment end to end: data, stages, final test figures, export.

``run_experiment`` is what ``python -m tfalign.train`` does; ``evaluate_run``
is what ``python -m tfalign.evaluate --run DIR`` does.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import tempfile

from tfalign import console
from tfalign.data.datasets import FEATURE_KINDS, load_episodes
from tfalign.data.records import read_json_object, write_json_atomic
from tfalign.errors import UserError, first_line
from tfalign.experiments import ExperimentConfig
from tfalign.training import diagnostics
from tfalign.training.loop import BEST_METRICS, StageData, Trainer, TrainingError, evaluate_model, validation_decoding
from tfalign.training.strategy import is_chief


def load_stage_data(data_config, with_test=True) -> StageData:
    return StageData(train=load_episodes(data_config, "train"), val=load_episodes(data_config, "val"),
                     test=load_episodes(data_config, "test") if with_test else None)


def check_widths(config: ExperimentConfig, data, dataset: str | None = None) -> None:
    """The episodes' feature widths (``data``: StageData or a {split: episodes}
    dict) must be the ones the experiment's encoders take."""
    expected = FEATURE_KINDS[config.encoder]
    splits = data if isinstance(data, dict) else {s: getattr(data, s) for s in ("train", "val", "test")}
    for split, episodes in splits.items():
        if episodes:
            found = (episodes[0].clip_features.shape[1], episodes[0].text_features.shape[1])
            if found != expected:
                raise UserError(f"the {split} episodes of {dataset or config.data.dataset} have clip/text feature "
                                f"widths "
                                f"{found[0]}/{found[1]}, but {config.name} (encoder {config.encoder!r}) takes "
                                f"{expected[0]}/{expected[1]}; choose an experiment for these features")


def describe_data(data) -> str:
    """The data a stage reads, in words (for the console)."""
    text = f"{data.dataset} ({data.features} features"
    if data.synthetic_features:
        text += f", synthetic at difficulty {data.difficulty:g}, data seed {data.seed}"
    return text + ")"


def _pretraining_config(config: ExperimentConfig) -> ExperimentConfig:
    p = config.pretraining
    return dataclasses.replace(
        config, learning_rate=p.learning_rate, weight_decay=p.weight_decay, dropout=p.dropout,
        encoder_dropout=p.dropout, epochs=p.epochs, pretraining=None,
        data=dataclasses.replace(config.data, dataset=p.dataset, lsmdc_scale=p.lsmdc_scale))


def run_experiment(config: ExperimentConfig, run_dir, strategy, resume=False, log=print,
                   max_steps_per_epoch=None, export=True) -> dict:
    chief = is_chief(strategy)
    final_dir = pathlib.Path(run_dir)
    # Non-chief workers write into a temporary folder that is removed afterwards.
    work_dir = final_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="tfalign-worker-"))
    try:
        # The data first: a missing file or widths that do not fit fail before any model is built.
        log(f"loading the data: {describe_data(config.data)}")
        data = load_stage_data(config.data)
        check_widths(config, data)
        initial_weights = None
        if config.pretraining:
            pre_config = _pretraining_config(config)
            log(f"stage 1/2: pretraining on {describe_data(pre_config.data)}")
            pre = Trainer(pre_config, work_dir / "pretraining", strategy, chief, log, max_steps_per_epoch,
                          early_stopping_patience=config.pretraining.early_stopping_patience,
                          restore_dir=final_dir / "pretraining")
            pre.fit(load_stage_data(pre_config.data, with_test=False), pre_config.epochs, resume=resume)
            pre.load_best("clip_accuracy")
            initial_weights = pre.model.get_weights()
            log("stage 2/2: finetuning")
        log(f"building the model ({config.name})")
        trainer = Trainer(config, work_dir, strategy, chief, log, max_steps_per_epoch, restore_dir=final_dir)
        if initial_weights is not None and not (resume and (final_dir / "state.json").exists()):
            trainer.model.set_weights(initial_weights)
        trainer.fit(data, config.epochs, resume=resume)
        if config.decoding == "auto":
            trainer.load_best("clip_accuracy")
            log(f"choosing the decoding on {len(data.val)} validation videos (exact and greedy)")
        decoding = choose_decoding(config, trainer.model, data.val, log)
        summary = {"experiment": config.name, "run_dir": str(final_dir), "epochs_trained": trainer.state["epoch"],
                   "decoding": decoding}
        for metric in BEST_METRICS:
            trainer.load_best(metric)
            log(f"testing the best checkpoint by validation {metric} on {len(data.test)} test videos ({decoding})")
            progress = console.Progress(len(data.test), "test videos", enabled=chief)
            test = evaluate_model(trainer.model, data.test, decoding, progress=progress)
            progress.close()
            best = trainer.state["best"][metric]
            summary[f"best_{metric}"] = {
                "epoch": best["epoch"], "val": best["value"], "checkpoint": best["path"],
                "test": {"clip_accuracy": test["clip_accuracy"], "sentence_iou": test["sentence_iou"],
                         "videos": test["videos"]},
            }
            log(f"best val {metric} (epoch {best['epoch']}): test clip accuracy {test['clip_accuracy']:.4f}, "
                f"sentence IoU {test['sentence_iou']:.4f}")
        if chief:
            write_json_atomic(work_dir / "metrics.json", summary)
            diagnostics.write_final_figures(work_dir / "tensorboard", summary, step=trainer.state["epoch"])
            if export:
                from tfalign.serving.export import export_saved_model
                from tfalign.serving.model_card import export_assets

                trainer.load_best("clip_accuracy")
                log(f"exporting the SavedModel to {final_dir / 'saved_model'} (the best checkpoint by validation "
                    f"clip accuracy, {decoding} decoding)")
                export_saved_model(trainer.model, work_dir / "saved_model", decoding=decoding,
                                   assets=export_assets(config.to_dict(), summary, trainer.model.input_widths))
        return summary
    finally:
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)


def choose_decoding(config, model, val, log=print) -> str:
    """The run's decoding: the config's, or with "auto" the better of greedy and
    exact on the validation split for ``model`` (the best checkpoint; exact on a tie)."""
    if config.decoding != "auto":
        return config.decoding
    figures = {d: evaluate_model(model, val, d)["clip_accuracy"] for d in ("exact", "greedy")}
    decoding = "greedy" if figures["greedy"] > figures["exact"] else "exact"
    log(f"decoding: {decoding} (validation clip accuracy: exact {figures['exact']:.4f}, "
        f"greedy {figures['greedy']:.4f})")
    return decoding


def run_metrics(run_dir) -> dict:
    """A finished run's metrics.json ({} if it has none yet)."""
    metrics = pathlib.Path(run_dir) / "metrics.json"
    return read_json_object(metrics, "run metrics") if metrics.exists() else {}


def run_decoding(run_dir, config) -> str:
    """How a finished run decodes: as chosen at its end (metrics.json), else as configured."""
    return run_metrics(run_dir).get("decoding") or validation_decoding(config)


def load_run(run_dir, checkpoint="clip_accuracy"):
    """(config, model) of a run folder, weights from the chosen checkpoint."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    for name in ("config.json", "state.json"):
        if not (run_dir / name).exists():
            raise UserError(f"{run_dir}: no {name}: not a training run folder (or its first epoch never finished)")
    config = ExperimentConfig.from_dict(read_json_object(run_dir / "config.json", "run config"))
    state = read_json_object(run_dir / "state.json", "run state")
    trainer = Trainer(config, run_dir, log=lambda *_: None)
    trainer.state = state
    try:
        relative = trainer.checkpoint_name(checkpoint)
    except (KeyError, TypeError):
        relative = None
    if not isinstance(relative, str) or not (run_dir / (relative + ".index")).is_file():
        raise UserError(f"{run_dir / 'state.json'}: the {checkpoint} checkpoint it names ({relative}) is missing")
    try:
        trainer.checkpoint.read(str(run_dir / relative)).expect_partial()
    except Exception as error:  # a damaged checkpoint fails in many ways (TF errors, short reads, ...)
        raise UserError(f"{run_dir / relative}: the checkpoint cannot be read ({first_line(error)})") from None
    return config, trainer.model


def evaluate_run(run_dir, split="test", checkpoint="clip_accuracy", data_changes=None, decoding=None,
                 log=print) -> dict:
    """The run's model on a split of its own data (``data_changes`` replace fields
    of it), decoded as the run does unless ``decoding`` says otherwise."""
    log(f"loading {run_dir} ({checkpoint} checkpoint)")
    config, model = load_run(run_dir, checkpoint)
    data_config = dataclasses.replace(config.data, **(data_changes or {}))
    decoding = decoding or run_decoding(run_dir, config)
    if decoding == "exact" and config.decoder_history:
        raise UserError(f"--decoding exact: {config.name} has a decoder with history; only greedy decoding applies")
    log(f"loading the {split} split: {describe_data(data_config)}")
    episodes = load_episodes(data_config, split)
    check_widths(config, {split: episodes}, data_config.dataset)
    log(f"aligning {len(episodes)} {split} videos ({decoding} decoding)")
    progress = console.Progress(len(episodes), f"{split} videos")
    result = evaluate_model(model, episodes, decoding, progress=progress)
    progress.close()
    result.update(method=f"{config.name} ({checkpoint} checkpoint, {decoding})", dataset=data_config.dataset,
                  features=data_config.features, split=split, run_dir=str(run_dir))
    return result


__all__ = ["TrainingError", "choose_decoding", "describe_data", "evaluate_run", "load_run", "run_decoding",
           "run_experiment", "run_metrics"]
