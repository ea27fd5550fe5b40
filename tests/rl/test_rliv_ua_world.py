"""What RLIV-UA needs from the world: creators with specialties on every item, creator
affinity that grows with satisfying exposure and decays between sessions, progressive
follow -> gift (gifts only from followers, rarer than follows' parent clicks), and the
population's per-pair histories (consistent with its creator ledger)."""

from __future__ import annotations

import numpy as np

from recoworld.envs.population.config import PopulationConfig
from recoworld.envs.population.population import Population
from recoworld.envs.world import World


def test_creators_have_specialties(small_catalog):
    cat = small_catalog
    assert cat.creator.shape == (cat.n_items,) and cat.creator.min() >= 0
    shares = []
    for c in np.unique(cat.creator):
        topics = cat.topics[cat.creator == c]
        if len(topics) >= 3:  # the creator's most frequent topic is on most of its items
            shares.append(topics.sum(0).max() / len(topics))
    assert np.mean(shares) > 0.9
    # versus a random set of items of the same size: much less concentrated
    rng = np.random.default_rng(0)
    rand = [cat.topics[rng.choice(cat.n_items, 8, replace=False)].sum(0).max() / 8
            for _ in range(50)]  # fmt: skip
    assert np.mean(rand) < 0.6


def test_affinity_follow_gift_dynamics(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.users.follow_bias = 0.0  # make follows and gifts frequent enough to observe
    cfg.users.gift_bias = -1.0
    world = World(cfg, n_users=64)
    world.reset(seed=1)
    st = world.state
    grew = decayed = 0
    n_gifts = n_follows = n_clicks = 0
    for _ in range(25):
        aff_before = st.creator_affinity.copy()
        follows_before = st.follows.copy()
        k = world.slate_size
        actions = np.tile(np.arange(k), (64, 1))
        sessions = st.session_index.copy()
        _, _, term, trunc, info = world.step(actions)
        creators = world.catalog.creator[info["item_index"]]
        rows, slots = np.nonzero(info["click"])
        c = creators[rows, slots]
        same_session = st.session_index[rows] == sessions[rows]
        watched = info["watch"][rows, slots] > 0.6
        delta = st.creator_affinity[rows, c] - aff_before[rows, c]
        grew += int((delta[same_session & watched] > 0).sum())
        # gifts only from users who follow (before, or who just followed) the creator
        g_rows, g_slots = np.nonzero(info["gift"])
        gc = creators[g_rows, g_slots]
        assert (follows_before[g_rows, gc] | info["follow"][g_rows, g_slots]).all()
        # a new follow needs a like
        assert not (info["follow"] & ~info["like"]).any()
        n_gifts += int(info["gift"].sum())
        n_follows += int(info["follow"].sum())
        n_clicks += int(info["click"].sum())
        ended = np.flatnonzero(st.session_index > sessions)
        for b in ended:  # affinity decays across the session gap (x affinity_session_decay)
            nz = aff_before[b] > 0
            decayed += int((st.creator_affinity[b][nz] < aff_before[b][nz] + 1e-6).all())
        done = np.flatnonzero(term | trunc)
        if done.size:
            world.reset_rows(done, world._observe())
    assert grew > 20
    assert n_follows > 0 and n_gifts > 0 and n_follows < n_clicks
    assert decayed > 0
    world.close()


def test_population_pair_histories(small_config):
    cfg = PopulationConfig.model_validate(
        {"world": small_config.model_dump(), "n_users": 12, "capacity": 16, "arrival_rate": 0.5}
    )
    pop = Population(cfg)
    obs = pop.reset(seed=3)
    k = pop.world.slate_size
    for _ in range(30):
        actions = np.tile(np.arange(k), (pop.capacity, 1))
        obs, *_ = pop.step(actions)
        pop.arrivals(obs)
    exposure = pop.pair_exposure.astype(np.int64)
    # the pair ledgers add up to the creator ledger
    np.testing.assert_array_equal(exposure.sum(0), pop.creator_exposure)
    np.testing.assert_array_equal(pop.pair_clicks.astype(np.int64).sum(0), pop.creator_clicks)
    np.testing.assert_array_equal(pop.pair_gifts.astype(np.int64).sum(0), pop.creator_gifts)
    assert exposure.sum() > 0 and (pop.pair_clicks <= pop.pair_exposure).all()
    shown = exposure > 0
    assert ((pop.pair_last_shown >= 0) == shown).all() and pop.pair_last_shown.max() < pop.t
    slot = int(np.argmax(exposure.sum(1)))
    hist = pop.pair_history(slot)
    np.testing.assert_array_equal(hist["exposure"], pop.pair_exposure[slot])
    np.testing.assert_array_equal(hist["follows"], pop.world.state.follows[slot])
    assert set(hist) == {"exposure", "clicks", "gifts", "follows", "last_shown"}
    # followed pairs were shown; gifts only on pairs the user follows (follows persist)
    assert shown[slot][hist["follows"]].all()
    gifted = pop.pair_gifts[slot] > 0
    assert (hist["follows"][gifted]).all()
    pop.reset(seed=4)
    assert pop.pair_exposure.sum() == 0 and (pop.pair_last_shown == -1).all()
    pop.close()
