"""Parameter-shared MLP and GRU policies with action masks."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs import InitTracker, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import set_recurrent_mode

from torchrl_liir import MultiAgentGRU, PursuitEnv, make_gru_policy, make_mlp_policy, policy_primer
from torchrl_liir.objectives.common import PolicyTerms

N, OBS, ACT = 3, 4, 5


def make(kind):
    torch.manual_seed(0)
    if kind == "gru":
        return make_gru_policy(N, OBS, ACT, hidden_size=8)
    return make_mlp_policy(N, OBS, ACT, num_cells=(16,))


def batch(shape, one_allowed=False):
    mask = torch.ones(*shape, N, ACT, dtype=torch.bool)
    if one_allowed:
        mask[:] = False
        mask[..., 3] = True
    is_init = torch.zeros(*shape, 1, dtype=torch.bool)
    is_init[..., 0, :] = True
    return TensorDict({"agents": TensorDict({"observation": torch.randn(*shape, N, OBS), "action_mask": mask},
                                            [*shape, N]), "is_init": is_init}, shape)


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_shapes_and_masks(kind):
    actor = make(kind)
    td = batch([6, 7], one_allowed=True)
    with set_exploration_type(ExplorationType.RANDOM), set_recurrent_mode(True):
        actor(td)
    assert td["agents", "action"].shape == (6, 7, N)
    assert (td["agents", "action"] == 3).all()
    assert td["agents", "action_log_prob"].shape == (6, 7, N)
    td["agents", "action"] = torch.zeros(6, 7, N, dtype=torch.long)
    log_prob, _ = PolicyTerms(actor, ("agents", "action"))(td)
    assert torch.isinf(log_prob).all() and (log_prob < 0).all()


@pytest.mark.parametrize("kind", ["mlp", "gru"])
def test_parameters_are_shared_across_agents(kind):
    actor = make(kind)
    td = batch([2, 5])
    obs = td["agents", "observation"]
    obs[..., 1, :] = obs[..., 0, :]
    with set_recurrent_mode(True):
        logits = actor.get_dist(td).logits
    torch.testing.assert_close(logits[..., 0, :], logits[..., 1, :])
    assert not torch.allclose(logits[..., 0, :], logits[..., 2, :])


def test_gru_cell_equals_torch_gru_cell(float64):
    gru = MultiAgentGRU(4, 6, N)
    ref = torch.nn.GRUCell(4, 6)
    with torch.no_grad():
        ref.weight_ih.copy_(gru.input_map.weight)
        ref.bias_ih.copy_(gru.input_map.bias)
        ref.weight_hh.copy_(gru.hidden_map.weight)
        ref.bias_hh.copy_(gru.hidden_map.bias)
    x, h = torch.randn(10, 4), torch.randn(10, 6)
    torch.testing.assert_close(gru.cell(x, h), ref(x, h))


def test_sequence_mode_equals_stepping_with_resets(float64):
    gru = MultiAgentGRU(OBS, 8, N, in_key=("agents", "observation"))
    steps = 6
    td = batch([2, steps])
    td["is_init"][:, 3] = True
    with set_recurrent_mode(True):
        sequence = gru(td.clone())["agents", "features"]
    hidden = None
    for t in range(steps):
        step = td[:, t].clone()
        if hidden is not None:
            step["agents", "rnn_hidden"] = hidden
        out = gru(step)
        torch.testing.assert_close(out["agents", "features"], sequence[:, t])
        hidden = out["next", "agents", "rnn_hidden"]


def test_jvp_through_gru_log_prob_matches_finite_differences(float64):
    actor = make("gru").double()
    td = batch([3, 5])
    with set_exploration_type(ExplorationType.RANDOM), set_recurrent_mode(True):
        actor(td)
    module = PolicyTerms(actor, ("agents", "action"))
    params = {f"actor.{k}": v.detach() for k, v in actor.named_parameters()}
    tangent = {k: torch.randn_like(v) for k, v in params.items()}

    def log_prob(p):
        return torch.func.functional_call(module, p, (td,))[0]

    _, jvp = torch.func.jvp(log_prob, (params,), (tangent,))
    eps = 1e-6
    shifted = [log_prob({k: v + s * eps * tangent[k] for k, v in params.items()}) for s in (1, -1)]
    finite_difference = (shifted[0] - shifted[1]) / (2 * eps)
    assert (jvp - finite_difference).norm() / finite_difference.norm() <= 1e-6


def test_collector_rollout_carries_the_hidden_state():
    actor = make_gru_policy(2, 2, 3, hidden_size=8)
    primer = policy_primer(actor)
    assert primer is not None and policy_primer(make_mlp_policy(2, 2, 3)) is None
    env = TransformedEnv(PursuitEnv(num_envs=4, seed=0), InitTracker()).append_transform(primer)
    with set_exploration_type(ExplorationType.RANDOM):
        rollout = env.rollout(5, actor)
    hidden = rollout["agents", "rnn_hidden"]
    assert hidden.shape == (4, 5, 2, 8)
    assert (hidden[:, 0] == 0).all() and (hidden[:, 1:].abs().sum() > 0)
    torch.testing.assert_close(hidden[:, 1:], rollout["next", "agents", "rnn_hidden"][:, :-1])
