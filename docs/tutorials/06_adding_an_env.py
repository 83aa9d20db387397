"""
Adding an environment
=====================

The trainer builds its environments through *tasks*, as BenchMARL does: ``task=`` names a ``Task``, which knows
the keys of its ``task`` config section and their checks, the longest episode of the configured env, and how to
build a batch of envs. Any TorchRL multi-agent env with TorchRL's usual keys fits.

This tutorial writes a tiny multi-agent env from scratch as a TorchRL ``EnvBase``, wraps it as a ``Task`` with
its config defaults, registers it, and trains LIIR on it for a few batches, all without touching the package.
"""

# %%
# The environment
# ---------------
#
# *Cues*: each of 3 agents privately sees one of 3 cues and must answer with the matching action. The team is
# rewarded with the fraction of agents that answered right, so no agent sees whether its own answer was one of
# the right ones: a small credit-assignment problem, which is what LIIR's individual intrinsic rewards are
# for. New cues are drawn at every step; an episode lasts 10 steps.
#
# The keys are the ones every task of the package uses (TorchRL's multi-agent layout):
#
# - ``("agents", "observation")``: per agent, its cue one-hot and the episode's progress;
# - ``"state"``: the global state, here every cue and the progress (without it, the critics read the agents'
#   observations concatenated);
# - ``("agents", "action")``: one integer per agent. An ``("agents", "action_mask")`` is optional: without one,
#   the policy samples from every action;
# - ``"reward"``: the team reward (per-agent rewards at ``("agents", "reward")`` work too: the losses average
#   them into the team reward);
# - ``"done"``, ``"terminated"``, ``"truncated"``.
#
# The games of a batch run in one tensor, and draw from their own seeded ``torch.Generator``. The env's
# ``random_state`` / ``set_random_state`` pair is optional: the trainer saves it in checkpoints so that a resumed
# run draws the same cues.

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from tensordict import TensorDict
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.utils import check_env_specs

from torchrl_liir.cli import compose_config
from torchrl_liir.config_checks import COUNT, Text
from torchrl_liir.runtime import configure_runtime
from torchrl_liir.tasks import TASKS, Task, register_task, unregister_task
from torchrl_liir.trainers import train


class CuesEnv(EnvBase):
    """Each agent sees a cue in {0..n_cues-1} and should answer with it; the team earns the fraction right."""

    batch_locked = True

    def __init__(self, num_envs=32, n_agents=3, n_cues=3, max_steps=10, device=None, seed=0):
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.n_agents, self.n_cues, self.max_steps = n_agents, n_cues, max_steps
        self.rng = torch.Generator(device=self.device)
        self.cues = torch.zeros(num_envs, n_agents, dtype=torch.long, device=self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        b, agents = self.batch_size, (num_envs, n_agents)
        self.observation_spec = Composite(
            agents=Composite(observation=Unbounded((*agents, n_cues + 1), device=self.device), shape=agents),
            state=Unbounded((*b, n_agents * n_cues + 1), device=self.device),
            shape=b,
        )
        self.action_spec = Composite(
            agents=Composite(action=Categorical(n_cues, agents, device=self.device), shape=agents), shape=b
        )
        self.reward_spec = Unbounded((*b, 1), device=self.device)
        flag = Categorical(2, (*b, 1), dtype=torch.bool, device=self.device)
        self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=b)
        self.set_seed(seed)

    def _set_seed(self, seed):
        self.rng.manual_seed(int(seed))

    def random_state(self):
        return {"generator": self.rng.get_state()}

    def set_random_state(self, state):
        self.rng.set_state(state["generator"].cpu())

    def _observe(self):
        cues = torch.nn.functional.one_hot(self.cues, self.n_cues).float()
        progress = (self.steps.float() / self.max_steps)[:, None]
        observation = torch.cat([cues, progress[:, None].expand(-1, self.n_agents, 1)], dim=-1)
        state = torch.cat([cues.flatten(1), progress], dim=-1)
        agents = TensorDict({"observation": observation}, (*self.batch_size, self.n_agents))
        return TensorDict({"agents": agents, "state": state}, self.batch_size, device=self.device)

    def _draw_cues(self, where):
        new = torch.randint(self.n_cues, self.cues.shape, generator=self.rng, device=self.device)
        self.cues = torch.where(where[:, None], new, self.cues)

    def _reset(self, tensordict=None):
        reset = None if tensordict is None else tensordict.get("_reset", None)
        reset = torch.ones(self.batch_size, dtype=torch.bool, device=self.device) if reset is None else reset
        reset = reset.reshape(self.batch_size)
        self._draw_cues(reset)
        self.steps = torch.where(reset, 0, self.steps)
        out = self._observe()
        for flag in ("done", "terminated", "truncated"):
            out[flag] = torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
        return out

    def _step(self, tensordict):
        action = tensordict["agents", "action"]
        reward = (action == self.cues).float().mean(-1, keepdim=True)
        self.steps = self.steps + 1
        self._draw_cues(torch.ones(self.batch_size, dtype=torch.bool, device=self.device))
        out = self._observe()
        ended = (self.steps >= self.max_steps)[:, None]
        out.update({"reward": reward, "done": ended, "terminated": ended.clone(), "truncated": torch.zeros_like(ended)})
        return out


