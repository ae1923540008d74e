"""tfalign: NeuMATCH alignment of multimodal sequences, trained data-efficiently.

The data flows one way, and so do the imports (tests/test_import_graph.py
checks it; lazy imports inside functions count too):

    errors, files, validation, console,     shared helpers; runtime: the training command's process
    runtime                                 settings (oneDNN, malloc), made before TensorFlow starts
    data, dp                                episodes, the oracle, datasets, feature widths; every
                                            dynamic programme (the baselines' DTW, the lattice)
    media                                   videos and narrations in, subtitles out (the media extra)
    configs, experiments                    the typed configs and their registry
    layers, optimizers                      Keras layers, AdamLARS
    model                                   NeuMATCH: a backbone, a task a way of aligning; align() decodes
    training                                the step, the epoch loop, the run folder and its state
    evaluation                              metrics, baselines, prediction of whole videos
    serving                                 SavedModels, warm-up, clients, the push to TF Serving
    api                                     the Python API: Aligner, train, TrainingRun, evaluate
    run, train, compare, evaluate, export,  the end-of-run orchestration and the command-line
    align, cli                              tools, thin layers over the API: with api, the only
                                            modules that import serving

A module imports only from its own level or the levels above it in this list,
and no import cycle remains.

The Python API (README, "Python API"):

    tfalign.Episode           one video's features and ground truth, checked as it is made
    tfalign.train(...)        trains an experiment on its data or on episodes in memory -> TrainingRun
                              (tfalign.api: the Python API, the layer the commands stand on)
    tfalign.Aligner           a trained aligner (from_run, from_saved_model, from_preset); align() -> Alignment;
                              align_video(video, narration) from media files; zero_shot() with no training
    tfalign.align_video_zero_shot(video, narration, encoder)   a video aligned with no trained model (CLIP, SigLIP)
    tfalign.Alignment         one video's alignment: clip_to_text, actions, spans, to_json()
    tfalign.evaluate(...)     clip accuracy and sentence IoU of an aligner on labelled episodes
    tfalign.configure(...)    an experiment's config with fields changed; list_experiments() names them
    tfalign.NeuMatchBackbone  the encoders and stacks (keras-hub's backbone); on it the tasks
                              tfalign.NeuMatchAligner (the paper's decoder) and tfalign.LatticeAligner
                              (exact decoding; with dtw_start the lattice CRF)
"""

__version__ = "0.1.0"

import importlib as _importlib
import os as _os
import sys as _sys
import types as _types


# The public names and the modules that define them, imported on first use.
_API = {
    "Aligner": "tfalign.api.aligner", "TrainingRun": "tfalign.api.training", "train": "tfalign.api.training",
    "evaluate": "tfalign.api.evaluation", "Alignment": "tfalign.data.alignment", "Episode": "tfalign.data.episode",
    "EpisodeError": "tfalign.data.episode", "Decoding": "tfalign.data.decoding_choice",
    "ExperimentConfig": "tfalign.configs", "configure": "tfalign.experiments", "get_experiment": "tfalign.experiments",
    "UserError": "tfalign.errors", "NeuMatchAligner": "tfalign.model", "NeuMatchBackbone": "tfalign.model",
    "LatticeAligner": "tfalign.model",
    "align_video_zero_shot": "tfalign.api.aligner",
}
__all__ = sorted([*_API, "list_experiments"])


def __getattr__(name):
    if name in _API:
        return getattr(_importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tfalign' has no attribute {name!r}")


class _Package(_types.ModuleType):
    """``tfalign.train`` and ``tfalign.evaluate`` are the Python functions, also once the
    commands ``tfalign/train.py`` and ``tfalign/evaluate.py`` are imported (importing a
    submodule binds it as an attribute of its package; these two are not bound). The
    commands' own functions: ``from tfalign.train import main``."""

    def __setattr__(self, name, value):
        if name in ("train", "evaluate") and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def list_experiments(family: str | None = None) -> list[str]:
    """The registered experiments' names: the paper's 13, its stage and tfalign's recipes
    (``family``: "paper" or "tfalign" for one kind)."""
    from tfalign.experiments import EXPERIMENTS

    return [name for name, config in EXPERIMENTS.items() if family in (None, config.family)]


def _is_command() -> bool:
    """Whether this process is one of tfalign's commands (``python -m tfalign.X`` or
    ``pipelines.X``, a tfalign-X console script): they import TensorFlow themselves,
    quietly, once the command line is read."""
    first = _sys.argv[0] if _sys.argv else ""
    spec = getattr(_sys.modules.get("__main__"), "__spec__", None)
    running = getattr(spec, "name", None) or ""
    return (first == "-m" or _os.path.basename(first).startswith("tfalign-")
            or running.split(".")[0] in ("tfalign", "pipelines"))


if not _is_command():
    # TensorFlow's C++ start-up chatter (no GPU found, CPU features) is held back, unless
    # the user set TensorFlow's logging themselves (tfalign.console).
    _importlib.import_module("tfalign.console").quiet_library_import()
    # The Keras classes register on import, as keras_hub's do, so that
    # keras.models.load_model reads a saved aligner after ``import tfalign``.
    _importlib.import_module("tfalign.model")
