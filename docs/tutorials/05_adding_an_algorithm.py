"""
Adding an algorithm
===================

The trainer runs any algorithm registered under the name ``algo=`` selects, as BenchMARL does. An algorithm is a
class with three parts:

- ``config_checks()``: the rule of every key of its ``algo`` config section. The command line runs these checks
  before anything is built, so they import no torch;
- capability flags, BenchMARL's ``supports_*``: ``supports_continuous_actions`` says whether it can train a
  policy over continuous actions; the trainer checks it against the task before building anything;
- ``build(...)``: a ``Recipe`` for one env: the acting policy, the loss, the optimiser groups (each with its own
  gradient clip), and optionally a batch feed (MAPPO's minibatch epochs, QMIX's replay buffer) and hooks.

The trainer does the rest: collection, test episodes, checkpoints, the CSV tables, populations. This tutorial
writes a small new algorithm, registers it with its config defaults, and trains it for a few batches on 1D
Pursuit, without touching the package.
"""

# %%
# The algorithm
# -------------
#
# IAC (independent actor-critic) trains each agent's policy with a per-agent critic V(o_i) on the team reward.
# LIIR's proxy critic also reads the global state and the agent's id: V(s, o_i, i). To tell how much of a
# difference between LIIR and IAC comes from the critic's input rather than from r_in, one wants IAC with LIIR's
# critic: here ``iac_state``, with a new key, ``critic_reads_state``, that switches the critic's input.
#
# Its config checks take the keys every actor-critic reads (``actor_critic_checks()``: optimiser, learning rates,
# clip, entropy and critic weights, γ, λ) and add two. ``defaults`` gives every key its default value (here
# IAC's, and the new key's); the trainer's ``algo`` section starts from them. Its ``build`` uses the package's
# pieces: the shared policy the ``model`` section describes (``make_policy``), the per-agent critic, TorchRL-style
# ``MultiAgentActorCriticLoss``, and two optimiser groups (``optimizer_group``: the configured optimiser with the
# configured clip, ``clip``). The names of the groups (``policy``, ``critic``) name the gradient norms in
# ``metrics.csv``. The package's own algorithms import torch inside ``build`` to keep their checks light; a script
# need not.

import tempfile
from pathlib import Path

import torch

from torchrl_liir.algorithms import (
    ALGORITHMS,
    Algorithm,
    OptimizerGroup,
    Recipe,
    actor_critic_checks,
    clip,
    make_policy,
    optimizer_group,
    register_algorithm,
    unregister_algorithm,
)
from torchrl_liir.cli import compose_config
from torchrl_liir.config_checks import Boolean, ConfigError
from torchrl_liir.modules import make_proxy_critic
from torchrl_liir.objectives import MultiAgentActorCriticLoss
from torchrl_liir.trainers import check_config, train


class StateIAC(Algorithm):
    """IAC whose per-agent critic can also read the global state and the agent's id: V(s, o_i, i)."""

    name = "iac_state"
    supports_continuous_actions = True  # the default: make_policy builds a TanhNormal policy for them
    defaults = {
        "critic_reads_state": True,  # false: V(o_i), as IAC
        "policy_optimizer": "rmsprop", "lr_policy": 0.005, "lr_critic": 0.005, "max_grad_norm": 10.0,
        "entropy_coeff": 0.01, "critic_coeff": 1.0, "normalize_advantage": False, "gamma": 0.99, "lmbda": 0.8,
    }

    def config_checks(self):
        return {**actor_critic_checks(), "normalize_advantage": Boolean(), "critic_reads_state": Boolean()}

    def build(self, algo, model, dims, episode_limit, device):
        actor = make_policy(algo, model, dims, device)
        critic = make_proxy_critic(dims.obs_dim, dims.n_agents, num_cells=list(model.num_cells),
                                   state_dim=dims.state_dim if algo.critic_reads_state else None,
                                   state_key=dims.state_key, out_key=("agents", "state_value"), device=device)
        loss = MultiAgentActorCriticLoss(actor, critic, dims.n_agents, entropy_coeff=algo.entropy_coeff,
                                         critic_coeff=algo.critic_coeff, normalize_advantage=algo.normalize_advantage,
                                         gamma=algo.gamma, lmbda=algo.lmbda)
        if dims.has_agent_mask:  # StarCraft-like envs: dead agents take no decision
            loss.set_keys(agent_mask=("agents", "alive"))
        optimizers = {
            "policy": optimizer_group(algo, actor.parameters(), algo.lr_policy),  # algo.policy_optimizer, clipped
            "critic": OptimizerGroup(torch.optim.Adam(critic.parameters(), lr=algo.lr_critic), clip(algo)),
        }
        return Recipe(actor, loss, optimizers)