configure_runtime(threads=1, jax_cache_dir=None)
torch.manual_seed(0)
env = CuesEnv(num_envs=4, seed=1)
check_env_specs(env)  # TorchRL's check that the data match the specs
rollout = env.rollout(3)  # random answers
print(rollout.batch_size, rollout["agents", "observation"].shape, rollout["next", "reward"].shape)
print("game 0, cues:", rollout["agents", "observation"][0, :, :, :3].argmax(-1).tolist())
print("game 0, answers:", rollout["agents", "action"][0].tolist())
print("game 0, team rewards:", [round(r, 3) for r in rollout["next", "reward"][0, :, 0].tolist()])

# %%
# The task
# --------
#
# A ``Task`` says which keys its config section has and what each accepts (the same checks the command line
# runs before building anything), their default values, the longest episode, and how to build ``num_envs`` games
# on a device with a seed. ``name`` and ``run_name`` (the task's part of run directory names) are in every task's
# section; ``name`` is filled in from the class. The ``@register_task`` decorator adds the class to ``TASKS``,
# where the trainer looks ``task.name`` up, and gives hydra its ``defaults`` as the config ``task=cues`` selects.


@register_task
class CuesTask(Task):
    name = "cues"
    defaults = {"run_name": "cues", "num_envs": 32,  # games per batch = episodes per update
                "episode_limit": 10, "n_agents": 3, "n_cues": 3}

    def config_checks(self):
        return {"name": Text(), "run_name": Text(), "num_envs": COUNT, "episode_limit": COUNT, "n_agents": COUNT,
                "n_cues": COUNT}

    def episode_limit(self, cfg):
        return int(cfg.task.episode_limit)

    def make_env(self, cfg, device, num_envs, seed):
        return CuesEnv(num_envs, n_agents=cfg.task.n_agents, n_cues=cfg.task.n_cues,
                       max_steps=cfg.task.episode_limit, device=device, seed=seed)


print(sorted(TASKS))
print(compose_config(["task=cues", "task.n_cues=4"]).task)

# %%
# Without ``defaults``, the config comes from a file ``task/cues.yaml`` on hydra's config search path, as the
# package's tasks' come from ``torchrl_liir/conf/task``; a directory of yours joins the search path with
# ``hydra.searchpath=[file:///path/to/my_configs]``. As the package's task files, such a file is a ``_global_``
# package: it sets the ``task`` section, and may set defaults elsewhere too, such as the budget of a run on this
# task (``experiment.total_frames``).

# %%
# Training LIIR on it
# -------------------
#
# Nothing else is needed: the trainer reads the sizes (agents, observation, state, actions, whether there is an
# action mask) from the env's specs, and builds LIIR's networks to fit. One setting is the task's own: LIIR's
# defaults were set on Pursuit, whose rewards are ±0.01 per step; here they reach 1, and the policy's steps
# would be a hundred times larger. Standardising the policy's advantage per batch
# (``algo.normalize_advantage=true``, the StarCraft tasks' setting) makes the step independent of the reward's
# scale. Twenty batches of 32 episodes:

cfg = compose_config(["task=cues", "algo=liir", "algo.normalize_advantage=true", "experiment.total_frames=6400",
                      "experiment.progress_bar=false", "experiment.evaluation_interval_episodes=0"])
run_dir = Path(tempfile.mkdtemp(prefix="liir_cues_"))
summary = train(cfg, run_dir)
print(f"{summary['status']}: {summary['updates']} updates, {summary['frames']} frames; "
      f"greedy test return {summary['test']['test_return']:.2f} of 10")

# %%
# Random answers score 10/3 ≈ 3.3 per episode, perfect ones 10. The training return (of the sampling policy) per
# update, from the run's ``metrics.csv``:

rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
header, rows = rows[0], rows[1:]
frames = [float(row[header.index("frames")]) for row in rows]
returns = [float(row[header.index("episode_return")]) for row in rows]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(frames, returns, "o-", label="LIIR, training episodes")
ax.axhline(10 / 3, color="grey", ls="--", label="random answers")
ax.axhline(10, color="grey", ls=":", label="every answer right")
ax.set_xlabel("frames")
ax.set_ylabel("team return per episode")
ax.set_title("LIIR on the Cues task")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# A registration lasts as long as the process. To leave the registries as they were (in a notebook, or a test),
# undo it; ``unregister_task`` also takes the defaults back from hydra:

unregister_task(CuesTask.name)
print(sorted(TASKS))

# %%
# From the command line, a script that registers the task and calls ``torchrl_liir.cli.main()`` trains it as any
# other (see *Adding an algorithm*). A task
# may also declare continuous actions (``continuous_actions(cfg)``, checked against each algorithm's
# ``supports_continuous_actions``), a number of test envs (``test_envs(cfg)``) and random state that its envs
# share process-wide (``shared_random_state`` / ``set_shared_random_state``, as VMAS's), which checkpoints and
# populations then save and swap per run.
