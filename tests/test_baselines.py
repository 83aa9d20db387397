"""COMA, IQL, QMIX and MAPPO: hand-checked losses, masks, replay, targets and schedules, on the trainer's pipeline."""
from __future__ import annotations

import copy
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import hand_td_lambda
from hydra import compose, initialize_config_dir
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MaskedCategorical, ProbabilisticActor, set_recurrent_mode
from torchrl.objectives import HardUpdate

from torchrl_liir.algorithms import OptimizerGroup, Recipe
from torchrl_liir.algorithms.feeds import EpisodeReplayFeed
from torchrl_liir.modules import ExplorationFloor, make_egreedy_actor, make_mlp_q_network
from torchrl_liir.objectives import COMALoss, counterfactual_baseline
from torchrl_liir.optimizer_steps import guarded_step
from torchrl_liir.trainers import ConfigError, EpisodeTrainer, train
from torchrl_liir.trainers import population as population_module

ROOT = Path(__file__).resolve().parents[1]
MASK = ("collector", "mask")
PURSUIT_LIMIT = 20  # torchrl_liir/conf/task/pursuit.yaml's episode_limit
OVERRIDES = {
    "coma": ["algo.target_update_interval=2"],
    "qmix": ["algo.buffer_episodes=200", "algo.batch_episodes=2", "algo.steps_per_batch=1",
             "algo.target_update_interval=2", "algo.eps_anneal_frames=2000"],
    "mappo": ["algo.ppo_epochs=2", "algo.minibatches=3"],
}
OVERRIDES["iql"] = OVERRIDES["qmix"]
RUNS = [("coma", "mlp"), ("coma", "gru"), ("qmix", "mlp"), ("qmix", "gru"), ("iql", "mlp"), ("iql", "gru"),
        ("mappo", "mlp"), ("mappo", "gru")]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["experiment.progress_bar=false", *overrides])


def targets_equal(loss) -> bool | None:
    """Whether every target parameter equals its online one (``None``: the loss keeps no target)."""
    pairs = [(getattr(loss, name[len("target_"):]), target) for name, target in loss.named_children()
             if name.startswith("target_") and name.endswith("_params")]
    if not pairs:
        return None
    return all(torch.equal(value.data, target.get(key).data)
               for online, target in pairs for key, value in online.items(True, True))


@dataclass
class Run:
    """A short training run and what its trainer fed to the recipe, batch by batch."""

    recipe: Recipe | None = None
    batches: list = field(default_factory=list)          # padded episode batches the trainer collected
    inputs: list = field(default_factory=list)           # the inputs of the batch's optimiser steps
    states: list = field(default_factory=list)           # loss.state_dict() before the batch's first optimiser step
    target_equal: list = field(default_factory=list)     # targets_equal after each batch
    summary: dict = field(default_factory=dict)
    run_dir: Path | None = None


_RUNS: dict[tuple[str, ...], Run] = {}


def record(trainer: EpisodeTrainer, run: Run) -> None:
    """Registers ops that record each batch into ``run``; registered last, they run after the recipe's own."""
    loss = trainer.recipe.loss

    def batch_start(batch: TensorDict) -> None:
        run.batches.append(batch.clone())
        run.states.append(copy.deepcopy(loss.state_dict()))
        run.inputs.append([])

    def step_input(sub_batch: TensorDict) -> TensorDict:
        run.inputs[-1].append(sub_batch.clone())
        return sub_batch

    trainer.register_op("pre_steps_log", batch_start)
    trainer.register_op("process_optim_batch", step_input)  # chained after the feed's: each step's input
    trainer.register_op("post_steps", lambda: run.target_equal.append(targets_equal(loss)))


