import numpy as np
import pytest
import tensorflow as tf

from conftest import make_episode
from tfalign.data.batching import episodes_request, make_dataset
from tfalign.data.oracle import MATCH, POP_TEXT, actions_to_alignment, decoded_length
from tfalign.configs import PAPER_PARAMETER_COUNTS
from tfalign.model import NeuMatchAligner, aligner_from_fields
from tfalign.model.decoding import two_layer_step
from tfalign.training.losses import masked_cross_entropy


def small_model(normalization="none", seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = aligner_from_fields(encoder="rp", normalization=normalization, units=16, action_units=4, matched_units=6,
                            hidden_units=12)
    model.build()
    return model


def batch_of(episodes):
    return next(iter(make_dataset(episodes, len(episodes))))


def rp_episodes(seed=0):
    return [make_episode([-1, 0, 0, 1, 2, 2, -1], 4, clip_dim=300, text_dim=300, seed=seed, video_id="a"),
            make_episode([0, 1, 1, 1, 2], 3, clip_dim=300, text_dim=300, seed=seed + 1, video_id="b"),
            make_episode([-1, 0], 1, clip_dim=300, text_dim=300, seed=seed + 2, video_id="c")]


@pytest.mark.parametrize("key", sorted(PAPER_PARAMETER_COUNTS))
def test_parameter_counts_equal_the_paper_code(key):
    encoder, normalization = key
    model = aligner_from_fields(encoder=encoder, normalization=normalization)
    model.build()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == PAPER_PARAMETER_COUNTS[key]


def reference_logits(model, stacks, b, actions):
    """One episode, step by step, with the paper's bookkeeping: a dict from
    text to its matched clips, and the matched-stack state saved at a text's
    first match."""
    video, text = stacks["video"][b:b + 1], stacks["text"][b:b + 1]
    n_clips, n_texts = int(stacks["clip_lengths"][b]), int(stacks["text_lengths"][b])
    top_v, top_s = n_clips - 1, n_texts - 1
    zeros = lambda n: [tf.zeros([1, n]) for _ in range(4)]
    a_state, m_state, m_saved = zeros(model.action_units), zeros(model.matched_units), None
    recorded, former = {}, None
    logits = []
    for action in actions:
        v, s = video[:, top_v], text[:, top_s]
        a, c, big_v, big_s = top_v + 1.0, top_s + 1.0, n_clips + 1.0, n_texts + 1.0
        p = tf.constant([[a, c, a / big_v, c / big_s, big_v / a, big_s / c, a / c, c / a,
                          (big_v - a) / (big_s - c), (big_s - c) / (big_v - a)]], tf.float32)
        x = tf.concat([v, s, a_state[0] + a_state[2], m_state[0] + m_state[2], p], -1)
        logits.append(model.classify(x)[0])
        a_state = two_layer_step(model.action_cells, tf.one_hot([action], 3), a_state)
        if action == MATCH:
            recorded.setdefault(top_s, []).append(top_v)
            if former != top_s:
                m_saved, former = m_state, top_s
            mean = tf.reduce_mean(tf.gather(video[0], recorded[top_s]), 0, keepdims=True)
            m_state = two_layer_step(model.matched_cells, tf.concat([mean, s], -1), m_saved)
        if action == POP_TEXT:
            top_s = max(top_s - 1, 0)
        else:
            top_v = max(top_v - 1, 0)
    return np.stack([step.numpy() for step in logits])


@pytest.mark.parametrize("normalization", ["none", "sbn", "4ln"])
def test_vectorized_decoder_matches_a_per_episode_reference(normalization):
    model = small_model(normalization)
    batch = batch_of(rp_episodes())
    stacks = model.encode_stacks(batch, training=False)
    logits = model(batch, training=False).numpy()
    for b in range(3):
        n = int(batch["action_lengths"][b])
        expected = reference_logits(model, stacks, b, batch["actions"].numpy()[b, :n])
        assert np.allclose(logits[b, :n], expected, atol=1e-5)


def test_greedy_equals_teacher_forcing_on_its_own_actions_and_stops_right():
    model = small_model("sbn")
    batch = batch_of(rp_episodes())
    inputs = {k: batch[k] for k in ("clip_features", "text_features", "clip_lengths", "text_lengths")}
    out = model.greedy_path(inputs)
    actions, counts = out["actions"].numpy(), out["num_actions"].numpy()
    forced = tf.nn.softmax(model({**inputs, "actions": np.maximum(actions, 0)}, training=False)).numpy()
    for b in range(3):
        n = counts[b]
        assert np.all(actions[b, n:] == -1) and np.all(actions[b, :n] >= 0)
        assert np.allclose(forced[b, :n], out["probabilities"].numpy()[b, :n], atol=1e-6)
        assert n == decoded_length(actions[b, :n], int(batch["clip_lengths"][b]), int(batch["text_lengths"][b]))


def test_an_episode_decodes_the_same_alone_and_in_a_padded_batch():
    model = small_model("sbn")
    episodes = rp_episodes()
    together = model.greedy_path(batch_of(episodes))
    for i, episode in enumerate(episodes):
        alone = model.greedy_path(batch_of([episode]))
        n = int(alone["num_actions"][0])
        assert n == int(together["num_actions"][i])
        assert np.array_equal(alone["actions"][0, :n], together["actions"][i, :n])


@pytest.mark.parametrize("normalization", ["none", "sbn", pytest.param("2ln", marks=pytest.mark.large),
                                           pytest.param("4ln", marks=pytest.mark.large)])  # LN: the slow ones
def test_every_weight_gets_a_gradient_and_one_step_learns(normalization):
    model = small_model(normalization)
    batch = batch_of(rp_episodes())
    optimizer = tf.keras.optimizers.Adam(1e-2)

    def loss_fn():
        return masked_cross_entropy(model(batch, training=True), batch["actions"], batch["action_lengths"])

    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None or not np.any(g.numpy())]
    assert missing == []
    for _ in range(5):
        with tf.GradientTape() as tape:
            current = loss_fn()
        optimizer.apply(tape.gradient(current, model.trainable_variables), model.trainable_variables)
    assert float(loss_fn()) < float(loss)


