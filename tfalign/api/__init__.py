"""tfalign's Python API, the layer the commands stand on (README, "Python API").

    Aligner        a trained aligner: from_run, from_saved_model, from_preset;
                   align() -> Alignment; align_video(); save_to_preset(); export()
    train(...)     trains an experiment on its data or on episodes in memory -> TrainingRun
    TrainingRun    a finished run: folder, config, metrics, history, aligner
    evaluate(...)  clip accuracy and sentence IoU of an aligner on labelled episodes
    align_video_zero_shot(...)  a video and its narration aligned with no trained model

``tfalign.Aligner``, ``tfalign.train``, ``tfalign.TrainingRun`` and
``tfalign.evaluate`` are these (imported on first use).
"""

from tfalign.api.aligner import Aligner, align_video_zero_shot
from tfalign.api.evaluation import evaluate
from tfalign.api.training import TrainingRun, train

__all__ = ["Aligner", "TrainingRun", "align_video_zero_shot", "evaluate", "train"]