def recorded_run(algo: str, policy: str, tmp_path_factory, *extra: str) -> Run:
    """Trains ``algo`` with ``policy`` (and ``extra`` overrides) for ~600 pursuit frames through ``train`` (once
    per module), recording."""
    key = (algo, policy, *extra)
    if key in _RUNS:
        return _RUNS[key]
    run = Run(run_dir=tmp_path_factory.mktemp(f"{algo}_{policy}"))

    build_trainer = population_module.build_trainer

    def recording_trainer(cfg, run_dir, experiment) -> EpisodeTrainer:
        trainer = build_trainer(cfg, run_dir, experiment)
        run.recipe = trainer.recipe
        record(trainer, run)
        return trainer

    cfg = config(f"algo={algo}", f"model.policy={policy}", "experiment.total_frames=600", "task.num_envs=8",
                 "experiment.evaluation_episodes=8", *OVERRIDES[algo], *extra)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(population_module, "build_trainer", recording_trainer)
        run.summary = train(cfg, run.run_dir)
    _RUNS[key] = run
    return run


def valid_steps(batch: TensorDict) -> TensorDict:
    return batch[batch.get(MASK)]


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("algo, policy", RUNS)
def test_short_run_writes_its_run_directory(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)
    assert run.summary["updates"] >= 3 and len(run.batches) == run.summary["updates"]
    assert (run.run_dir / "config.yaml").exists() and (run.run_dir / "summary.json").exists()
    assert list((run.run_dir / "checkpoints").glob("checkpoint-*"))
    with (run.run_dir / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == run.summary["updates"]
    terms = ["loss_value"] if algo in ("qmix", "iql") else ["loss_objective", "loss_critic", "loss_entropy"]
    for name in ["episode_return", *terms]:
        assert math.isfinite(float(rows[-1][name]))
    with (run.run_dir / "test.csv").open(newline="") as f:
        tests = list(csv.DictReader(f))
    assert math.isfinite(run.summary["test"]["test_return"])
    assert float(tests[-1]["test_return"]) == pytest.approx(run.summary["test"]["test_return"])
    assert set(run.recipe.optimizers) == ({"policy"} if algo in ("qmix", "iql") else {"policy", "critic"})


# ---------------------------------------------------------------- COMA


class TableCritic(nn.Module):
    """Two agents: Q_i(s, (u_{-i}, ·)) = table[i, u_{-i}], whatever the state."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.table[torch.arange(2), action.flip(-1)]


def table_coma(table: torch.Tensor, gamma: float = 0.9, lmbda: float = 0.5,
               floor: ExplorationFloor | None = None) -> COMALoss:
    """COMA with π_i = softmax(observation_i) (masked, mixed with uniform under ``floor``) and a table critic."""
    logits = TensorDictModule(nn.Identity() if floor is None else floor, [("agents", "observation")],
                              [("agents", "logits")])
    actor = ProbabilisticActor(logits, in_keys={"logits": ("agents", "logits"), "mask": ("agents", "action_mask")},
                               out_keys=[("agents", "action")], distribution_class=MaskedCategorical)
    critic = TensorDictModule(TableCritic(table), ["state", ("agents", "action")], [("agents", "action_value")])
    loss = COMALoss(actor, critic, 2, gamma=gamma, lmbda=lmbda)
    HardUpdate(loss, value_network_update_interval=1)
    return loss


def episode(probs, masks, actions, rewards, terminated: bool, next_mask=None) -> TensorDict:
    """One episode ``[1, T]`` of two agents with 3 actions; it ends (done) at its last step."""
    probs, masks = torch.tensor(probs), torch.tensor(masks)
    steps = probs.shape[0]
    done = torch.zeros(1, steps, 1, dtype=torch.bool)
    done[:, -1] = True
    nxt_mask = masks.roll(-1, 0)
    if next_mask is not None:
        nxt_mask[-1] = torch.tensor(next_mask)
    return TensorDict({
        "agents": {"observation": probs.log().unsqueeze(0), "action_mask": masks.unsqueeze(0),
                   "action": torch.tensor(actions).unsqueeze(0)},
        "state": torch.zeros(1, steps, 1),
        "next": {"agents": {"observation": torch.zeros(1, steps, 2, 3), "action_mask": nxt_mask.unsqueeze(0)},
                 "state": torch.zeros(1, steps, 1), "reward": torch.tensor(rewards).reshape(1, steps, 1),
                 "done": done, "terminated": done & terminated},
    }, [1, steps])


TABLE = torch.tensor([[[1.0, 2.0, 4.0], [0.0, 1.0, 0.0], [5.0, 0.0, 1.0]],
                      [[-2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [3.0, -1.0, 0.0]]])


def test_counterfactual_baseline_is_the_expected_q_under_pi():
    q, pi = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.5, 0.3, 0.2])
    torch.testing.assert_close(counterfactual_baseline(q, pi), torch.tensor(1.9))
    masked = counterfactual_baseline(torch.tensor([1.0, 1e6, 4.0]), torch.tensor([5 / 7, 0.0, 2 / 7]),
                                     torch.tensor([True, False, True]))
    torch.testing.assert_close(masked, torch.tensor(13 / 7))


def test_coma_advantage_and_critic_target_by_hand():
    # u = (2, 0): agent 0 sees Q_0(u_1=0, ·) = [1, 2, 4], agent 1 sees Q_1(u_0=2, ·) = [3, -1, 0].
    probs = [[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]]
    batch = episode(probs, [[[True] * 3] * 2], [[2, 0]], [1.0], terminated=True)
    out = table_coma(TABLE.clone())(batch)
    a0, a1 = 4 - (0.5 * 1 + 0.3 * 2 + 0.2 * 4), 3 - (0.1 * 3 + 0.6 * -1 + 0.3 * 0)
    torch.testing.assert_close(out["advantage"], torch.tensor((a0 + a1) / 2))
    expected = -(math.log(0.2) * a0 + math.log(0.1) * a1) / 2
    torch.testing.assert_close(out["loss_objective"], torch.tensor(expected))
    # Terminated after one step: the TD(λ) target is the reward, 1, for both agents.
    torch.testing.assert_close(out["loss_critic"], torch.tensor(((4 - 1) ** 2 + (3 - 1) ** 2) / 2))


def test_coma_trains_on_the_policy_mixed_with_uniform():
    """pymarl's COMA: advantage, baseline and log-probability all of π' = (1 − ε)·π + ε/3."""
    eps = 0.4
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    mixed = (1 - eps) * probs + eps / 3
    batch = episode(probs.unsqueeze(0).tolist(), [[[True] * 3] * 2], [[2, 0]], [1.0], terminated=True)
    out = table_coma(TABLE.clone(), floor=ExplorationFloor(eps))(batch)
    q0, q1 = TABLE[0, 0], TABLE[1, 2]  # Q_0(u_1 = 0, ·) and Q_1(u_0 = 2, ·)
    a0, a1 = q0[2] - (mixed[0] * q0).sum(), q1[0] - (mixed[1] * q1).sum()
    torch.testing.assert_close(out["advantage"], (a0 + a1) / 2)
    expected = -(mixed[0, 2].log() * a0 + mixed[1, 0].log() * a1) / 2
    torch.testing.assert_close(out["loss_objective"], expected)


def test_coma_masked_actions_never_enter_the_baseline():
    probs = [[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]]
    masks = [[[True, False, True], [True, True, True]]]
    outs = []
    for masked_q in (1e6, -1e6):
        table = TABLE.clone()
        table[0, 0, 1] = masked_q
        outs.append(table_coma(table)(episode(probs, masks, [[2, 0]], [1.0], terminated=True)))
    a0 = 4 - (0.5 / 0.7 * 1 + 0.2 / 0.7 * 4)  # π_0 renormalised over the available actions 0 and 2
    a1 = 3 - (0.1 * 3 + 0.6 * -1 + 0.3 * 0)
    for out in outs:
        torch.testing.assert_close(out["advantage"], torch.tensor((a0 + a1) / 2))
        expected = -(math.log(0.2 / 0.7) * a0 + math.log(0.1) * a1) / 2
        torch.testing.assert_close(out["loss_objective"], torch.tensor(expected))


@pytest.mark.parametrize("terminated", [True, False])
def test_coma_bootstraps_where_an_episode_is_cut_not_where_it_terminates(terminated):
    gamma, lmbda = 0.9, 0.5
    probs = [[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]], [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]]
    # After the last step only action 0 is available: the sampled joint action is (0, 0), π' = one-hot(0).
    batch = episode(probs, [[[True] * 3] * 2] * 2, [[2, 0], [1, 1]], [1.0, 2.0], terminated=terminated,
                    next_mask=[[True, False, False]] * 2)
    out = table_coma(TABLE.clone(), gamma, lmbda)(batch)
    taken = torch.stack([TABLE[[0, 1], [0, 2], [2, 0]], TABLE[[0, 1], [1, 1], [1, 1]]])  # [t, agent]
    last = torch.full((2,), 2.0) + (0.0 if terminated else gamma * TABLE[[0, 1], [0, 0], [0, 0]])
    first = 1.0 + gamma * ((1 - lmbda) * taken[1] + lmbda * last)
    expected = ((taken - torch.stack([first, last])) ** 2).mean()
    torch.testing.assert_close(out["loss_critic"], expected)


def hand_coma_targets(loss: COMALoss, batch: TensorDict) -> torch.Tensor:
    """TD(λ) targets ``[B, T, n_agents, 1]`` of the taken joint actions under the target critic, by the textbook
    recursion; pursuit episodes all terminate, so nothing is bootstrapped past an episode's end."""
    critic = loss.critic_network
    nxt = batch["next"]
    assert nxt["terminated"][batch[MASK]].sum() == batch.shape[0]  # pursuit episodes all terminate
    with torch.no_grad(), loss.target_critic_network_params.to_module(critic):
        q_target = critic(batch.select(*critic.in_keys).copy())["agents", "action_value"]
    taken_target = q_target.gather(-1, batch["agents", "action"].unsqueeze(-1))
    expand = (*taken_target.shape[:-1], 1)
    next_value = torch.cat([taken_target[:, 1:], torch.zeros_like(taken_target[:, :1])], dim=1)
    done, terminated = (nxt[key].unsqueeze(-2).expand(expand) for key in ("done", "terminated"))
    targets, _ = hand_td_lambda(nxt["reward"].unsqueeze(-2).expand(expand), taken_target, next_value, done,
                                terminated, loss.gamma, loss.lmbda)
    return targets


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_coma_loss_on_a_real_rollout_matches_hand_td_lambda(tmp_path_factory, policy):
    run = recorded_run("coma", policy, tmp_path_factory)
    loss, batch = run.recipe.loss, run.batches[1]
    loss.load_state_dict(run.states[1])
    out = loss(batch)
    actor, critic, n_agents = loss.actor_network, loss.critic_network, loss.n_agents

    action = batch["agents", "action"].unsqueeze(-1)
    with torch.no_grad():
        q = critic(batch.select(*critic.in_keys).copy())["agents", "action_value"]
        with set_recurrent_mode(True):
            probs = actor.get_dist(batch.copy()).probs
    taken = q.gather(-1, action)
    w = batch[MASK].unsqueeze(-1).expand(-1, -1, n_agents).to(q.dtype)
    advantage = taken[..., 0] - (probs * q).sum(-1)
    torch.testing.assert_close(out["advantage"], (w * advantage).sum() / w.sum())

    ret = hand_coma_targets(loss, batch)
    torch.testing.assert_close(out["loss_critic"], (w * (taken - ret)[..., 0] ** 2).sum() / w.sum())

    actor_params, critic_params = list(actor.parameters()), list(critic.parameters())
    grads = torch.autograd.grad(out["loss_objective"], actor_params + critic_params, allow_unused=True,
                                retain_graph=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads[:len(actor_params)])
    assert all(g is None for g in grads[len(actor_params):])
    grads = torch.autograd.grad(out["loss_critic"], actor_params + critic_params, allow_unused=True)
    assert all(g is None for g in grads[:len(actor_params)])
    assert all(g is not None for g in grads[len(actor_params):])


def test_coma_critic_time_steps_are_sgd_steps_last_to_first_by_hand(tmp_path_factory):
    """pymarl's COMA critic training: one SGD step per time step, last to first, each seeing the previous ones."""
    run = recorded_run("coma", "mlp", tmp_path_factory)
    batch, lr = run.batches[1], 0.05
    loss = copy.deepcopy(run.recipe.loss)
    loss.load_state_dict(run.states[1])
    critic, n_agents = loss.critic_network, loss.n_agents
    with loss.critic_network_params.to_module(critic):
        hand = copy.deepcopy(critic)  # a plain module with its own copy of the online parameters
    action = batch["agents", "action"].unsqueeze(-1)
    targets = hand_coma_targets(loss, batch)
    w = batch[MASK].unsqueeze(-1).expand(-1, -1, n_agents).to(targets.dtype)
    hand_losses = []
    for t in reversed(range(batch.shape[1])):
        if w[:, t].sum() == 0:
            continue
        q = hand(batch[:, t].select(*hand.in_keys).copy())["agents", "action_value"]
        error = (q.gather(-1, action[:, t]) - targets[:, t])[..., 0]
        step_loss = (w[:, t] * error ** 2).sum() / w[:, t].sum()
        hand_losses.append(step_loss.detach())
        grads = torch.autograd.grad(step_loss, list(hand.parameters()))
        with torch.no_grad():
            for p, g in zip(hand.parameters(), grads):
                p -= lr * g
    assert len(hand_losses) == int(batch[MASK].any(0).sum()) > 1

    params = list(loss.critic_network_params.values(True, True))
    group = OptimizerGroup(torch.optim.SGD(params, lr=lr), max_grad_norm=None)
    losses = []
    for step_loss in loss.critic_time_step_losses(batch):
        guarded_step({"critic": group}, {"loss_critic": step_loss}, update=1)
        losses.append(step_loss.detach())
    torch.testing.assert_close(torch.stack(losses), torch.stack(hand_losses))
    for name, expected in hand.named_parameters():
        torch.testing.assert_close(loss.critic_network_params.get(tuple(name.split("."))).data, expected.data)


def test_coma_time_step_run_steps_the_critic_once_per_valid_time_step(tmp_path_factory):
    run = recorded_run("coma", "mlp", tmp_path_factory, "algo.critic_updates=time_step")
    recipe = run.recipe
    assert set(recipe.optimizers) == {"policy"}  # the actor's step leaves the critic out
    critic = recipe.hooks["critic_time_steps"].critic.optimizer
    steps = {int(state["step"]) for state in critic.state.values()}
    assert steps == {sum(int(batch[MASK].any(0).sum()) for batch in run.batches)}
    out = recipe.loss(run.batches[-1])
    assert not out["loss_critic"].requires_grad and out["loss_objective"].requires_grad


# ---------------------------------------------------------------- targets


@pytest.mark.parametrize("algo, policy", [r for r in RUNS if r[0] != "mappo"])
def test_target_differs_after_an_update_and_equals_after_the_hard_copy(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)
    # One optimiser step per batch; a hard copy every 2 optimiser steps (IQL, QMIX) or batches (COMA).
    assert run.target_equal == [False, True] * (len(run.target_equal) // 2) + [False] * (len(run.target_equal) % 2)


# ---------------------------------------------------------------- IQL / QMIX


def test_egreedy_never_picks_a_masked_action():
    torch.manual_seed(0)
    q_network = make_mlp_q_network(3, 4, 5, num_cells=(8,))
    with torch.no_grad():
        q_network[0].module[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 100.0]))  # action 4 looks best
    mask = torch.rand(256, 3, 5) > 0.5
    mask[..., 4] = False
    mask[..., 0] |= ~mask.any(-1)
    td = TensorDict({"agents": {"observation": torch.randn(256, 3, 4), "action_mask": mask}}, [256])
    allowed = lambda action: mask.gather(-1, action.unsqueeze(-1)).all()  # noqa: E731
    explore = make_egreedy_actor(q_network, 3, 5, eps_init=1.0, eps_end=1.0, annealing_num_steps=1)
    with set_exploration_type(ExplorationType.RANDOM):
        action = explore(td.clone())["agents", "action"]
    assert allowed(action) and len(action.unique()) == 4  # random, over every available action
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        greedy = explore(td.clone())["agents", "action"]
    assert allowed(greedy)
    values = q_network(td.clone())["agents", "action_value"]
    torch.testing.assert_close(greedy, values.masked_fill(~mask, -math.inf).argmax(-1))


