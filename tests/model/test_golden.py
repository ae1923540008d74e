"""Golden values pinning the paper's reproduction (the original specification, section 6, lives outside
this repository; docs/network.md and docs/training.md describe what it pins).

For a fixed seed and a small fixed batch, each normalization's experiment
(none: full_adam, sbn: rp_lars_sbn, 2ln: rp_lars_2ln, 4ln: rp_lars_4ln) must
give the stored teacher-forced logits and loss (training and inference mode),
and one step of the trainer (AdamLARS for the three LARS rows, Adam for
full_adam) must give the stored logits and loss afterwards. The values were
written by the code that was cross-checked against the paper's own code; a
change that moves them changes the reproduction.

Regenerate only on purpose: ``python tests/model/test_golden.py --write``.
"""

import json
import pathlib
import sys

import numpy as np
import pytest

GOLDEN = pathlib.Path(__file__).with_name("golden_values.json")
EXPERIMENTS = {"none": "full_adam", "sbn": "rp_lars_sbn", "2ln": "rp_lars_2ln", "4ln": "rp_lars_4ln"}


def _episodes(clip_dim, text_dim):
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
    from conftest import make_episode

    return [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, clip_dim, text_dim, seed=11, video_id="a"),
            make_episode([0, 1, 1, 1, 2], 3, clip_dim, text_dim, seed=12, video_id="b"),
            make_episode([-1, 0], 1, clip_dim, text_dim, seed=13, video_id="c")]


def compute(normalization, tmp_dir):
    from tfalign.data.batching import make_dataset
    from tfalign.data.features import feature_widths
    from tfalign.experiments import get_experiment
    from tfalign.training.loop import Trainer
    from tfalign.training.losses import masked_cross_entropy

    config = get_experiment(EXPERIMENTS[normalization])
    episodes = _episodes(*feature_widths(config.data.features))
    dataset = make_dataset(episodes, len(episodes))
    batch = next(iter(dataset))
    trainer = Trainer(config, tmp_dir, log=lambda *_: None)
    model = trainer.model

    def figures():
        logits = model(batch, training=True)
        loss = masked_cross_entropy(logits, batch["actions"], batch["action_lengths"], config.trainer.label_smoothing)
        return logits.numpy(), float(loss), model(batch, training=False).numpy()

    logits, loss, inference = figures()
    step = trainer._make_train_step(dataset.element_spec)
    step_loss, grad_norm, _ = step(batch)
    after_logits, after_loss, _ = figures()
    return {"logits": logits.tolist(), "loss": loss, "inference_logits": inference.tolist(),
            "step_loss": float(step_loss), "grad_norm": float(grad_norm),
            "logits_after_step": after_logits.tolist(), "loss_after_step": after_loss}


@pytest.mark.parametrize("normalization", sorted(EXPERIMENTS))
def test_paper_numerics_equal_the_golden_values(normalization, tmp_path):
    expected = json.loads(GOLDEN.read_text())[normalization]
    got = compute(normalization, tmp_path)
    for key in ("logits", "inference_logits", "logits_after_step"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
    for key in ("loss", "step_loss", "grad_norm", "loss_after_step"):
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    # The step must move the weights: a golden test of a no-op step would pin nothing.
    assert not np.allclose(got["logits_after_step"], got["logits"])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/model/test_golden.py --write   (overwrites the golden values)")
    import tempfile

    values = {n: compute(n, tempfile.mkdtemp()) for n in sorted(EXPERIMENTS)}
    GOLDEN.write_text(json.dumps(values, indent=1))
    print(f"wrote {GOLDEN}")
