"""VMAS and PettingZoo (MPE) tasks: the env layout the trainer relies on, team rewards, episode ends, seeding,
config errors, and short training runs of the actor-critic algorithms."""
from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torchrl.data import Bounded, Categorical
from torchrl.envs import EnvBase
from torchrl.envs.utils import check_env_specs

from torchrl_liir.collectors import EpisodeCollector
from torchrl_liir.collectors.episode_collector import env_episode_limit
from torchrl_liir.tasks import get_task
from torchrl_liir.trainers import ConfigError, check_config, train
from torchrl_liir.trainers.trainer import make_env

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["task.num_envs=4", "task.episode_limit=10"]
VMAS_RUNS = {"balance": ["task=vmas", "task.scenario=balance", *SMALL],
             "navigation": ["task=vmas", "task.scenario=navigation", "task.continuous_actions=true", *SMALL]}
PZ_RUN = ["task=pettingzoo", *SMALL]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["experiment.progress_bar=false", *overrides])


def build(cfg, num_envs: int = 4, seed: int = 0) -> EnvBase:
    return get_task(cfg.task.name).make_env(cfg, torch.device(cfg.experiment.device), num_envs, seed)


def one_line_error(cfg, match: str, build_it: bool = False) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        check_config(cfg)
        if build_it:
            build(cfg)
    assert "\n" not in str(err.value)


class RandomPolicy:
    """Uniform random actions from the env's action spec."""

    def __init__(self, env: EnvBase) -> None:
        self.spec = env.full_action_spec

    def __call__(self, td):
        return td.update(self.spec.rand())


def check_layout(env: EnvBase, n_agents: int) -> None:
    """The keys and shapes every algorithm reads (batch ``[4]``, one ``"agents"`` group, root flags)."""
    check_env_specs(env)
    observation, reward, done = env.observation_spec, env.full_reward_spec, env.full_done_spec
    assert env.batch_size == (4,)
    agent_obs = observation["agents", "observation"]
    assert agent_obs.shape[:2] == (4, n_agents) and len(agent_obs.shape) == 3 and agent_obs.dtype == torch.float32
    assert set(observation.keys(True, True)) == {("agents", "observation")}  # no info, no state
    assert reward["agents", "reward"].shape == (4, n_agents, 1) and reward["reward"].shape == (4, 1)
    assert {key for key in done.keys(True, True) if isinstance(key, tuple)} == set()  # root flags only
    assert done["done"].shape == (4, 1) and done["terminated"].shape == (4, 1)


# ---------------------------------------------------------------- VMAS


@pytest.fixture(scope="module")
def vmas():
    return pytest.importorskip("vmas")


def test_vmas_discrete_layout(vmas):
    cfg = config(*VMAS_RUNS["balance"], "task.n_agents=4")
    env = build(cfg)
    check_layout(env, 4)
    action = env.full_action_spec["agents", "action"]
    assert isinstance(action, Categorical) and action.shape == (4, 4) and action.dtype == torch.int64
    raw = vmas.make_env("balance", num_envs=1, continuous_actions=False, n_agents=4)
    assert action.n == raw.action_space[0].n
    assert env_episode_limit(make_env(get_task("vmas"), cfg, torch.device("cpu"), 4, 0)) == 10


def test_vmas_continuous_action_bounds_are_the_scenarios(vmas):
    env = build(config(*VMAS_RUNS["navigation"]))
    raw = vmas.make_env("navigation", num_envs=1, continuous_actions=True)
    check_layout(env, raw.n_agents)
    action = env.full_action_spec["agents", "action"]
    assert isinstance(action, Bounded) and action.dtype == torch.float32
    box = raw.action_space[0]
    assert action.shape == (4, raw.n_agents, box.shape[0])
    torch.testing.assert_close(action.space.low, torch.as_tensor(box.low).expand(action.shape))
    torch.testing.assert_close(action.space.high, torch.as_tensor(box.high).expand(action.shape))


@pytest.mark.parametrize("scenario", ["balance", "navigation"])
def test_vmas_team_reward_and_episode_ends(vmas, scenario):
    cfg = config(*VMAS_RUNS[scenario])
    env = make_env(get_task("vmas"), cfg, torch.device("cpu"), 4, 0)
    batch = EpisodeCollector(env, RandomPolicy(env), get_task("vmas").episode_limit(cfg)).rollout()
    assert batch.shape[0] == 4 and batch.shape[1] <= 10  # every env's episode ended within max_steps
    nxt = batch["next"]
    torch.testing.assert_close(nxt["reward"], nxt["agents", "reward"].sum(-2) / nxt["agents", "reward"].shape[-2])
    length = batch["collector", "mask"].sum(-1)
    assert nxt["done"][torch.arange(4), length - 1].all()