@pytest.mark.parametrize("algo, policy", [r for r in RUNS if r[0] in ("qmix", "iql")])
def test_transition_replay_holds_exactly_the_valid_steps_and_their_available_actions(tmp_path_factory, algo,
                                                                                    policy):
    run = recorded_run(algo, policy, tmp_path_factory, "algo.replay=transitions")
    steps = torch.cat([valid_steps(b) for b in run.batches])
    buffer = run.recipe.feed.buffer
    assert len(buffer) == steps.shape[0] == run.summary["frames"]
    stored = buffer.storage[torch.arange(len(buffer))]
    for key in [("agents", "observation"), ("agents", "action"), ("next", "state"), ("next", "reward")]:
        torch.testing.assert_close(stored[key], steps[key])
    assert stored["agents", "action_mask"].gather(-1, stored["agents", "action"].unsqueeze(-1)).all()
    # Every replayed sample: 2 episodes' worth (OVERRIDES) of Pursuit's 20-step limit, whatever their lengths.
    assert {sample.shape[0] for inputs in run.inputs for sample in inputs} == {2 * PURSUIT_LIMIT}


@pytest.mark.parametrize("algo, policy", [r for r in RUNS if r[0] in ("qmix", "iql")])
def test_episode_replay_holds_whole_episodes_and_replays_their_valid_steps(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)  # torchrl_liir/conf/algo's default: algo.replay=episodes
    buffer = run.recipe.feed.buffer
    lengths = torch.cat([batch.get(MASK).sum(-1) for batch in run.batches])
    assert len(buffer) == lengths.shape[0] and int(lengths.sum()) == run.summary["frames"]
    stored = buffer.storage[torch.arange(len(buffer))]
    assert stored.shape[1] == PURSUIT_LIMIT
    assert torch.equal(stored.get(MASK), torch.arange(PURSUIT_LIMIT) < lengths.unsqueeze(-1))
    steps, stored_steps = torch.cat([valid_steps(b) for b in run.batches]), stored[stored.get(MASK)]
    for key in [("agents", "observation"), ("agents", "action"), ("next", "state"), ("next", "reward")]:
        torch.testing.assert_close(stored_steps[key], steps[key])
    # Each optimiser step replays valid steps only, as many as two stored episodes (OVERRIDES) hold.
    for batch_index, inputs in enumerate(run.inputs):
        stored_so_far = lengths[:sum(b.shape[0] for b in run.batches[:batch_index + 1])]
        pair_lengths = set((stored_so_far.unsqueeze(0) + stored_so_far.unsqueeze(1)).flatten().tolist())
        for sample in inputs:
            assert sample.get(MASK).all() and sample.shape[0] in pair_lengths
    eps = run.recipe.actor[-1].eps
    torch.testing.assert_close(eps, torch.tensor(1.0 - 0.95 * run.summary["frames"] / 2000), atol=1e-4, rtol=0)


