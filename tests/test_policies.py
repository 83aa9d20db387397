"""Parameter-shared MLP and GRU policies with action masks, and the multi-agent GRU."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase, InitTracker, TensorDictPrimer, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import set_recurrent_mode

from torchrl_liir.modules import MultiAgentGRU, make_gru_policy, make_mlp_policy, policy_primer
from torchrl_liir.objectives.meta_gradient import jvp as dual_jvp

N, OBS, ACT = 3, 4, 5
HIDDEN = ("agents", "rnn_hidden")
NEXT_HIDDEN = ("next", "agents", "rnn_hidden")


def make(kind: str) -> TensorDictModuleBase:
    torch.manual_seed(0)
    if kind == "gru":
        return make_gru_policy(N, OBS, ACT, hidden_size=8, action_mask_key=("agents", "action_mask"))
    return make_mlp_policy(N, OBS, ACT, num_cells=(16,), action_mask_key=("agents", "action_mask"))


def batch(shape: list[int], one_allowed: bool = False, seed: int = 0) -> TensorDict:
    """Random observations; random masks (action 0 always allowed), or only action 3 allowed."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(*shape, N, OBS, generator=g, dtype=torch.get_default_dtype())
    if one_allowed:
        mask = torch.zeros(*shape, N, ACT, dtype=torch.bool)
        mask[..., 3] = True
    else:
        mask = torch.rand(*shape, N, ACT, generator=g) > 0.4
        mask[..., 0] = True
    is_init = torch.zeros(*shape, 1, dtype=torch.bool)
    is_init[..., 0, :] = True
    agents = TensorDict({"observation": obs, "action_mask": mask}, [*shape, N])
    return TensorDict({"agents": agents, "is_init": is_init}, shape)


class LogProb(nn.Module):
    """log π(u|τ) of the stored actions over a ``[B, T]`` batch, as a module for ``functional_call``."""

    def __init__(self, actor: TensorDictModuleBase) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, td: TensorDictBase) -> torch.Tensor:
        with set_recurrent_mode(True):
            return self.actor.get_dist(td.copy()).log_prob(td["agents", "action"])


@pytest.mark.parametrize("kind", ["mlp", "gru"])
@pytest.mark.parametrize("shape", [[6], [6, 7]], ids=["step", "sequence"])
def test_shapes_and_single_allowed_action(kind, shape):
    actor = make(kind)
    td = batch(shape, one_allowed=True)
    with set_exploration_type(ExplorationType.RANDOM), set_recurrent_mode(len(shape) == 2):
        actor(td)
    assert td["agents", "action"].shape == (*shape, N)
    assert not td["agents", "action"].is_floating_point()
    assert (td["agents", "action"] == 3).all()
    torch.testing.assert_close(td["agents", "action_log_prob"], torch.zeros(*shape, N))
    if kind == "gru":
        assert td[NEXT_HIDDEN].shape == (*shape, N, 8)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_get_dist_log_prob_over_sequences(kind):
    actor = make(kind)
    td = batch([4, 6])
    with set_recurrent_mode(True):
        dist = actor.get_dist(td.copy())
    log_prob = torch.stack([dist.log_prob(torch.full((4, 6, N), a)) for a in range(ACT)])
    assert log_prob.shape == (ACT, 4, 6, N)
    mask = td["agents", "action_mask"].movedim(-1, 0)
    assert torch.isneginf(log_prob[~mask]).all() and torch.isfinite(log_prob[mask]).all()
    torch.testing.assert_close(log_prob.exp().sum(0), torch.ones(4, 6, N))
    with set_exploration_type(ExplorationType.RANDOM), set_recurrent_mode(True):
        actor(td)
    taken = LogProb(actor)(td)
    assert taken.shape == (4, 6, N)
    torch.testing.assert_close(taken, td["agents", "action_log_prob"])
    taken.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in actor.parameters())


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_parameters_are_shared_across_agents(kind):
    actor = make(kind)
    td = batch([2, 5])
    obs = td["agents", "observation"]
    obs[..., 1, :] = obs[..., 0, :]
    td["agents", "action_mask"] = torch.ones(2, 5, N, ACT, dtype=torch.bool)
    with set_recurrent_mode(True):
        logits = actor.get_dist(td).logits
    torch.testing.assert_close(logits[..., 0, :], logits[..., 1, :])
    assert not torch.isclose(logits[..., 0, :], logits[..., 2, :]).all(-1).any()