def test_vmas_seed_sets_the_games(vmas):
    cfg = config(*VMAS_RUNS["navigation"])
    first = [build(cfg, seed=seed).reset()["agents", "observation"] for seed in (3, 3, 4)]
    torch.testing.assert_close(first[0], first[1])
    assert not torch.allclose(first[0], first[2])


def test_vmas_config_errors(vmas):
    one_line_error(config("task=vmas", "task.scenario=balanse"),
                   r"task\.scenario='balanse': must be a VMAS .*navigation")
    one_line_error(config("task=vmas", "~task.continuous_actions"), r"task\.continuous_actions=None: missing")
    one_line_error(config("task=vmas", "task.n_agents=0"), r"task\.n_agents=0: must be an integer >= 1")
    one_line_error(config("task=vmas", "task.continuous_actions=1"), r"task\.continuous_actions=1: must be true or")
    with warnings.catch_warnings():
        # VMAS warns that give_way takes no n_agents before the check that the built scenario has 3 agents fails.
        warnings.filterwarnings("ignore", r"Scenario kwargs: .* passed but not used", UserWarning, "vmas")
        one_line_error(config("task=vmas", "task.scenario=give_way", "task.n_agents=3"), r"give_way has 2 agents",
                       build_it=True)
    one_line_error(config("task=vmas", "task.scenario=simple_adversary"), r"agents differ", build_it=True)


def test_missing_vmas_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vmas", None)
    one_line_error(config("task=vmas"), r'pip install -e "\.\[vmas\]"')


# ---------------------------------------------------------------- PettingZoo (MPE)


@pytest.fixture(scope="module")
def mpe2():
    pytest.importorskip("pettingzoo")
    return pytest.importorskip("mpe2")


@pytest.mark.parametrize("continuous", [False, True])
def test_mpe_layout(mpe2, continuous):
    env = build(config(*PZ_RUN, f"task.continuous_actions={str(continuous).lower()}"))
    check_layout(env, 3)
    assert env.full_done_spec["truncated"].shape == (4, 1)
    action = env.full_action_spec["agents", "action"]
    if continuous:
        assert isinstance(action, Bounded) and action.shape == (4, 3, 5)
        assert (action.space.low == 0).all() and (action.space.high == 1).all()
    else:
        assert isinstance(action, Categorical) and action.shape == (4, 3) and action.n == 5


def test_mpe_plays_mpes_games_and_every_game_lasts_max_steps(mpe2):
    """Env ``i`` of a batch seeded ``s`` plays the game mpe2 plays with seed ``s + i``, step for step."""
    cfg = config(*PZ_RUN, "task.n_agents=4")
    env = make_env(get_task("pettingzoo"), cfg, torch.device("cpu"), 4, 7)
    assert env_episode_limit(env) == 10
    batch = EpisodeCollector(env, RandomPolicy(env), 10).rollout()
    nxt = batch["next"]
    assert batch.shape == (4, 10) and nxt["done"][:, -1].all() and not nxt["done"][:, :-1].any()
    assert nxt["truncated"][:, -1].all() and not nxt["terminated"].any()
    torch.testing.assert_close(nxt["reward"], nxt["agents", "reward"].sum(-2) / 4)
    for i in range(4):
        game = mpe2.simple_spread_v3.parallel_env(N=4, max_cycles=10)
        game.reset(seed=7 + i)  # the wrapper's seeding reset; the collector's reset is the next one
        obs, _ = game.reset()
        agents = game.possible_agents
        observations, rewards = [np.stack([obs[a] for a in agents])], []
        for t in range(10):
            obs, reward, *_ = game.step({a: int(batch["agents", "action"][i, t, k]) for k, a in enumerate(agents)})
            observations.append(np.stack([obs[a] for a in agents]))
            rewards.append([[reward[a]] for a in agents])
        torch.testing.assert_close(batch["agents", "observation"][i], torch.as_tensor(np.stack(observations[:-1])))
        torch.testing.assert_close(nxt["agents", "reward"][i], torch.as_tensor(rewards, dtype=torch.float32))


def test_mpe_other_cooperative_tasks_build(mpe2):
    for task, n_agents in (("simple_reference_v3", 2), ("simple_formation_v1", 4), ("simple_line_v1", 4)):
        check_layout(build(config(*PZ_RUN, f"task.scenario={task}")), n_agents)


def test_mpe_config_errors(mpe2):
    one_line_error(config("task=pettingzoo", "task.scenario=simple_tag_v3"),
                   r"task\.scenario='simple_tag_v3': must be one of")
    one_line_error(config("task=pettingzoo", "task.scenario=simple_reference_v3", "task.n_agents=3"),
                   r"task\.n_agents=3: must be null: simple_reference_v3 has a fixed number of agents")
    one_line_error(config("task=pettingzoo", "~task.episode_limit"), r"task\.episode_limit=None: missing")
    one_line_error(config("task=pettingzoo", "+task.local_ratio=0.5"), r"task\.local_ratio=0\.5: unknown key")


