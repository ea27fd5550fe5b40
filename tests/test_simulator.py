from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recoworld.simulators import ParametricUserModel, fit_movielens_population
from recoworld.simulators.parametric.config import ParametricUserConfig

STATE_NONNEG = ("fatigue", "exposure", "creator_affinity", "creator_clicks", "patience")


def _slates(model, b, k, rng):
    n = model.catalog.n_items
    return np.stack([rng.choice(n, size=k, replace=False) for _ in range(b)])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    b=st.integers(1, 16),
    k=st.integers(1, 6),
    steps=st.integers(1, 12),
    temp=st.floats(0.2, 5.0),
    no_click=st.floats(-3.0, 5.0),
)
def test_response_invariants(small_catalog, seed, b, k, steps, temp, no_click):
    cfg = ParametricUserConfig(choice_temperature=temp, no_click_utility=no_click)
    model = ParametricUserModel(small_catalog, cfg)
    rng = np.random.default_rng(seed)
    state = model.sample_users(b, rng)
    for _ in range(steps):
        items = _slates(model, b, k, rng)
        valid = rng.random((b, k)) < 0.9
        valid[:, 0] = True
        r = model.respond(state, items, valid, rng)
        probs = r.extra["choice_probs"]
        assert ((probs >= 0) & (probs <= 1)).all()
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
        assert (probs[:, :k][~valid] == 0).all()
        assert ((r.extra["p_leave"] >= 0) & (r.extra["p_leave"] <= 1)).all()
        assert (r.click.sum(1) <= 1).all() and not (r.click & ~valid).any()
        assert ((r.watch >= 0) & (r.watch <= 1)).all() and (r.watch[~r.click] == 0).all()
        assert not (r.like & ~r.click).any() and not (r.follow & ~r.like).any()
        assert not (r.gift & ~r.click).any()
        assert not (r.leave & r.instructed).any()
        assert ((r.satisfaction >= 0) & (r.satisfaction <= 1)).all()
        for name in STATE_NONNEG:
            assert (getattr(state, name) >= 0).all(), name
        assert ((state.interest >= 0) & (state.interest <= 1)).all()
        for i in np.flatnonzero(r.instructed):
            assert r.instruction[i]
        assert all(text is None for i, text in enumerate(r.instruction) if not r.instructed[i])


def test_users_click_what_they_value(small_catalog):
    model = ParametricUserModel(small_catalog)
    rng = np.random.default_rng(0)
    state = model.sample_users(4000, rng)
    items = _slates(model, 4000, 4, rng)
    util = model.utility(state, items)
    r = model.respond(state, items, np.ones_like(items, dtype=bool), rng, text="none")
    best = util.argmax(1)
    clicked = r.click.any(1)
    assert (r.click.argmax(1)[clicked] == best[clicked]).mean() > 0.5


def test_session_propensity_is_drawn_around_static(small_catalog):
    cfg = ParametricUserConfig(novelty_session_spread=0.1)
    model = ParametricUserModel(small_catalog, cfg)
    rng = np.random.default_rng(1)
    state = model.sample_users(5000, rng)
    diff = state.novelty_session - state.novelty_static
    assert 0.05 < diff.std() < 0.12 and abs(diff.mean()) < 0.02
    model.start_session(state, np.arange(5000), rng)
    assert (state.session_index == 1).all()


def test_return_probability_rises_with_satisfaction(small_catalog):
    model = ParametricUserModel(small_catalog)
    rng = np.random.default_rng(2)
    state = model.sample_users(20000, rng)
    state.satisfaction[:10000] = 0.9
    state.satisfaction[10000:] = 0.1
    returns, gap = model.end_session(state, np.arange(20000), rng)
    assert returns[:10000].mean() > returns[10000:].mean() + 0.4
    assert (gap >= 0).all() and gap[:10000].mean() < gap[10000:].mean()


