"""EpisodeCollector: the same kept data as a fixed-frame TorchRL Collector, without stepping past the batch's end."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDictBase
from torchrl.collectors import Collector
from torchrl.envs import Compose, InitTracker, TransformedEnv

from torchrl_liir import PursuitEnv, make_gru_policy, make_mlp_policy, policy_primer
from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector, one_episode_per_env


def _env(base, policy) -> TransformedEnv:
    primer = policy_primer(policy)
    return TransformedEnv(base, Compose(InitTracker(), *([primer] if primer is not None else [])))


def _smax(seed: int = 0):
    smax = pytest.importorskip("torchrl_liir.envs.smax")
    return smax.SMAXEnv("3m", 8, seed=seed, reward_scale=10.0)


def _pursuit(seed: int = 0):
    return PursuitEnv(num_envs=8, max_steps=20, seed=seed)


class StepCounter:
    """Counts the calls to ``env.step``."""

    def __init__(self, env: TransformedEnv) -> None:
        self.steps = 0
        step = env.step

        def counted(td: TensorDictBase) -> TensorDictBase:
            self.steps += 1
            return step(td)

        env.step = counted


@pytest.mark.parametrize("make_base, make_policy", [(_pursuit, make_mlp_policy), (_smax, make_gru_policy)],
                         ids=["pursuit-mlp", "smax-gru"])
def test_kept_data_equals_a_fixed_frame_collector(make_base, make_policy):
    base_old, base_new = make_base(), make_base()
    torch.manual_seed(0)
    n_agents = base_old.n_agents
    obs_dim = base_old.observation_spec["agents", "observation"].shape[-1]
    policy = make_policy(n_agents, obs_dim, base_old.full_action_spec["agents", "action"].n,
                         action_mask_key=("agents", "action_mask"))
    limit = base_old.episode_limit if hasattr(base_old, "episode_limit") else base_old.max_steps
    old_env, new_env = _env(base_old, policy), _env(base_new, policy)
    # The collector every batch used before: all envs restarted, `limit` steps each, partial resets in between.
    old = iter(Collector(old_env, policy, frames_per_batch=8 * limit, total_frames=-1, reset_at_each_iter=True))
    counter = StepCounter(new_env)
    new = iter(EpisodeCollector(new_env, policy))
    for batch_index in range(3):
        torch.manual_seed(batch_index)
        old_env.set_seed(batch_index)
        kept = one_episode_per_env(next(old))
        torch.manual_seed(batch_index)
        new_env.set_seed(batch_index)
        counter.steps = 0
        batch = next(new)

        lengths = kept.get(PADDING_MASK).sum(-1)
        assert batch.shape == (kept.shape[0], int(lengths.max()))  # trimmed to the longest kept episode
        assert counter.steps == batch.shape[1]  # and stepping stopped there
        mask = batch.get(PADDING_MASK)
        assert torch.equal(kept.get(PADDING_MASK)[:, : batch.shape[1]], mask)
        keys = set(kept.keys(True, True)) - {("collector", "traj_ids")}
        assert keys == set(batch.keys(True, True))
        for key in keys:
            assert torch.equal(kept.get(key)[:, : batch.shape[1]][mask], batch.get(key)[mask]), key


def test_episodes_shorter_than_the_limit_stop_the_batch_early():
    torch.manual_seed(0)
    base = PursuitEnv(num_envs=4, max_steps=20, seed=0)
    policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
    env = _env(base, policy)
    counter = StepCounter(env)
    batch = EpisodeCollector(env, policy, episode_limit=20).rollout()
    lengths = batch.get(PADDING_MASK).sum(-1)
    assert counter.steps == batch.shape[1] == int(lengths.max())
    ends = batch.get(("next", "done"))[..., 0]
    assert ends[torch.arange(4), lengths - 1].all()  # each row's mask ends at its first done


def test_sync_every_gives_the_same_batch():
    def collect(sync_every: int) -> TensorDictBase:
        torch.manual_seed(0)
        base = _pursuit()
        policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
        torch.manual_seed(1)
        return EpisodeCollector(_env(base, policy), policy, sync_every=sync_every).rollout()

    one, four = collect(1), collect(4)
    assert one.shape == four.shape
    assert all(torch.equal(one.get(k), four.get(k)) for k in one.keys(True, True))


def test_unfinished_episodes_are_left_out_and_an_empty_batch_is_refused():
    torch.manual_seed(0)
    base = PursuitEnv(num_envs=64, max_steps=20, seed=3)
    policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
    with pytest.warns(UserWarning, match="episode_limit=6 is shorter than the env's 20: episodes longer"):
        collector = EpisodeCollector(_env(base, policy), policy, episode_limit=6)
    batch = collector.rollout()
    assert 0 < batch.shape[0] < 64  # some games end within 6 steps, most do not
    assert batch.get(("next", "done"))[..., 0].any(-1).all()
    few = PursuitEnv(num_envs=2, max_steps=20, seed=3)  # neither game can end on its first step
    assert (few.reset().get(("agents", "observation")).abs() > 0.1).any(-1).all()
    few.set_seed(3)  # the collector's reset replays these games
    with pytest.raises(RuntimeError, match="no episode ended within episode_limit=1 steps"), pytest.warns(UserWarning):
        next(iter(EpisodeCollector(_env(few, policy), policy, episode_limit=1)))


def test_episode_limit_comes_from_the_env_or_fails_in_one_line():
    base = _pursuit()
    policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
    assert EpisodeCollector(_env(base, policy), policy).episode_limit == 20
    with pytest.raises(ValueError, match="episode_limit=0"):
        EpisodeCollector(_env(base, policy), policy, episode_limit=0)


def test_frames_count_only_kept_steps_and_stop_at_total_frames():
    torch.manual_seed(0)
    base = _pursuit()
    policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
    collector = EpisodeCollector(_env(base, policy), policy, total_frames=300)
    kept = [int(batch.get(PADDING_MASK).sum()) for batch in collector]
    assert collector.frames == sum(kept) >= 300 > sum(kept[:-1])


def test_postproc_runs_on_every_handed_out_batch():
    base = _pursuit()
    policy = make_mlp_policy(base.n_agents, 2, base.n_actions, action_mask_key=("agents", "action_mask"))
    seen = []

    def mark(batch):
        seen.append(batch.shape)
        return batch.set("marked", torch.ones(batch.shape))

    collector = EpisodeCollector(_env(base, policy), policy, total_frames=60, postproc=mark)
    batches = list(collector)
    assert len(seen) == len(batches) > 0 and all(b.get("marked").all() for b in batches)
