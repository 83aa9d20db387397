"""1D Pursuit (paper §5.1): specs, hand-computed transitions, masks, resets and labels."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from torchrl_liir import PursuitEnv
from torchrl_liir.envs import action_labels

LEFT, STAY, RIGHT = 0, 1, 2


@pytest.mark.parametrize("num_envs", [1, 4])
def test_specs(num_envs):
    check_env_specs(PursuitEnv(num_envs=num_envs, seed=0))


def at(values, normalize=False, **kwargs) -> PursuitEnv:
    env = PursuitEnv(num_envs=len(values), normalize=normalize, seed=0, **kwargs)
    env.reset()
    env.values = torch.tensor(values)
    return env


def step(env, actions):
    td = TensorDict({"agents": TensorDict({"action": torch.tensor(actions)}, [len(actions), 2])}, [len(actions)])
    return env.step(td)["next"]


def test_transitions_and_team_reward():
    env = at([[3, -2], [3, -2], [3, -2], [0, 5]])
    out = step(env, [[LEFT, RIGHT], [RIGHT, LEFT], [LEFT, LEFT], [RIGHT, LEFT]])
    assert out["state"].tolist() == [[2, -1], [4, -3], [2, -3], [1, 4]]
    assert out["agents", "observation"][0].tolist() == [[2, -1], [-1, 2]]
    torch.testing.assert_close(out["reward"][:, 0], torch.tensor([0.01, -0.01, 0.0, 0.0]))
    assert not out["done"].any()


def test_reaching_the_target_terminates_and_the_game_has_a_fixed_length():
    env = at([[1, -1], [5, 5], [1, 3]], max_steps=3)
    out = step(env, [[LEFT, RIGHT], [STAY, STAY], [LEFT, LEFT]])
    assert out["terminated"][:, 0].tolist() == [True, False, False]  # one agent at 0 is not enough
    step(env, [[STAY, STAY]] * 3)
    out = step(env, [[STAY, STAY]] * 3)
    assert out["terminated"][1:, 0].all() and out["done"][1:, 0].all() and not out["truncated"].any()


def test_mask_keeps_values_in_range_and_bad_actions_are_rejected():
    env = at([[10, -10]])
    mask = env._observe()["agents", "action_mask"][0]
    assert mask.tolist() == [[True, True, False], [False, True, True]]
    with pytest.raises(ValueError, match=r"^\('agents', 'action'\)=2 of agent 0 \(env \[0\]\) is outside the action "
                                         r"mask \('agents', 'action_mask'\), which allows \[0, 1\]$"):
        step(env, [[RIGHT, STAY]])
    with pytest.raises(ValueError, match=r"^\('agents', 'action'\)=3 of agent 0 \(env \[0\]\) is not in \[0, 3\)$"):
        step(env, [[3, STAY]])
    with pytest.raises(ValueError, match=r"^\('agents', 'action'\) must hold integer action indices, got torch\.float"):
        step(env, [[1.9, 1.0]])
    with pytest.raises(ValueError, match=r"^\('agents', 'action'\) is missing: a step needs one action index"):
        env.step(TensorDict({}, [1]))


@pytest.mark.parametrize("mask_shape", [(2, 1), (2,)])
def test_partial_reset_only_resets_selected_envs(mask_shape):
    env = at([[7, 7], [7, 7]])
    env.steps[:] = 5
    env.reset(TensorDict({"_reset": torch.tensor([True, False]).reshape(mask_shape)}, [2]))
    assert env.values[1].tolist() == [7, 7] and env.steps.tolist() == [0, 5]


def test_normalised_observations_and_random_rollouts_respect_the_mask():
    env = PursuitEnv(num_envs=64, max_steps=40, seed=1)
    rollout = env.rollout(40, break_when_any_done=False)
    assert rollout["agents", "observation"].abs().max() <= 1.0
    chosen = rollout["agents", "action_mask"].gather(-1, rollout["agents", "action"].unsqueeze(-1))
    assert chosen.all()


def test_action_labels():
    obs = torch.tensor([[3.0, 0.0], [-2.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.3, 0.0]]).unsqueeze(1)
    action = torch.tensor([[LEFT], [LEFT], [RIGHT], [STAY], [STAY]])
    good, bad = action_labels(obs, action)
    assert good[:, 0].tolist() == [True, False, False, False, False]
    assert bad[:, 0].tolist() == [False, True, True, False, False]


def test_seed_reproduces_initial_values():
    first = PursuitEnv(num_envs=8, seed=3).reset()["state"]
    second = PursuitEnv(num_envs=8, seed=3).reset()["state"]
    torch.testing.assert_close(first, second)
