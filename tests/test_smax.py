"""SMAXEnv: specs, masks, truncation vs termination, the win flag, partial resets, the walls rule."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import smax_west_edge_steps
from torchrl.envs.utils import check_env_specs

pytest.importorskip("jaxmarl", reason="SMAX needs the [smax] extra (jaxmarl)")

from torchrl_liir.envs import SMAXEnv  # noqa: E402

N_MOVES = 5  # SMAX: 4 moves + stop, then one attack per enemy
WEST = 3  # SMAX's moves: north, east, south, west
B = 4  # battles per test env: one batch shape, so the JAX kernels compile once for the whole file


def focus_fire(td):
    """Every ally attacks the lowest-index enemy in range, else walks east (else stops)."""
    mask = td.get(("agents", "action_mask"))
    attack = mask[..., N_MOVES:]
    target = attack.float().argmax(-1) + N_MOVES
    east = torch.where(mask[..., 1], 1, 4)
    td.set(("agents", "action"), torch.where(attack.any(-1), target, east))
    return td


def walk_west(td):
    """Every ally walks west (toward the map's edge nearest the allies' start), or stops once dead."""
    mask = td.get(("agents", "action_mask"))
    td.set(("agents", "action"), torch.where(mask[..., WEST], WEST, N_MOVES - 1))
    return td


@pytest.fixture(scope="module")
def battle_rollout():
    env = SMAXEnv("3m", num_envs=B, seed=1)
    return env, env.rollout(120, focus_fire, break_when_any_done=False)


def test_specs_and_sizes():
    env = SMAXEnv("3m", num_envs=B, seed=0)
    check_env_specs(env)
    assert (env.n_agents, env.n_enemies, env.n_actions, env.episode_limit) == (3, 3, 8, 60)
    td = env.reset()
    assert td.get(("agents", "observation")).shape == (4, 3, env.obs_dim)
    assert td.get("state").shape == (4, env.state_dim)
    assert td.get(("agents", "health")).eq(1).all() and td.get(("agents", "alive")).all()
    assert SMAXEnv("2s3z", num_envs=1).episode_limit == 120


def test_action_outside_mask_is_rejected():
    env = SMAXEnv("3m", num_envs=B, seed=0)
    td = env.reset()
    # At the start the teams are out of range: attacking enemy 0 is masked out.
    assert not td.get(("agents", "action_mask"))[..., N_MOVES].any()
    td.set(("agents", "action"), torch.full((B, 3), N_MOVES))
    with pytest.raises(ValueError, match="outside the action mask"):
        env.step(td)
    td.set(("agents", "action"), torch.full((B, 3), 8))
    with pytest.raises(ValueError, match=r"not in \[0, 8\)"):
        env.step(td)


def test_deferred_mask_check_raises_at_the_next_reset():
    env = SMAXEnv("3m", num_envs=B, seed=0)
    env._defer_mask_check = True  # as on a GPU, where a check per step would wait for the device
    td = env.reset()
    td.set(("agents", "action"), torch.full((B, 3), N_MOVES))
    env.step(td)
    with pytest.raises(ValueError, match="outside the action mask"):
        env.reset()
    env.reset()  # the bad step was reported once


def test_random_actions_stay_inside_the_mask():
    env = SMAXEnv("3m", num_envs=B, seed=3)
    rollout = env.rollout(80, break_when_any_done=False)
    chosen = rollout.get(("agents", "action_mask")).gather(-1, rollout.get(("agents", "action")).unsqueeze(-1))
    assert chosen.all()


def test_win_flag_matches_the_win_bonus_and_unit_counts(battle_rollout):
    env, rollout = battle_rollout
    nxt = rollout.get("next")
    won = nxt.get(("info", "battle_won"))
    done = nxt.get("done")[..., 0]
    assert won.any() and (~won & done).any(), "focus fire should win some battles and lose others"
    assert not (won & ~done).any()
    # SMAX pays a bonus of 1 on the winning step; damage alone gives at most 1 over a whole episode.
    assert (nxt.get("reward")[..., 0][won] >= 1.0).all()
    assert (nxt.get(("info", "dead_enemies"))[won] == 3).all() and (nxt.get(("info", "dead_allies"))[won] < 3).all()
    lost = done & ~won & nxt.get("terminated")[..., 0]
    assert (nxt.get(("info", "dead_allies"))[lost] == 3).all()


def test_state_and_observations_are_scaled_as_smacs(battle_rollout):
    env, rollout = battle_rollout
    for key in ("state", ("agents", "observation")):
        values = rollout.get(key)
        assert values.abs().max() <= 1.0
        assert env.observation_spec[key].is_in(values[:, 0])
    # Positions are fractions of the map: the allies start in its left half, the enemies in its right half.
    units = rollout.get("state")[:, 0, :60].reshape(B, 6, 10)
    assert (units[:, :3, 1] < 0.5).all() and (units[:, 3:, 1] > 0.5).all()


def test_dead_agents_can_only_stop(battle_rollout):
    _, rollout = battle_rollout
    nxt = rollout.get("next")
    dead = ~nxt.get(("agents", "alive"))[..., 0]
    assert dead.any()
    mask = nxt.get(("agents", "action_mask"))[dead]
    assert mask[:, N_MOVES - 1].all() and mask.sum(-1).eq(1).all()
    assert nxt.get(("agents", "health"))[..., 0][dead].eq(0).all()


def test_episode_limit_is_a_truncation_not_a_termination():
    env = SMAXEnv("3m", num_envs=B, episode_limit=4, seed=0)
    stop = lambda td: td.set(("agents", "action"), torch.full((B, 3), N_MOVES - 1))  # noqa: E731
    rollout = env.rollout(8, stop, break_when_any_done=False)
    nxt = rollout.get("next")
    expected = torch.tensor([False, False, False, True] * 2).expand(B, 8)
    assert torch.equal(nxt.get("truncated")[..., 0], expected)
    assert not nxt.get("terminated").any()
    assert torch.equal(nxt.get("done"), nxt.get("truncated"))
    assert torch.equal(nxt.get(("info", "episode_limit")), expected)


def test_partial_reset_leaves_the_other_battles_running():
    env = SMAXEnv("3m", num_envs=B, episode_limit=4, seed=0)
    td = env.reset()
    stop = torch.full((B, 3), N_MOVES - 1)
    for _ in range(2):
        td = env.step(td.set(("agents", "action"), stop)).get("next")
    td.set("_reset", torch.tensor([[True], [False], [False], [False]]))
    td = env.reset(td)
    truncated_at = []
    for t in range(4):
        td = env.step(td.set(("agents", "action"), stop)).get("next")
        truncated_at.append(td.get("truncated")[:2, 0].tolist())
    # Battle 1 kept its clock (2 steps in, ends after 2 more); battle 0 restarted (ends after 4).
    assert truncated_at == [[False, False], [False, True], [False, True], [True, True]]


def test_seeded_battles_repeat():
    a = SMAXEnv("3m", num_envs=B, seed=7).rollout(10, focus_fire, break_when_any_done=False)
    b = SMAXEnv("3m", num_envs=B, seed=7).rollout(10, focus_fire, break_when_any_done=False)
    assert torch.equal(a.get(("next", "state")), b.get(("next", "state")))


@pytest.mark.parametrize("walls_cause_death", [True, False], ids=["smax-rule", "smac-rule"])
def test_walls_cause_death_kills_allies_at_the_maps_edge_unless_turned_off(walls_cause_death):
    env = SMAXEnv("3m", num_envs=8, seed=0, walls_cause_death=walls_cause_death)
    assert env.walls_cause_death is walls_cause_death
    steps = smax_west_edge_steps(env)  # every ally walking west has touched the edge by then, the enemies far away
    td = env.reset()
    for _ in range(steps):
        td = env.step(walk_west(td)).get("next")
    if walls_cause_death:
        assert td.get("terminated").all() and not td.get(("info", "battle_won")).any()
        assert td.get(("info", "dead_allies")).eq(3).all() and td.get(("info", "dead_enemies")).eq(0).all()
    else:
        assert not td.get("done").any() and td.get(("agents", "alive")).all()
        allies_x = td.get("state")[:, :60].reshape(8, 6, 10)[:, :3, 1]
        assert allies_x.abs().max() < 1e-3  # held at the west edge


def test_bad_map_and_device():
    with pytest.raises(ValueError, match="not a SMAX scenario"):
        SMAXEnv("4x4_nope", num_envs=1)
    with pytest.raises(ValueError, match="num_envs=0"):
        SMAXEnv("3m", num_envs=0)


@pytest.mark.slow
def test_smax_imports_without_jaxmarls_other_envs_and_jaxmarl_still_works():
    code = """
import sys
from torchrl_liir import SMAXEnv
env = SMAXEnv("3m", 2)
assert "jaxmarl.environments.storm" not in sys.modules
import jaxmarl
from jaxmarl.environments.smax import HeuristicEnemySMAX
made = jaxmarl.make("HeuristicEnemySMAX", scenario=jaxmarl.environments.smax.map_name_to_scenario("3m"))
assert type(made) is HeuristicEnemySMAX is type(env._smax)
assert "jaxmarl.environments.storm" in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_actions_must_be_integer_indices_and_int32_ones_are_taken():
    env = SMAXEnv("3m", num_envs=B, seed=0)
    td = env.reset()
    td.set(("agents", "action"), torch.full((B, 3), 1.9))
    with pytest.raises(ValueError, match=r"^\('agents', 'action'\) must hold integer action indices, got torch\.float"):
        env.step(td)
    td.set(("agents", "action"), torch.zeros((B, 3), dtype=torch.int32))
    assert env.step(td).get(("next", "reward")).shape == (B, 1)