# %%
# Registering it
# --------------
#
# ``register_algorithm`` adds the class to ``ALGORITHMS``, which maps each ``algo.name`` to its class (the trainer
# looks names up there), and gives hydra its ``defaults`` as the config ``algo=iac_state`` selects, with
# ``name`` filled in. It returns the class, so it also works as a decorator (``@register_algorithm`` above
# ``class StateIAC``). A name another class holds is refused.

register_algorithm(StateIAC)
print({name: kind.supports_continuous_actions for name, kind in ALGORITHMS.items()})
print(compose_config(["algo=iac_state", "algo.lr_policy=0.001"]).algo)

# %%
# Without ``defaults``, the config comes from a file ``algo/iac_state.yaml`` on hydra's config search path, as
# the package's algorithms' come from ``torchrl_liir/conf/algo``: a directory of yours joins the search path with
# ``hydra.searchpath=[file:///path/to/my_configs]`` on the command line. Files suit defaults kept apart from the
# code, or several configs of one algorithm (a file ``algo/iac_state_fast.yaml`` that says ``name: iac_state``).


# %%
# The checks at work
# ------------------
#
# ``check_config`` runs every check the trainer runs before it builds anything. A bad value of the new key is
# refused in one line, and so is a task the algorithm cannot serve: a copy of ``iac_state`` that declares
# ``supports_continuous_actions = False``, asked to train on VMAS with continuous actions.

try:
    check_config(compose_config(["algo=iac_state", "algo.critic_reads_state=maybe"]))
except ConfigError as err:
    print("refused:", err)


@register_algorithm
class DiscreteStateIAC(StateIAC):  # StateIAC's defaults, under its own name
    name = "iac_state_discrete"
    supports_continuous_actions = False


try:
    check_config(compose_config(["task=vmas", "task.continuous_actions=true", "algo=iac_state_discrete"]))
except ConfigError as err:
    print("refused:", err)
unregister_algorithm(DiscreteStateIAC.name)

# %%
# Training it
# -----------
#
# A new algorithm is a full citizen: ``variants`` may change its new key too. Here the two settings of
# ``critic_reads_state`` train side by side as one population, for 10 batches of 32 Pursuit episodes each, into a
# temporary run directory. Ten batches show that it trains; comparing the two critics needs the full budget and
# several seeds (see *Populations*).

cfg = compose_config(["algo=iac_state",
                      "variants={state:{algo.critic_reads_state:true},obs:{algo.critic_reads_state:false}}",
                      "experiment.total_frames=6400", "experiment.progress_bar=false", "experiment.study=null",
                      "experiment.evaluation_interval_episodes=0"])
run_dir = Path(tempfile.mkdtemp(prefix="iac_state_"))
summary = train(cfg, run_dir)
for name, member in summary["members"].items():
    final = member["final"]
    print(f"{name}: {member['status']} after {member['updates']} updates; last update: return "
          f"{final['episode_return']:+.4f}, critic loss {final['loss_critic']:.2e}, policy |∇| "
          f"{final['grad_norm_policy']:.3f}; test return {member['test']['test_return']:+.4f}")

# %%
# The first line of ``metrics.csv`` names what the trainer logged for the new algorithm: the loss's terms and
# one gradient norm per optimiser group.

print((run_dir / "state_seed0" / "metrics.csv").read_text().splitlines()[0])

# %%
# A registration lasts as long as the process. To leave the registries as they were (in a notebook, or a test),
# undo it; ``unregister_algorithm`` also takes the defaults back from hydra:

unregister_algorithm(StateIAC.name)
print(sorted(ALGORITHMS))

# %%
# The same from the command line: a script of yours registers the class and hands over to the trainer's entry
# point::
#
#     # my_train.py
#     from torchrl_liir.algorithms import register_algorithm
#     from torchrl_liir.cli import main
#
#     from my_algorithms import StateIAC
#
#     register_algorithm(StateIAC)
#     main()
#
# ::
#
#     python my_train.py algo=iac_state seed=3
#
# The command line's checks, populations and ``resume=`` (through the same script) then apply to it.