@pytest.mark.parametrize("history", [True, False])
def test_align_decodes_with_a_cached_compiled_function(history):
    if history:
        model = small_model("sbn")
    else:
        model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, hidden_units=12, history=False,
                                position="normalized", similarity_units=8)
        model.build()
    episodes = rp_episodes()
    batch = batch_of(episodes)
    request = episodes_request(episodes)  # align() takes natural order, as the SavedModel does
    greedy = model.align(request)  # XLA on time axes padded to their buckets: the same path
    plain = model.greedy_path(batch)
    assert np.array_equal(greedy["num_actions"], plain["num_actions"])
    for b, n in enumerate(plain["num_actions"].numpy()):
        assert np.array_equal(greedy["actions"][b, :n], plain["actions"][b, :n])
    assert model.make_align_function("greedy") is model.make_align_function("greedy")
    decodings = ["greedy"] if history else ["greedy", "exact"]
    if history:
        with pytest.raises(ValueError, match="without history"):
            model.align(request, decoding="exact")
    else:
        exact = model.align(request, decoding="exact")
        assert np.array_equal(exact["num_actions"], model.exact_path(batch)["num_actions"])
    for decoding in decodings:  # both decodings give the same outputs, consistent with each other
        out = {k: v.numpy() for k, v in model.align(request, decoding=decoding).items()}
        confidence = ["clip_confidence", "video_confidence"] if decoding == "exact" else []
        assert sorted(out) == sorted(["actions", "clip_to_text", "num_actions", "probabilities", "score",
                                      *confidence])
        if confidence:  # a probability per clip, and each video's mean of them
            assert np.all((out["clip_confidence"] >= 0) & (out["clip_confidence"] <= 1 + 1e-5))
            np.testing.assert_allclose(out["video_confidence"], [out["clip_confidence"][b, :e.num_clips].mean()
                                                                 for b, e in enumerate(episodes)], rtol=1e-5)
        for b, e in enumerate(episodes):
            n = out["num_actions"][b]
            assert out["clip_to_text"][b, :e.num_clips].tolist() == actions_to_alignment(
                out["actions"][b, :n], e.num_clips, e.num_texts).tolist()
            assert np.allclose(out["probabilities"][b, :n].sum(-1), 1.0, atol=1e-5)
            assert np.all(out["probabilities"][b, n:] == 0)
        if decoding == "greedy":  # the score is the log-probability of the actions taken
            chosen = np.take_along_axis(out["probabilities"], np.maximum(out["actions"], 0)[..., None], -1)[..., 0]
            valid = np.arange(chosen.shape[1])[None] < out["num_actions"][:, None]
            assert np.allclose(out["score"], np.where(valid, np.log(np.maximum(chosen, 1e-30)), 0).sum(1), atol=1e-4)
    with pytest.raises(ValueError, match="decoding: expected one of"):
        model.make_align_function("beam")
    with pytest.raises(ValueError, match="actions"):
        model({k: batch[k] for k in ("clip_features", "text_features", "clip_lengths", "text_lengths")})


