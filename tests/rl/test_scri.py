"""SCRI-MDP pair transitions and Adjacent State Approximation on hand-built trajectories
(``recoworld.rl.rliv_ua.scri``): which (request, slot) pairs start a transition, pooled rewards,
next states (adjacent request vs true next co-occurrence), terminal and dropped samples,
and the Parquet adapter over a trajectory log."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recoworld.rl.rliv_ua.scri import pair_columns, scri_from_trajectories, scri_transitions

# One user, 4 requests, slates of 3. Authors per slot:
#   t0: A B A      (A twice: one pair transition at slot 0, rewards pooled over slots 0, 2)
#   t1: C D E
#   t2: B C F      (slot 2 is a duplicate item: not shown)
#   t3: A G H
AUTHORS = np.array([[0, 1, 0], [2, 3, 4], [1, 2, 5], [0, 6, 7]])
SHOWN = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 1]], dtype=bool)


def _signals() -> np.ndarray:
    sig = np.zeros((4, 3, 3), dtype=bool)
    sig[0, 2, 0] = True  # click on A's second item at t0
    sig[0, 2, 1] = True  # ... and a follow of A
    sig[2, 0, 0] = True  # click on B at t2
    sig[2, 0, 2] = True  # gift to B at t2
    sig[2, 2, 0] = True  # a response on the hidden duplicate slot never counts
    return sig


def test_asa_every_pair_gets_the_adjacent_request():
    tr = scri_transitions(AUTHORS, SHOWN, _signals(), terminated=True, asa=True)
    expected_valid = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 0], [1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(tr.valid, expected_valid)
    assert tr.count == 10
    # A at t0: rewards pooled over both of A's slots (click + follow from slot 2)
    np.testing.assert_array_equal(tr.rewards[0, 0], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(tr.rewards[0, 1], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(tr.rewards[2, 0], [1.0, 0.0, 1.0])
    assert tr.rewards[2, 2].sum() == 0  # hidden slot
    # next state = the user's next request (t + 1; t = 3 -> final observation 4)
    np.testing.assert_array_equal(tr.next_t[expected_valid], np.repeat([1, 2, 3, 4], [2, 3, 2, 3]))
    assert (tr.next_slot == -1).all()  # item-free pair states
    # terminated: only the last request's pairs have no future
    np.testing.assert_array_equal(tr.done, expected_valid & (np.arange(4) == 3)[:, None])
    tr2 = scri_transitions(AUTHORS, SHOWN, _signals(), terminated=False, asa=True)
    assert not tr2.done.any() and tr2.count == 10  # bootstrap from the final observation


def test_true_next_cooccurrence_is_sparse():
    tr = scri_transitions(AUTHORS, SHOWN, _signals(), terminated=True, asa=False)
    # A: t0 slot 0 -> t3 slot 0; B: t0 slot 1 -> t2 slot 0; C: t1 slot 0 -> t2 slot 1
    assert (tr.next_t[0, 0], tr.next_slot[0, 0]) == (3, 0)
    assert (tr.next_t[0, 1], tr.next_slot[0, 1]) == (2, 0)
    assert (tr.next_t[1, 0], tr.next_slot[1, 0]) == (2, 1)
    assert not tr.done[0, 0] and not tr.done[0, 1] and not tr.done[1, 0]
    # every other pair never meets again: the user left for good -> terminal
    met_again = np.zeros_like(tr.valid)
    met_again[0, 0] = met_again[0, 1] = met_again[1, 0] = True
    np.testing.assert_array_equal(tr.done, tr.valid & ~met_again)
    np.testing.assert_array_equal(tr.rewards[0, 0], [1.0, 1.0, 0.0])  # same rewards as ASA

    # a sequence that goes on (a truncated life, an RLlib chunk): unknown futures are dropped
    cont = scri_transitions(AUTHORS, SHOWN, _signals(), terminated=False, asa=False)
    np.testing.assert_array_equal(cont.valid, met_again)
    assert not cont.done.any()
    assert cont.rewards[1:].sum() == 0 and cont.rewards[0, 0].sum() == 2.0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="shown"):
        scri_transitions(AUTHORS, SHOWN[:2], _signals(), True)
    with pytest.raises(ValueError, match="signals"):
        scri_transitions(AUTHORS, SHOWN, _signals()[..., :2], True)
    with pytest.raises(ValueError, match="authors"):
        scri_transitions(AUTHORS[0], SHOWN, _signals(), True)
    empty = scri_transitions(np.zeros((0, 3), int), np.zeros((0, 3), bool),
                             np.zeros((0, 3, 3)), True)  # fmt: skip
    assert empty.count == 0


def _log() -> pa.Table:
    """Two episodes as a trajectory log, rows shuffled: episode 7 is the sequence above
    (items 10 * author + slot, so creators = item // 10), ending terminated; episode 9 has
    two requests (authors 5 then 5) and is still going (not terminated)."""
    rows = []
    sig = _signals()
    for t in range(4):
        rows.append({"episode_id": 7, "t": 100 + 2 * t,
                     "item_index": (10 * AUTHORS[t] + np.arange(3)).tolist(),
                     "shown": SHOWN[t].tolist(), "click": sig[t, :, 0].tolist(),
                     "follow": sig[t, :, 1].tolist(), "gift": sig[t, :, 2].tolist(),
                     "terminated": t == 3})  # fmt: skip
    for t, item in ((101, [50, 60, 70]), (103, [51, 61, 71])):
        rows.append({"episode_id": 9, "t": t, "item_index": item, "shown": [True] * 3,
                     "click": [t == 101, False, False], "follow": [False] * 3,
                     "gift": [False] * 3, "terminated": False})  # fmt: skip
    order = [4, 2, 0, 5, 3, 1]
    return pa.Table.from_pylist([rows[i] for i in order])


def test_parquet_adapter(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "log.parquet"
    pq.write_table(_log(), path)
    table = pq.read_table(path)
    creator = np.arange(100) // 10
    asa = scri_from_trajectories(table, creator, asa=True)
    ep7 = asa["episode_id"] == 7
    assert ep7.sum() == 10 and (~ep7).sum() == 6
    first = ep7 & (asa["t"] == 100) & (asa["slot"] == 0)
    assert asa["author"][first] == [0] and asa["click"][first] == [1.0]
    assert asa["follow"][first] == [1.0] and asa["next_t"][first] == [102]
    # the last request: terminal in episode 7; episode 9 bootstraps from the next observation
    assert asa["done"][ep7 & (asa["t"] == 106)].all()
    assert (asa["next_t"][ep7 & (asa["t"] == 106)] == -1).all()
    assert (asa["next_t"][~ep7 & (asa["t"] == 103)] == 104).all()
    assert (asa["gap"][~asa["done"]] == 1).all()

    true = scri_from_trajectories(table, creator, asa=False)
    ep7 = true["episode_id"] == 7
    a = ep7 & (true["author"] == 0) & (true["t"] == 100)
    assert true["next_t"][a] == [106] and true["gap"][a] == [3] and true["next_slot"][a] == [0]
    # episode 9: authors 5, 6, 7 meet again at the next request; the second request's
    # pairs are dropped (no next co-occurrence in the data and the user did not leave)
    ep9 = true["episode_id"] == 9
    assert ep9.sum() == 3 and (true["next_t"][ep9] == 103).all()
    assert true["click"][ep9 & (true["author"] == 5)] == [1.0]
    with pytest.raises(ValueError, match="lacks columns"):
        scri_from_trajectories(table.drop(["item_index"]), creator)
    with pytest.raises(ValueError, match="outside the catalog"):
        scri_from_trajectories(table, creator[:50])


def test_pair_columns_match_the_observation(small_config):
    from recoworld.envs.vector_env import RecoWorldVectorEnv

    env = RecoWorldVectorEnv(num_envs=2, config=small_config)
    names = env.world.encoder.candidate_feature_names
    follows, clicks = pair_columns(env.world.encoder.candidate_dim)
    assert (names[follows], names[clicks]) == ("follows_creator", "creator_clicks")
    env.close()
