"""Preset folders, as keras-hub lays them out: a trained aligner in four files.

    config.json       the model's Keras config (``keras.saving.serialize_keras_object``)
    model.weights.h5  its weights
    metadata.json     tfalign's and Keras's versions, the parameter count, the feature
                      widths, the decoding, the training config and figures when known
    MODEL_CARD.md     what it was trained on, its inputs, outputs and limits

``save_preset`` writes the folder all or nothing (a temporary folder, then one
exchange of names); ``load_preset`` builds the model from its config and
restores the weights strictly (every weight must be in the file).
"""

from __future__ import annotations

import datetime
import pathlib
import shutil

from tfalign.errors import UserError, first_line
from tfalign.files import (atomic_path, check_output_path, dumps_strict, read_json_object, remove_leftovers,
                           replace_folder, writing)

CONFIG, WEIGHTS, METADATA, CARD = "config.json", "model.weights.h5", "metadata.json", "MODEL_CARD.md"


def save_preset(model, folder, metadata: dict, model_card: str) -> pathlib.Path:
    """Writes ``model`` (a tfalign aligner) and ``metadata`` as a preset folder (replaced if it exists)."""
    import keras

    import tfalign

    folder = pathlib.Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"folder: {folder} is a file; expected a preset folder", field="folder")
    check_output_path(folder / CONFIG, "folder")  # a parent that is a file: one line naming it
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder.parent, f".{folder.name}.tmp-*")  # of a killed earlier save
    tmp = atomic_path(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    metadata = {**metadata, "tfalign_version": tfalign.__version__, "keras_version": keras.__version__,
                "parameter_count": int(model.count_params()),
                "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        with writing("the preset", folder):
            tmp.mkdir()
            (tmp / CONFIG).write_text(dumps_strict(keras.saving.serialize_keras_object(model)), encoding="utf-8")
            model.save_weights(str(tmp / WEIGHTS))
            (tmp / METADATA).write_text(dumps_strict(metadata), encoding="utf-8")
            (tmp / CARD).write_text(model_card, encoding="utf-8")
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_preset(folder) -> tuple:
    """(model, metadata) of a preset folder; one-line errors name what is missing or wrong."""
    import keras

    from tfalign.model import AlignerTask
    from tfalign.training.checkpoints import restore_weights

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise UserError(f"preset: {folder}: no such folder", field="preset")
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise UserError(f"preset: {folder}: no {name}: not a tfalign preset", field="preset")
    config = read_json_object(folder / CONFIG, "preset config")
    try:
        model = keras.saving.deserialize_keras_object(config)
    except Exception as error:  # Keras raises TypeError, ValueError, ... for a foreign config
        raise UserError(f"preset: {folder / CONFIG}: not a model config Keras can build ({first_line(error)})",
                        field="preset") from None
    if not isinstance(model, AlignerTask):
        raise UserError(f"preset: {folder / CONFIG} builds a {type(model).__name__}, not a tfalign aligner",
                        field="preset")
    if not model.built:  # Keras builds it from the config's build_config
        model.build()
    restore_weights(model, folder / WEIGHTS)
    metadata = read_json_object(folder / METADATA, "preset metadata") if (folder / METADATA).is_file() else {}
    return model, metadata
