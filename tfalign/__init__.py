"""tfalign: NeuMATCH alignment of multimodal sequences, trained data-efficiently.

The data flows one way, and so do the imports (tests/test_import_graph.py
checks it; lazy imports inside functions count too):

    errors, files, validation, console      shared helpers
    data                                    episodes, the oracle, datasets, feature widths
    configs, experiments                    the typed configs and their registry
    layers, optimizers                      Keras layers, AdamLARS
    model                                   NeuMATCH, built from its config; align() decodes
    training                                the step, the epoch loop, the run folder and its state
    evaluation                              metrics, baselines, prediction of whole videos
    serving                                 SavedModels, clients, the push to TF Serving
    run, train, compare, evaluate, export,  the end-of-run orchestration and the command-line
    align, cli                              tools: the only modules that import serving

A module imports only from its own level or the levels above it in this list,
and no import cycle remains.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (no GPU found, CPU features) drowns the
# commands' own output; users can still set the variable themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