def test_gru_cell_equals_torch_gru_cell(float64):
    gru = MultiAgentGRU(4, 6, N, in_key="x")
    ref = nn.GRUCell(4, 6)
    with torch.no_grad():
        ref.weight_ih.copy_(gru.input_map.weight)
        ref.bias_ih.copy_(gru.input_map.bias)
        ref.weight_hh.copy_(gru.hidden_map.weight)
        ref.bias_hh.copy_(gru.hidden_map.bias)
    x, h = torch.randn(10, N, 4), torch.randn(10, N, 6)
    td = TensorDict({"x": x, "is_init": torch.zeros(10, 1, dtype=torch.bool), HIDDEN: h}, [10])
    out = gru(td)[NEXT_HIDDEN]
    torch.testing.assert_close(out, ref(x.reshape(-1, 4), h.reshape(-1, 6)).reshape(10, N, 6), rtol=0, atol=1e-12)
    x, h = x[0].requires_grad_(), h[0].requires_grad_()
    assert torch.autograd.gradgradcheck(gru.cell, (x, h))


def test_sequence_mode_equals_stepping_with_resets(float64):
    gru = MultiAgentGRU(OBS, 8, N, in_key=("agents", "observation"))
    steps = 6
    td = batch([3, steps])
    td["is_init"][1:, 0] = False  # rows 1, 2 start from a stored, non-zero hidden state
    td["is_init"][:2, 3] = True  # rows 0, 1 reset mid-sequence
    td[HIDDEN] = torch.randn(3, steps, N, 8)  # only t = 0 of rows 1, 2 may be read
    with set_recurrent_mode(True):
        sequence = gru(td.clone())
    assert sequence["agents", "features"].shape == sequence[NEXT_HIDDEN].shape == (3, steps, N, 8)
    hidden = td[HIDDEN][:, 0]
    for t in range(steps):
        step = td[:, t].clone()
        step[HIDDEN] = hidden
        out = gru(step)
        for key in (("agents", "features"), NEXT_HIDDEN):
            torch.testing.assert_close(out[key], sequence[key][:, t], rtol=0, atol=1e-12)
        hidden = out[NEXT_HIDDEN]
    with set_recurrent_mode(True):
        fresh = gru(td.exclude(HIDDEN))["agents", "features"]
    torch.testing.assert_close(fresh[0], sequence["agents", "features"][0])
    assert not torch.allclose(fresh[2], sequence["agents", "features"][2])


def test_default_recurrent_mode_is_overridden_by_the_context():
    gru = MultiAgentGRU(OBS, 8, N, in_key=("agents", "observation"), default_recurrent_mode=True)
    td = batch([2, 5])
    assert gru.recurrent_mode
    with set_recurrent_mode(True):
        expected = MultiAgentGRU(OBS, 8, N, in_key=("agents", "observation"))
        expected.load_state_dict(gru.state_dict())
        torch.testing.assert_close(gru(td.clone())["agents", "features"], expected(td.clone())["agents", "features"])
    with set_recurrent_mode(False):
        assert not gru.recurrent_mode


@pytest.mark.parametrize("kind", ["mlp", "gru"])
@pytest.mark.parametrize("method", ["torch.func", "dual tensors"])
def test_jvp_through_log_prob_matches_finite_differences(kind, method, float64):
    actor = make(kind).double()
    td = batch([3, 5])
    td["is_init"][0, 2] = True
    with set_exploration_type(ExplorationType.RANDOM), set_recurrent_mode(True):
        actor(td)
    module = LogProb(actor)
    params = {f"actor.{k}": v.detach() for k, v in actor.named_parameters()}
    tangent = {k: torch.randn_like(v) for k, v in params.items()}

    def log_prob(p):
        return torch.func.functional_call(module, p, (td,))

    if method == "torch.func":
        _, jvp = torch.func.jvp(log_prob, (params,), (tangent,))
    else:
        jvp = dual_jvp(log_prob, params, tangent)
    eps = 1e-6
    shifted = [log_prob({k: v + s * eps * tangent[k] for k, v in params.items()}) for s in (1, -1)]
    finite_difference = (shifted[0] - shifted[1]) / (2 * eps)
    assert finite_difference.norm() > 0
    assert (jvp - finite_difference).norm() / finite_difference.norm() <= 1e-6