def test_config_round_trip():
    model = aligner_from_fields(encoder="rp", normalization="2ln", dropout=0.1, clip_dim=2048, text_dim=768,
                            projection_seed=3)
    clone = NeuMatchAligner.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.input_widths == (2048, 768)  # the projection runs in the graph
    with pytest.raises(ValueError, match="normalization must be one of"):
        aligner_from_fields(normalization="bn")


@pytest.mark.large  # Keras's fit: a training run
@pytest.mark.parametrize("history", [True, False])
def test_keras_fit_trains_the_aligner_with_its_own_loss(history):
    """compile() + fit() on the data pipeline's batches: compute_loss is the aligner's loss."""
    from tfalign.model.objective import LossWeights, alignment_loss

    tf.keras.utils.set_random_seed(3)
    options = {} if history else dict(history=False, position="normalized", similarity_units=8,
                                      similarity_source="all", stack_features=False)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, action_units=4, matched_units=6,
                            hidden_units=12, **options)
    model.build()
    terms = LossWeights(label_smoothing=0.03) if history else LossWeights(0.03, lattice_weight=1.0,
                                                                          contrastive_weight=1.0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), terms=terms)
    dataset = make_dataset(rp_episodes(), 3)
    batch = next(iter(dataset))
    loss = lambda: float(alignment_loss(model.training_outputs(batch, training=False), batch, terms))
    before = loss()
    history_ = model.fit(dataset.repeat(15), epochs=1, verbose=0)
    assert np.isfinite(history_.history["loss"][0])
    assert loss() < before


def test_a_crf_model_gives_each_clip_its_posterior_under_either_decoding():
    """A model that starts at DTW is a CRF: its posteriors do not depend on the decoding, so the
    greedy path's clip_confidence is each clip's posterior of the text greedy chose (computed
    here from the lattice's marginals), as the exact path's is of the text it chose."""
    from tfalign.dp.lattice import clip_posteriors, posterior_marginals

    tf.keras.utils.set_random_seed(0)
    model = aligner_from_fields(encoder="rp", normalization="sbn", units=16, hidden_units=12, history=False,
                            position="normalized", similarity_units=8, similarity_source="all",
                            stack_features=False, ridge_similarity=True, dtw_start=True)
    model.build()
    episodes = rp_episodes()
    model.backbone.ridge.fit(episodes)
    model.potentials.set_start(0.8)
    stacks = model.encode_stacks(batch_of(episodes), training=False)
    _, marginals = posterior_marginals(model.lattice_scores(stacks), stacks["clip_lengths"], stacks["text_lengths"])
    posteriors = clip_posteriors(marginals).numpy()  # [B, T_v, T_s + 1], the last column "unmatched"
    request = episodes_request(episodes)
    for decoding in ("greedy", "exact"):
        out = {k: v.numpy() for k, v in model.align(request, decoding=decoding).items()}
        for b, e in enumerate(episodes):
            chosen = out["clip_to_text"][b, :e.num_clips]
            column = np.where(chosen >= 0, chosen, posteriors.shape[2] - 1)
            np.testing.assert_allclose(out["clip_confidence"][b, :e.num_clips],
                                       posteriors[b, np.arange(e.num_clips), column], atol=1e-5)
    unconfident = model.make_align_function("greedy", confidence=False)(request)  # validation needs none
    assert "clip_confidence" not in unconfident


def test_a_task_without_a_backbone_says_how_the_old_flat_fields_build():
    import tfalign

    for task in (tfalign.NeuMatchAligner, tfalign.LatticeAligner):
        with pytest.raises(TypeError, match="^backbone: expected a tfalign.NeuMatchBackbone, got NoneType .*"
                                            "aligner_from_fields"):
            task(encoder="rp", units=8)
