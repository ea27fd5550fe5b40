"""RLIV-UA on RLlib (Ray started once per session, num_env_runners=0): the SCRI learner
connector's columns line up with the batch rows, the module's scores are actor + beta x the
weighted critic heads with progressive conditioning, training logs finite per-head TD
losses, and a checkpoint reloads as a Recommender through the algorithm registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recoworld.envs.config import WorldConfig
from recoworld.rl.config import TrainConfig

pytestmark = pytest.mark.slow

TINY = {"algo": "rliv_ua", "iterations": 2, "num_envs": 8, "eval_every": 2, "eval_episodes": 8,
        "eval_users": 8, "checkpoint_every": 0,
        "ppo": {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 1}}  # fmt: skip


def _world(small_config) -> WorldConfig:
    cfg = small_config.model_copy(deep=True)
    cfg.episode.text_info = "none"
    cfg.users.follow_bias = -1.0  # follows frequent enough for a tiny batch
    return cfg


def _learner_batch(algo, timesteps: int = 160):
    """(clicks in the sampled episodes, the learner batch built from them)."""
    episodes = algo.env_runner.sample(num_timesteps=timesteps, random_actions=False)
    # counted before the pipeline appends its artificial last timestep (a copy of the last)
    clicks = sum(int(np.asarray(info["click"]).sum())
                 for e in episodes for info in e.get_infos()[1:])  # fmt: skip
    learner = algo.learner_group._learner
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes,
                                       shared_data={})  # fmt: skip
    return clicks, batch["default_policy"]


@pytest.mark.parametrize("asa", [True, False])
def test_connector_columns_line_up(ray_session, small_config, asa):
    from recoworld.rl.rliv_ua.algorithm import build_rliv_ua_config, item_creators

    world = _world(small_config)
    cfg = TrainConfig.model_validate({**TINY, "rliv_ua": {"asa": asa}})
    algo = build_rliv_ua_config(world, cfg).build_algo()
    try:
        total_clicks, b = _learner_batch(algo)
        valid = b["scri_valid"].numpy()
        mask = b["loss_mask"].numpy()
        assert valid.any() and not valid[~mask].any()  # artificial rows carry nothing
        user = b["obs"]["user"].numpy()
        nxt = b["scri_next_user"].numpy()
        creators, _ = item_creators(world)
        items = np.take_along_axis(b["obs"]["candidate_ids"].numpy(), b["actions"].numpy(), 1)
        authors = creators[items]
        if asa:  # next state = the next row (the artificial last row holds the final obs)
            rows, slots = np.nonzero(valid)
            np.testing.assert_allclose(nxt[rows, slots], user[rows + 1])
            assert (b["scri_next_has_item"].numpy()[valid] == 0).all()
        else:  # the next item of a pair transition is an item of the same author
            has = b["scri_next_has_item"].numpy() > 0
            assert has.any() and (has <= valid).all()
            # the next item row's features match some candidate row of a later observation
            cand = b["obs"]["candidates"].numpy()
            for r, j in zip(*np.nonzero(has), strict=True):
                later = cand[r + 1 : r + 40].reshape(-1, cand.shape[-1])
                assert np.isclose(later, b["scri_next_item"].numpy()[r, j]).all(1).any()
        # rewards: the author's signals at the request, pooled over its slots
        pooled = b["scri_rewards"].numpy()[..., 0][valid].sum()
        if asa:
            assert pooled == pytest.approx(total_clicks)  # one author per click, one slate
        assert set(np.unique(authors[valid])) <= set(range(int(creators.max()) + 1))
    finally:
        algo.stop()


def test_module_scores_and_conditioning():
    import gymnasium as gym

    from recoworld.envs.vector_env import RecoWorldVectorEnv
    from recoworld.rl.rliv_ua.module import RLIVUAModule

    cfg = WorldConfig.model_validate(
        {"catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
         "candidates": {"n_candidates": 10},
         "episode": {"slate_size": 3, "max_sessions": 3, "max_session_steps": 10}}
    )  # fmt: skip
    env = RecoWorldVectorEnv(num_envs=4, config=cfg, observation="features+ids")
    obs, _ = env.reset(seed=0)
    creators = env.world.catalog.creator.tolist()
    spaces = {"observation_space": env.single_observation_space,
              "action_space": env.single_action_space}  # fmt: skip
    assert isinstance(spaces["action_space"], gym.spaces.MultiDiscrete)
    torch.manual_seed(0)
    weights = {"click": 1.0, "gift": 0.5}
    mod = RLIVUAModule(**spaces, model_config={"item_creator": creators, "critic_scale": 2.0,
                                               "head_weights": weights})  # fmt: skip
    t_obs = {k: torch.as_tensor(v) for k, v in obs.items()}
    with torch.no_grad():
        q, aux = mod.critic(mod.candidate_inputs(t_obs))
        actor = super(RLIVUAModule, mod).scores(t_obs)
        scores = mod.scores(t_obs)
    assert q.shape == (4, 10, 3) and aux.shape == (4, 10, 3)
    expected = actor + 2.0 * (q[..., 0] + 0.5 * q[..., 2])  # follow weight 0
    torch.testing.assert_close(scores, expected)  # no critic_norm key: raw (old checkpoints)
    slate = RLIVUAModule(**spaces, model_config={"item_creator": creators, "critic_scale": 2.0,
                                                 "head_weights": weights,
                                                 "critic_norm": "slate"})  # fmt: skip
    slate.load_state_dict(mod.state_dict())
    with torch.no_grad():
        tilt = slate.scores(t_obs) - actor  # 2 x the critic sum standardised per request
    torch.testing.assert_close(tilt.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(tilt.std(-1), torch.full((4,), 2.0), atol=1e-4, rtol=0)
    raw = q[..., 0] + 0.5 * q[..., 2]
    assert torch.equal(tilt.argsort(-1), raw.argsort(-1))  # the critics' order is kept
    with pytest.raises(ValueError, match="critic_norm"):
        RLIVUAModule(**spaces, model_config={"item_creator": creators, "critic_norm": "z"})
    # progressive conditioning: the follow head reads Q_click, the gift head reads Q_follow
    assert mod.heads[1][0].in_features == mod.heads[0][0].in_features + 1
    flat = RLIVUAModule(**spaces, model_config={"item_creator": creators,
                                                "conditioning": False})  # fmt: skip
    assert flat.heads[1][0].in_features == flat.heads[0][0].in_features
    with pytest.raises(ValueError, match="item_creator"):
        RLIVUAModule(**spaces, model_config={})
    with pytest.raises(ValueError, match="head_weights"):
        RLIVUAModule(**spaces, model_config={"item_creator": creators,
                                             "head_weights": {"share": 1.0}})  # fmt: skip
    env.close()


def test_train_checkpoint_and_reload(ray_session, small_config, tmp_path):
    from recoworld.rl.registry import load_recommender
    from recoworld.rl.trainer import train

    world = _world(small_config)
    out = tmp_path / "run"
    cfg = TrainConfig.model_validate(
        {**TINY, "rliv_ua": {"asa": False, "conditioning": False, "aux_weight": 0.0}}
    )
    last = train(world, cfg, out, show_progress=False)
    assert np.isfinite(last["mean_return"])
    results = [json.loads(line) for line in (out / "result.json").read_text().splitlines()]
    learner = results[-1]["learners"]["default_policy"]
    for key in ("td_loss_click", "td_loss_follow", "td_loss_gift", "aux_loss", "policy_loss"):
        assert np.isfinite(learner[key]), key
    assert learner["scri_samples"] > 0
    rec = load_recommender(out / "checkpoint", "rliv_ua")  # algo read from the manifest
    assert type(rec.module).__name__ == "RLIVUAModule" and not rec.module.conditioning
    from recoworld.envs.vector_env import RecoWorldVectorEnv

    env = RecoWorldVectorEnv(num_envs=5, config=world, observation="features+ids")
    obs, _ = env.reset(seed=0)
    slate = rec.act(obs)
    assert slate.shape == (5, 3) and all(len(set(r)) == 3 for r in slate.tolist())
    env.close()


def test_bad_settings():
    from recoworld.rl.rliv_ua.algorithm import build_rliv_ua_config

    with pytest.raises(ValueError, match="head_weights"):
        TrainConfig.model_validate({"algo": "rliv_ua", "rliv_ua": {"head_weights": {"x": 1}}})
    cfg = TrainConfig.model_validate({"algo": "rliv_ua", "rliv_ua": {"gammas": {"gift": 1.5}}})
    with pytest.raises(ValueError, match="gammas"):
        build_rliv_ua_config(WorldConfig(), cfg)