def test_episode_replay_feed_pads_to_the_limit_replays_valid_steps_and_drops_the_oldest_episode():
    lengths = torch.tensor([2, 4, 1])
    batch = TensorDict({"x": torch.arange(12.0).reshape(3, 4), MASK: torch.arange(4) < lengths.unsqueeze(-1),
                        "unused": torch.zeros(3, 4)}, [3, 4])
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(4), sampler=SamplerWithoutReplacement(), batch_size=3)
    feed = EpisodeReplayFeed(buffer, ["x"], steps=1, episode_limit=6)
    feed.extend(batch)
    stored = buffer.storage[torch.arange(3)]
    assert stored.shape == (3, 6) and "unused" not in stored.keys()
    assert stored.get(MASK).sum(-1).tolist() == [2, 4, 1] and not stored.get(MASK)[:, 4:].any()
    # The sample is all three episodes: their valid steps 0, 1 | 4, 5, 6, 7 | 8, and no padding.
    assert sorted(feed.sample(batch)["x"].tolist()) == [0, 1, 4, 5, 6, 7, 8]
    later = batch[1:].clone()
    later["x"] += 100
    feed.extend(later)  # a capacity of 4 episodes: the episode of length 2 goes
    kept = buffer.storage[torch.arange(4)]
    assert sorted(kept[kept.get(MASK)]["x"].tolist()) == [4, 5, 6, 7, 8, 104, 105, 106, 107, 108]
    restored = EpisodeReplayFeed(TensorDictReplayBuffer(storage=LazyTensorStorage(4), batch_size=3), ["x"],
                                 steps=1, episode_limit=6)
    state = feed.state_dict()
    # The valid steps only; row 0, the oldest, now holds the newest episode.
    assert state["steps"].shape == (10,) and state["lengths"].tolist() == [1, 4, 1, 4]
    restored.load_state_dict(state)
    back = restored.buffer.storage[torch.arange(4)]
    assert torch.equal(back.get(MASK), kept.get(MASK))
    assert torch.equal(back[back.get(MASK)]["x"], kept[kept.get(MASK)]["x"])  # the padding's content is not kept
    assert restored.buffer.writer.state_dict() == buffer.writer.state_dict()


