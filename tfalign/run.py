"""An experiment end to end: its stages, the final test figures, the export.

``run_experiment`` is what ``python -m tfalign.train`` does. It wires the
parts together: the trainer (training/) gets the evaluation's
``evaluate_model`` as its validation function, and this is the one module
besides the command-line tools that imports serving/.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from tfalign import console
from tfalign.configs import ExperimentConfig
from tfalign.data.datasets import check_widths, describe_data, load_episodes
from tfalign.evaluation.prediction import evaluate_model
from tfalign.files import write_json_atomic
from tfalign.training import diagnostics
from tfalign.training.loop import StageData, Trainer
from tfalign.training.run_folder import BEST_METRICS
from tfalign.training.strategy import is_chief


def load_stage_data(config: ExperimentConfig, with_test=True) -> StageData:
    """A stage's splits, checked against the widths its encoders take."""
    data = StageData(train=load_episodes(config.data, "train"), val=load_episodes(config.data, "val"),
                     test=load_episodes(config.data, "test") if with_test else None)
    check_widths(config.model.encoder, {"train": data.train, "val": data.val, "test": data.test},
                 config.data.dataset, f"{config.name} (encoder {config.model.encoder!r})")
    return data


def run_experiment(config: ExperimentConfig, run_dir, strategy, resume=False, log=print,
                   max_steps_per_epoch=None, export=True, runtime: dict | None = None) -> dict:
    """Trains the stages of ``config`` into ``run_dir`` (a first stage, ``init_from``,
    into ``run_dir/pretraining``), tests both best checkpoints, exports the SavedModel."""
    chief = is_chief(strategy)
    final_dir = pathlib.Path(run_dir)
    # Non-chief workers write into a temporary folder that is removed afterwards.
    work_dir = final_dir if chief else pathlib.Path(tempfile.mkdtemp(prefix="tfalign-worker-"))
    trainer_options = dict(strategy=strategy, chief=chief, log=log, max_steps_per_epoch=max_steps_per_epoch,
                           evaluate=evaluate_model, runtime=runtime)
    try:
        # The data first: a missing file or widths that do not fit fail before any model is built.
        log(f"loading the data: {describe_data(config.data)}")
        data = load_stage_data(config)
        initial_weights = None
        if config.init_from is not None:
            first = config.init_from
            log(f"stage 1/2: {first.name} on {describe_data(first.data)}")
            pre = Trainer(first, work_dir / "pretraining", restore_dir=final_dir / "pretraining", **trainer_options)
            pre.fit(load_stage_data(first, with_test=False), first.trainer.epochs, resume=resume)
            pre.load_best("clip_accuracy")
            initial_weights = pre.model.get_weights()
            log(f"stage 2/2: {config.name}")
        log(f"building the model ({config.name})")
        trainer = Trainer(config, work_dir, restore_dir=final_dir, **trainer_options)
        if initial_weights is not None and not (resume and (final_dir / "state.json").exists()):
            trainer.model.set_weights(initial_weights)
        trainer.fit(data, config.trainer.epochs, resume=resume)
        if config.trainer.decoding == "auto":
            trainer.load_best("clip_accuracy")
            log(f"choosing the decoding on {len(data.val)} validation videos (exact and greedy)")
        decoding = choose_decoding(config, trainer.model, data.val, log)
        summary = {"experiment": config.name, "run_dir": str(final_dir), "epochs_trained": trainer.state.epoch,
                   "decoding": decoding}
        for metric in BEST_METRICS:
            trainer.load_best(metric)
            log(f"testing the best checkpoint by validation {metric} on {len(data.test)} test videos ({decoding})")
            progress = console.Progress(len(data.test), "test videos", enabled=chief)
            test = evaluate_model(trainer.model, data.test, decoding, progress=progress)
            progress.close()
            best = trainer.state.best[metric]
            summary[f"best_{metric}"] = {
                "epoch": best.epoch, "val": best.value, "checkpoint": best.path,
                "test": {"clip_accuracy": test["clip_accuracy"], "sentence_iou": test["sentence_iou"],
                         "videos": test["videos"]},
            }
            log(f"best val {metric} (epoch {best.epoch}): test clip accuracy {test['clip_accuracy']:.4f}, "
                f"sentence IoU {test['sentence_iou']:.4f}")
        if chief:
            write_json_atomic(work_dir / "metrics.json", summary)
            diagnostics.write_final_figures(work_dir / "tensorboard", summary, step=trainer.state.epoch)
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
    if config.trainer.decoding != "auto":
        return config.trainer.decoding
    figures = {d: evaluate_model(model, val, d)["clip_accuracy"] for d in ("exact", "greedy")}
    decoding = "greedy" if figures["greedy"] > figures["exact"] else "exact"
    log(f"decoding: {decoding} (validation clip accuracy: exact {figures['exact']:.4f}, "
        f"greedy {figures['greedy']:.4f})")
    return decoding


__all__ = ["choose_decoding", "load_stage_data", "run_experiment"]