def test_instruction_is_grounded_in_hidden_state(small_catalog):
    model = ParametricUserModel(small_catalog)
    rng = np.random.default_rng(3)
    state = model.sample_users(50, rng)
    state.fatigue[:] = 0.0
    state.fatigue[:, 4] = 2.0  # everyone is tired of topic 4
    state.satisfaction[:] = 0.0
    state.patience[:] = 0.0
    cfg = model.config.model_copy(update={"instruction_prob": 1.0, "leave_bias": 10.0})
    model.config = cfg
    items = _slates(model, 50, 3, rng)
    r = model.respond(state, items, np.ones_like(items, dtype=bool), rng)
    assert r.instructed.all()
    topic = small_catalog.topic_names[4]
    assert all(f"{topic}" in text for text in r.instruction)
    assert (state.instruction_vec[:, 4] == -1).all()


def test_movielens_population_fits_real_users(movielens):
    pop = fit_movielens_population(movielens)
    assert len(pop) == 943
    assert pop.interest.shape == (943, 19) and (pop.interest.max(1) == 1.0).all()
    assert ((pop.novelty_static >= 0.05) & (pop.novelty_static <= 0.95)).all()
    # a user's favourite genre is the one with most liked films
    cat = movielens.catalog
    u = 0
    items, ratings, _ = movielens.history(u)
    liked = items[ratings >= 4]
    counts = cat.topics_normalized[liked].sum(0)
    assert pop.interest[u].argmax() == counts.argmax()
    # SVD latent match correlates with the real ratings
    pred = (pop.latent[movielens.user_index] * cat.latent[movielens.item_index]).sum(1)
    centred = movielens.rating - movielens.rating.mean()
    assert np.corrcoef(pred, centred)[0, 1] > 0.3
    # preferred era: mean release percentile of the liked films; interest base: the mean
    assert pop.era is not None and ((pop.era >= 0) & (pop.era <= 1)).all()
    np.testing.assert_allclose(pop.interest_base, pop.interest.mean(0), rtol=1e-5)
    # preference weights fitted on a validation split (last 5 likes of each user held out)
    assert set(pop.weights) == {"interest_scale", "latent_weight", "quality_weight",
                                "popularity_weight", "era_weight"}  # fmt: skip
    assert all(w > 0 for w in pop.weights.values()), pop.weights
    assert pop.fit_info["users"] > 800 and pop.fit_info["in_sample"]["uniform"]["top1_rows"] > 0.5
    cfg = ParametricUserConfig(source="movielens")
    model = ParametricUserModel(cat, cfg, pop)
    assert model.config.era_weight == pop.weights["era_weight"]
    off = ParametricUserModel(cat, cfg.model_copy(update={"fitted_weights": False}), pop)
    assert off.config.era_weight == cfg.era_weight


def test_conditional_logit_recovers_weights():
    from recoworld.simulators.parametric.movielens_fit import conditional_logit

    rng = np.random.default_rng(0)
    true = np.array([1.5, -0.5, 0.8])
    x = rng.normal(size=(20000, 5, 3))
    u = x @ true + rng.gumbel(size=(20000, 5))
    rows, best = np.arange(20000), u.argmax(1)
    order = np.tile(np.arange(5), (20000, 1))
    order[rows, best], order[rows, 0] = 0, best  # the chosen alternative into column 0
    w, loglik = conditional_logit(np.take_along_axis(x, order[:, :, None], 1), l2=0.0)
    np.testing.assert_allclose(w, true, atol=0.06)
    assert -np.log(5) < loglik < 0


def test_era_and_popularity_terms(small_catalog):
    from recoworld.simulators.parametric.model import COMPONENTS, popularity_z

    cfg = ParametricUserConfig(era_weight=2.0, popularity_weight=0.7)
    model = ParametricUserModel(small_catalog, cfg)
    rng = np.random.default_rng(8)
    n = small_catalog.n_items
    state = model.sample_users(11, rng)
    state.era[:] = np.linspace(0.0, 1.0, 11)
    items = np.tile(np.arange(n), (11, 1))
    comps, _, _ = model.utility_components(state, items)
    era = comps[..., COMPONENTS.index("era")]
    # centred over the catalog for every era, and highest for items of the user's era
    np.testing.assert_allclose(era.mean(1), 0.0, atol=2e-3)
    released = model._item_era
    for b in (0, 5, 10):
        near = np.abs(released - state.era[b]) < 0.1
        assert era[b, near].mean() > era[b, ~near].mean() + 0.5
    pop = comps[..., COMPONENTS.index("popularity")]
    np.testing.assert_allclose(pop[0], 0.7 * popularity_z(small_catalog.popularity), rtol=1e-5)
    # sampled users' eras are drawn from Beta(era_a, era_b)
    many = model.sample_users(20000, rng)
    assert abs(many.era.mean() - cfg.era_a / (cfg.era_a + cfg.era_b)) < 0.01