@pytest.mark.parametrize("package", ["pettingzoo", "mpe2"])
def test_missing_pettingzoo_names_its_extra(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)
    one_line_error(config("task=pettingzoo"), r'pip install -e "\.\[pettingzoo\]"')


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("run", ["vmas", "pettingzoo"])
def test_envs_run_on_the_gpu(run):
    pytest.importorskip("vmas" if run == "vmas" else "mpe2")
    env = build(config(*(VMAS_RUNS["balance"] if run == "vmas" else PZ_RUN), "experiment.device=cuda"))
    check_env_specs(env)
    rollout = env.rollout(3)
    assert rollout["next", "reward"].device.type == rollout["agents", "observation"].device.type == "cuda"


# ---------------------------------------------------------------- training runs


def test_default_configs_pass_their_checks_and_name_their_runs(vmas, mpe2):
    for algo in ("liir", "iac", "central_v", "coma", "mappo"):
        check_config(config("task=vmas", f"algo={algo}"))
        check_config(config("task=pettingzoo", f"algo={algo}"))
    assert config("task=vmas", "task.scenario=navigation").task.run_name == "vmas_navigation"
    assert config("task=pettingzoo").task.run_name == "pz_simple_spread_v3"


RUNS = {"vmas_balance": VMAS_RUNS["balance"], "vmas_navigation": VMAS_RUNS["navigation"], "pz_spread": PZ_RUN}


@pytest.mark.parametrize("algo", ["liir", "iac", "central_v", "mappo"])
@pytest.mark.parametrize("run", list(RUNS))
def test_short_training_run(tmp_path, run, algo):
    pytest.importorskip("mpe2" if run.startswith("pz") else "vmas")
    summary = train(config(*RUNS[run], f"algo={algo}", "model.num_cells=[16]", "experiment.total_frames=200",
                           "experiment.evaluation_episodes=4", "experiment.evaluation_interval_episodes=0"), tmp_path)
    assert summary["status"] == "finished"
    with (tmp_path / "metrics.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    frames = [int(row["frames"]) for row in table]
    # Updates of 4 episodes of at most 10 steps until 200 frames: 5 when every episode lasts max_steps.
    assert [int(row["update"]) for row in table] == list(range(1, len(table) + 1)) == list(
        range(1, summary["updates"] + 1))
    assert frames[-1] >= 200 > frames[-2]
    if all(float(row["episode_length"]) == 10 for row in table):
        assert len(table) == 5
    losses = {key: float(value) for row in table for key, value in row.items() if key.startswith("loss_")}
    assert losses and all(math.isfinite(value) for value in losses.values())


@pytest.mark.parametrize("algo", ["coma", "qmix", "iql"])
def test_discrete_only_baselines_train_without_mask_or_state(tmp_path, vmas, algo):
    summary = train(config(*VMAS_RUNS["balance"], f"algo={algo}", "model.num_cells=[16]", "experiment.total_frames=80",
                           "experiment.evaluation_episodes=4", "experiment.evaluation_interval_episodes=0"), tmp_path)
    assert summary["status"] == "finished"
    with (tmp_path / "metrics.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    losses = [float(value) for row in table for key, value in row.items() if key.startswith("loss_")]
    assert losses and all(math.isfinite(value) for value in losses)


@pytest.mark.parametrize("algo", ["coma", "qmix", "iql"])
def test_discrete_only_baselines_refuse_continuous_actions(tmp_path, vmas, algo):
    with pytest.raises(ConfigError, match=f"algo={algo} needs discrete actions"):
        train(config(*VMAS_RUNS["navigation"], f"algo={algo}", "experiment.total_frames=40"), tmp_path)


@pytest.mark.slow
def test_command_line_runs_and_rejects_an_unknown_scenario(tmp_path, vmas):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "scripts" / "train.py")
    common = ["experiment.progress_bar=false", "experiment.total_frames=40", "experiment.evaluation_episodes=4",
              "experiment.evaluation_interval_episodes=0"]
    ok = subprocess.run([sys.executable, script, *VMAS_RUNS["balance"], *common, f"hydra.run.dir={tmp_path / 'ok'}"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "ok" / "summary.json").exists()
    bad = subprocess.run([sys.executable, script, "task=vmas", "task.scenario=nowhere", *common,
                          f"hydra.run.dir={tmp_path / 'bad'}"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: task.scenario='nowhere': must be a VMAS")
    assert len(bad.stderr.strip().splitlines()) == 1