@pytest.mark.parametrize("algo, policy", [r for r in RUNS if r[0] in ("qmix", "iql")])
def test_q_network_replays_the_hidden_state_stored_at_collection(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)
    run.recipe.loss.load_state_dict(run.states[0])  # the parameters that collected batch 0
    steps = valid_steps(run.batches[0])
    steps = steps[torch.randperm(steps.shape[0], generator=torch.Generator().manual_seed(0))]  # as replayed
    q_network = run.recipe.actor[0]
    with torch.no_grad(), set_recurrent_mode(True):  # as inside a TorchRL loss
        values = q_network(steps.select(*q_network.in_keys).copy())["agents", "action_value"]
    torch.testing.assert_close(values, steps["agents", "action_value"])


def _hand_q_loss(run: Run, sample: TensorDict) -> torch.Tensor:
    """The 1-step TD loss, the target computed without gradient from the online pass's next hidden state."""
    loss, q_network = run.recipe.loss, run.recipe.actor[0]
    online = q_network(sample.copy())
    taken = online["agents", "action_value"].gather(-1, sample["agents", "action"].unsqueeze(-1))
    nxt = online["next"]
    target_name = "target_value_network_params" if hasattr(loss, "value_network_params") else \
        "target_local_value_network_params"
    with torch.no_grad(), getattr(loss, target_name).to_module(q_network):
        best = q_network(nxt.copy())["agents", "chosen_action_value"]
    if hasattr(loss, "mixer_network"):
        mixer = loss.mixer_network
        mix = lambda q, td: mixer(TensorDict({("agents", "chosen_action_value"): q,  # noqa: E731
                                              "state": td["state"]}, td.batch_size))["chosen_action_value"]
        taken = mix(taken, sample)
        with torch.no_grad(), loss.target_mixer_network_params.to_module(mixer):
            best = mix(best, nxt)
        reward, terminated = nxt["reward"], nxt["terminated"]
    else:
        expand = lambda x: x.unsqueeze(-2).expand_as(taken)  # noqa: E731
        reward, terminated = expand(nxt["reward"]), expand(nxt["terminated"])
    return ((taken - (reward + 0.99 * (~terminated) * best)) ** 2).mean()  # 0.99: torchrl_liir/conf/algo's discount


