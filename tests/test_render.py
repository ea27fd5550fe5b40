"""render_mode='rgb_array': frames of a fixed size that show what happened, a video through
Gymnasium's RecordVideo, the vector env's per-slot frames, Stable-Baselines3's make_vec_env
defaults, Gymnasium's handling of other modes, and the missing-Pillow error."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest

import recoworld  # noqa: F401  (registers the env)
from recoworld.core.errors import MissingExtraError
from recoworld.envs import ENV_ID, RecoWorldEnv, RecoWorldVectorEnv
from recoworld.envs.render import (
    COLORS,
    OUTCOME_W,
    SLOT_H,
    frame_shape,
    render_frame,
    slot_box,
)


def _short(config, sessions: int = 1, steps: int = 5):
    cfg = config.model_copy(deep=True)
    cfg.episode.max_sessions = sessions
    cfg.episode.max_session_steps = steps
    return cfg


def _slot_colors(frame: np.ndarray, j: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(background, left strip) colours of slot ``j``'s row, sampled off its text."""
    _, y0, x1, _ = slot_box(j, frame.shape[1])
    y = y0 + SLOT_H // 2
    return tuple(frame[y, x1 - OUTCOME_W - 4]), tuple(frame[y, 2])


def test_frames_have_one_shape_across_steps_and_resets(small_config):
    env = gym.make(
        ENV_ID, config=_short(small_config, sessions=2, steps=4), render_mode="rgb_array"
    )
    shape = frame_shape(small_config.episode.slate_size)
    assert shape[0] % 16 == 0 and shape[1] % 16 == 0  # video encoders' macro block
    frames, clicks = [], 0
    for seed in range(3):
        env.reset(seed=seed)
        frames.append(env.render())
        done = False
        while not done:
            _, _, term, trunc, info = env.step(env.action_space.sample())
            frames.append(env.render())
            done = term or trunc
            for j in range(len(info["click"])):  # each row is coloured by what the user did
                outcome = (
                    "duplicate"
                    if not info["shown"][j]
                    else "clicked"
                    if info["click"][j]
                    else "skipped"
                )
                want = (COLORS[f"{outcome}_bg"], COLORS[outcome])
                assert _slot_colors(frames[-1], j) == want
                clicks += outcome == "clicked"
    assert len(frames) > 6 and clicks > 0
    for frame in frames:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == shape
    # a reset frame lists the new user's candidates
    assert _slot_colors(frames[0], 0) == (COLORS["candidate_bg"], COLORS["candidate"])


def test_frame_shows_which_slot_was_clicked(small_config):
    env = RecoWorldEnv(config=small_config, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([0, 1, 2]))
    info = dict(env._last_step.info)  # the batched step info the frame is drawn from
    cat = env.catalog

    def frame(click: list[bool], shown: list[bool]) -> np.ndarray:
        step = dict(info)
        step["click"] = np.array([click])
        step["shown"] = np.array([shown])
        step["watch"] = np.where(step["click"], 0.5, 0.0).astype(np.float32)
        for key in ("like", "follow", "gift"):
            step[key] = np.zeros_like(step["click"])
        return render_frame(cat, step, 1.0)

    first = frame([True, False, False], [True, True, True])
    second = frame([False, True, False], [True, True, False])
    clicked = (COLORS["clicked_bg"], COLORS["clicked"])
    skipped = (COLORS["skipped_bg"], COLORS["skipped"])
    duplicate = (COLORS["duplicate_bg"], COLORS["duplicate"])
    assert [_slot_colors(first, j) for j in range(3)] == [clicked, skipped, skipped]
    assert [_slot_colors(second, j) for j in range(3)] == [skipped, clicked, duplicate]
    assert first.shape == second.shape
    assert not np.array_equal(first, second)


def test_rendering_costs_nothing_unless_asked(small_config):
    env = RecoWorldEnv(config=small_config)
    env.reset(seed=0)
    env.step(np.array([0, 1, 2]))
    assert env._last_step is None
    with pytest.warns(UserWarning, match="without specifying any render mode"):
        assert env.render() is None