def test_utility_terms_add_up_and_match_respond(small_catalog):
    from recoworld.simulators.parametric.model import COMPONENTS

    model = ParametricUserModel(small_catalog)
    rng = np.random.default_rng(4)
    state = model.sample_users(64, rng)
    for _ in range(5):  # give users some history (fatigue, exposure, seen, consumed)
        model.respond(state, _slates(model, 64, 3, rng), np.ones((64, 3), bool), rng, "none")
    items = _slates(model, 64, 3, rng)
    comps, nov, util = model.utility_components(state, items)
    assert comps.shape == (64, 3, len(COMPONENTS))
    consumed = state.was_consumed(items)
    np.testing.assert_allclose(comps.sum(-1) - 2.0 * consumed, util, rtol=1e-5, atol=1e-5)
    assert ((nov >= 0) & (nov <= 1)).all()
    # the utilities the users act on are the ones `utility` reports
    snapshot = util.copy()
    r = model.respond(state, items, np.ones((64, 3), bool), rng, "none")
    np.testing.assert_allclose(r.utility, snapshot, rtol=1e-5, atol=1e-5)


def test_instruction_vector_equals_the_parse_of_its_text(small_catalog):
    from recoworld.simulators.instructions.lexical import InstructionParser

    cfg = ParametricUserConfig(instruction_prob=1.0, leave_bias=8.0)
    model = ParametricUserModel(small_catalog, cfg)
    parser = InstructionParser(small_catalog.topic_names)
    rng = np.random.default_rng(5)
    state = model.sample_users(300, rng)
    for _ in range(3):  # build up fatigue so that 'less' fields appear too
        model.respond(state, _slates(model, 300, 3, rng), np.ones((300, 3), bool), rng, "none")
    state.instructions_in_session[:] = 0
    r = model.respond(state, _slates(model, 300, 3, rng), np.ones((300, 3), bool), rng)
    who = np.flatnonzero(r.instructed)
    assert len(who) > 100
    vectors = r.extra["instruction_vector"]
    assert (vectors == -1).any() and (vectors[:, -1] == 1).any()
    for row, b in zip(vectors, who, strict=True):
        np.testing.assert_array_equal(parser.vector(r.instruction[b]), row)


def test_single_user_and_batch_share_one_code_path(small_catalog):
    model = ParametricUserModel(small_catalog)
    rng = np.random.default_rng(6)
    state = model.sample_users(1, rng)
    r = model.respond(state, np.array([[1, 2, 3]]), np.ones((1, 3), bool), rng)
    assert r.click.shape == (1, 3) and len(r.reasoning) == 1 and r.mindset[0]


def test_seen_and_consumed_bitsets(small_catalog):
    from recoworld.core.arrays import gather_bits

    rng = np.random.default_rng(7)
    n = small_catalog.n_items
    dense = rng.random((20, n)) < 0.3
    packed = np.packbits(dense, axis=1, bitorder="little")
    idx = rng.integers(0, n, size=(20, 9))
    np.testing.assert_array_equal(gather_bits(packed, idx), np.take_along_axis(dense, idx, 1))
    rows = np.array([3, 17])
    np.testing.assert_array_equal(gather_bits(packed, idx[:2], rows), dense[rows[:, None], idx[:2]])

    model = ParametricUserModel(small_catalog)
    state = model.sample_users(50, rng)
    items = _slates(model, 50, 3, rng)
    assert not state.was_shown(items).any()
    r = model.respond(state, items, np.ones((50, 3), bool), rng, "none")
    assert state.was_shown(items).all()
    np.testing.assert_array_equal(state.was_consumed(items), r.click)