@pytest.mark.parametrize("algo, policy", [r for r in RUNS if r[0] in ("qmix", "iql")])
def test_q_loss_is_the_td_error_of_the_team_reward_by_hand(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)
    loss = run.recipe.loss
    loss.load_state_dict(run.states[2])
    sample = run.inputs[2][0]
    out = loss(sample.clone())
    assert set(out.keys()) == {"loss_value"}
    expected = _hand_q_loss(run, sample)
    torch.testing.assert_close(out["loss_value"], expected)
    params = run.recipe.optimizers["policy"].params
    grads = torch.autograd.grad(out["loss_value"], params, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # Semi-gradient: nothing flows through the target, the GRU's next hidden state included.
    for grad, hand in zip(grads, torch.autograd.grad(expected, params)):
        torch.testing.assert_close(grad, hand)


@pytest.mark.parametrize("algo, policy", [("coma", "gru"), ("qmix", "mlp"), ("iql", "gru"), ("mappo", "mlp")])
def test_every_loss_refuses_a_non_finite_reward_and_an_empty_batch_in_one_line(tmp_path_factory, algo, policy):
    run = recorded_run(algo, policy, tmp_path_factory)
    loss, sample = run.recipe.loss, run.inputs[1][0].clone()
    assert loss.check_inputs is False  # the trainer checks every batch as it is collected
    loss.check_inputs = True
    name = type(loss).__name__
    reward = sample["next", "reward"].clone()
    reward.view(-1)[0] = float("nan")  # the first step of the first episode: always played
    sample["next", "reward"] = reward
    with pytest.raises(ValueError, match=rf"^{name}: \('next', 'reward'\)=nan at index \[0(, 0)*\] of the batch: "
                                         "the losses and gradients would all be NaN$"):
        loss(sample)
    with pytest.raises(ValueError, match=rf"^{name}: the batch is empty \(batch_size \[0"):
        loss(sample[:0])


# ---------------------------------------------------------------- MAPPO


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_mappo_advantage_is_gae_over_each_padded_episode(tmp_path_factory, policy):
    run = recorded_run("mappo", policy, tmp_path_factory)
    loss, batch = run.recipe.loss, run.batches[1].clone()
    loss.load_state_dict(run.states[1])
    loss.add_advantage(batch)
    critic = loss.critic_network
    with torch.no_grad():
        value = critic(batch.select(*critic.in_keys).copy())["agents", "state_value"]
        next_value = critic(batch["next"].select(*critic.in_keys).copy())["agents", "state_value"]
    nxt = batch["next"]
    expand = lambda x: x.unsqueeze(-2).expand_as(value)  # noqa: E731
    _, advantage = hand_td_lambda(expand(nxt["reward"]), value, next_value, expand(nxt["done"]),
                                  expand(nxt["terminated"]), 0.99, 0.95)
    valid = batch[MASK]
    torch.testing.assert_close(batch["advantage"][valid], advantage[valid])


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_mappo_epochs_shuffle_the_valid_steps_and_replay_collection_log_probs(tmp_path_factory, policy):
    run = recorded_run("mappo", policy, tmp_path_factory)
    for batch, inputs in zip(run.batches, run.inputs):
        assert len(inputs) == 2 * 3
        expected = valid_steps(batch)["agents", "action_log_prob"].flatten().sort().values
        for epoch in (inputs[:3], inputs[3:]):
            seen = torch.cat([mb["agents", "action_log_prob"] for mb in epoch]).flatten().sort().values
            torch.testing.assert_close(seen, expected)
    loss = run.recipe.loss
    loss.load_state_dict(run.states[0])  # the parameters that collected batch 0
    first = run.inputs[0][0]
    with torch.no_grad(), set_recurrent_mode(True):  # as inside a TorchRL loss
        log_prob, _, _ = loss._get_cur_log_prob(first.copy())
    torch.testing.assert_close(log_prob, first["agents", "action_log_prob"])


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("algo, override, message", [
    ("qmix", "algo.eps_end=1.5", "algo.eps_end=1.5"),
    ("iql", "algo.eps_end=0.5", "algo.eps_end=0.5: must be <= algo.eps_start"),
    ("qmix", "algo.steps_per_batch=0", "algo.steps_per_batch=0"),
    ("iql", "algo.buffer_episodes=2.5", "algo.buffer_episodes=2.5"),
    ("qmix", "algo.mixing_embed_dim=0", "algo.mixing_embed_dim=0"),
    ("coma", "algo.target_update_interval=0", "algo.target_update_interval=0"),
    ("coma", "algo.lr_critic=-1", "algo.lr_critic=-1"),
    ("mappo", "algo.ppo_epochs=0", "algo.ppo_epochs=0"),
    ("mappo", "algo.clip_epsilon=0", "algo.clip_epsilon=0"),
    ("mappo", "algo.policy_optimizer=lbfgs", "algo.policy_optimizer='lbfgs'"),
])
def test_bad_baseline_config_value_fails_at_once(tmp_path, algo, override, message):
    overrides = [f"algo={algo}", override]
    if override == "algo.eps_end=0.5":
        overrides.append("algo.eps_start=0.2")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        train(config(*overrides), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_liir_models_the_policy_optimiser_it_is_given(tmp_path):
    from torchrl_liir.trainers.trainer import build_recipe

    recipe = build_recipe(config("algo.policy_optimizer=adam"), torch.device("cpu"))
    policy = recipe.optimizers["policy"].optimizer
    assert type(policy) is torch.optim.Adam and recipe.loss.inner_step.optimizer is policy