class TinyMultiAgentEnv(EnvBase):
    """Random per-agent observations and masks; every episode lasts ``episode_len`` steps."""

    def __init__(self, num_envs: int, n_agents: int, episode_len: int) -> None:
        super().__init__(batch_size=torch.Size([num_envs]))
        self.n_agents, self.episode_len = n_agents, episode_len
        self.steps = torch.zeros(num_envs, 1, dtype=torch.long)
        agents = (num_envs, n_agents)
        self.observation_spec = Composite(
            agents=Composite(observation=Unbounded((*agents, OBS)),
                             action_mask=Categorical(2, (*agents, ACT), dtype=torch.bool), shape=agents),
            shape=self.batch_size,
        )
        self.action_spec = Composite(agents=Composite(action=Categorical(ACT, agents), shape=agents),
                                     shape=self.batch_size)
        self.reward_spec = Unbounded((num_envs, 1))

    def _observe(self) -> TensorDict:
        mask = torch.rand(*self.batch_size, self.n_agents, ACT) > 0.4
        mask[..., 0] = True
        agents = TensorDict({"observation": torch.randn(*self.batch_size, self.n_agents, OBS), "action_mask": mask},
                            (*self.batch_size, self.n_agents))
        return TensorDict({"agents": agents}, self.batch_size)

    def _reset(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        self.steps = torch.where(torch.ones_like(self.steps, dtype=torch.bool) if reset is None else reset,
                                 0, self.steps)
        out = self._observe()
        out.update({"done": torch.zeros_like(self.steps, dtype=torch.bool),
                    "terminated": torch.zeros_like(self.steps, dtype=torch.bool)})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        self.steps = self.steps + 1
        done = self.steps >= self.episode_len
        out = self._observe()
        out.update({"reward": torch.zeros(*self.batch_size, 1), "done": done, "terminated": done.clone()})
        return out

    def _set_seed(self, seed: int | None) -> None:
        torch.manual_seed(seed)


def test_policy_primer():
    assert policy_primer(make("mlp")) is None
    primer = policy_primer(make("gru"))
    assert isinstance(primer, TensorDictPrimer)
    spec = primer.primers[HIDDEN]
    assert isinstance(spec, Unbounded) and spec.shape == (N, 8)
    assert primer.primers["agents"].shape == (N,)


def test_rollout_carries_and_resets_the_hidden_state():
    actor = make("gru")
    torch.manual_seed(1)
    env = TransformedEnv(TinyMultiAgentEnv(num_envs=4, n_agents=N, episode_len=3), InitTracker())
    env.append_transform(policy_primer(actor))
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        rollout = env.rollout(8, actor, break_when_any_done=False)
    hidden, next_hidden = rollout[HIDDEN], rollout[NEXT_HIDDEN]
    assert hidden.shape == next_hidden.shape == (4, 8, N, 8)
    is_init = rollout["is_init"].squeeze(-1)
    assert is_init[:, [0, 3, 6]].all() and is_init.sum() == 4 * 3
    assert (hidden[is_init] == 0).all() and (next_hidden.abs().sum(-1) > 0).all()
    torch.testing.assert_close(hidden[:, 1:][~is_init[:, 1:]], next_hidden[:, :-1][~is_init[:, 1:]])
    # The loss's view: one sequence-mode pass over the rollout reproduces the logits the collector acted on.
    with torch.no_grad(), set_recurrent_mode(True):
        replayed = actor.get_dist(rollout.exclude(HIDDEN).copy())
        acted = actor.get_dist(rollout.copy())
    torch.testing.assert_close(replayed.logits, acted.logits)
    torch.testing.assert_close(replayed.log_prob(rollout["agents", "action"]), rollout["agents", "action_log_prob"])