def test_record_video_writes_an_episode(small_config, tmp_path):
    import imageio.v2 as imageio

    env = gym.make(ENV_ID, config=_short(small_config), render_mode="rgb_array")
    folder = tmp_path / "videos"
    env = gym.wrappers.RecordVideo(
        env, video_folder=str(folder), episode_trigger=lambda e: True, disable_logger=True
    )
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        done = term or trunc
    assert len(env.recorded_frames) == steps + 1  # the reset frame, then one per step
    env.close()  # writes the video
    videos = list(folder.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    reader = imageio.get_reader(videos[0])
    try:
        n_frames = sum(1 for _ in reader)
        first = reader.get_data(0)
    finally:
        reader.close()
    assert n_frames == steps + 1
    assert first.shape == frame_shape(small_config.episode.slate_size)


def test_vector_env_renders_one_frame_per_slot(small_config):
    cfg = small_config.model_copy(deep=True)
    cfg.users.leave_bias = 20.0  # everyone leaves at once ...
    cfg.users.instruction_prob = 0.0
    cfg.users.return_bias = -20.0  # ... and never comes back
    envs = RecoWorldVectorEnv(num_envs=3, config=cfg, render_mode="rgb_array")
    shape = frame_shape(cfg.episode.slate_size)
    envs.reset(seed=0)
    frames = envs.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    assert all(f.shape == shape and f.dtype == np.uint8 for f in frames)
    _, _, term, _, _ = envs.step(np.tile(np.arange(3), (3, 1)))
    assert term.all()
    stepped = envs.render()
    assert len(stepped) == 3 and all(f.shape == shape for f in stepped)
    assert all(_slot_colors(f, 0)[0] != COLORS["candidate_bg"] for f in stepped)
    envs.step(np.tile(np.arange(3), (3, 1)))  # autoreset: three new users
    assert all(_slot_colors(f, 0)[0] == COLORS["candidate_bg"] for f in envs.render())

    vec = gym.make_vec(ENV_ID, num_envs=2, config=cfg, render_mode="rgb_array")
    vec.reset(seed=0)
    assert len(vec.render()) == 2


def test_stable_baselines3_make_vec_env_defaults():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(ENV_ID, n_envs=2)  # calls gym.make(ENV_ID, render_mode="rgb_array")
    try:
        venv.seed(0)
        venv.reset()
        for _ in range(3):
            venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        images = venv.get_images()
        assert len(images) == 2 and all(im.ndim == 3 and im.dtype == np.uint8 for im in images)
    finally:
        venv.close()


def test_other_render_modes_follow_gymnasium(small_config):
    with pytest.raises(ValueError, match="render_mode='depth_array' is not supported"):
        RecoWorldEnv(config=small_config, render_mode="depth_array")
    with pytest.raises(ValueError, match="render_mode"), pytest.warns(UserWarning):
        gym.make(ENV_ID, config=small_config, render_mode="depth_array")  # gym.make warns first
    with pytest.raises(ValueError, match="render_mode"):
        RecoWorldVectorEnv(num_envs=2, config=small_config, render_mode="human")
    # "<mode>_list": Gymnasium's RenderCollection over the mode
    env = gym.make(ENV_ID, config=small_config, render_mode="rgb_array_list")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frames = env.render()
    assert isinstance(frames, list) and len(frames) == 2
    # "human": Gymnasium's HumanRendering window over rgb_array (pygame draws it)
    with pytest.warns(UserWarning, match="HumanRendering"):
        human = gym.make(ENV_ID, config=small_config, render_mode="human")
    assert isinstance(human, gym.wrappers.HumanRendering)
    assert human.unwrapped.render_mode == "rgb_array"


def test_missing_pillow_names_the_extra(small_config, monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "PIL" else real(name, *args, **kwargs)

    env = RecoWorldEnv(config=small_config, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([0, 1, 2]))
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtraError) as err:
        RecoWorldEnv(config=small_config, render_mode="rgb_array")
    assert err.value.extra == "clients" and "rgb_array" in str(err.value)
    with pytest.raises(MissingExtraError):
        env.render()
    RecoWorldEnv(config=small_config, render_mode="ansi")  # the text modes need no Pillow
