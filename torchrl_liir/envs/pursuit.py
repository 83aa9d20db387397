"""1D Pursuit (paper §5.1): two agents move their integers towards a hidden target 0."""
from __future__ import annotations

import math

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from torchrl_liir.envs.actions import check_actions, read_actions

MOVES = (-1, 0, 1)


def action_labels(observation: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(good, bad)`` per agent: the move approaches 0 from the agent's own value / moves away.

    ``observation`` is ``[..., n_agents, 2]`` (own value first, raw or scaled),
    ``action`` action indices ``[..., n_agents]`` (0: −1, 1: stay, 2: +1).
    Staying is neither; any move from 0 moves away.

    Examples:
        >>> import torch
        >>> from torchrl_liir.envs import action_labels
        >>> observation = torch.tensor([[3.0, 0.0], [-2.0, 0.0]])  # own values 3 and -2
        >>> good, bad = action_labels(observation, torch.tensor([0, 0]))  # both move by -1
        >>> good, bad
        (tensor([ True, False]), tensor([False,  True]))
    """
    side = torch.sign(observation[..., 0])
    step = action.to(side.dtype) - 1
    return step * side < 0, (step != 0) & (step * side >= 0)


class PursuitEnv(EnvBase):
    """Batched 1D Pursuit with a team reward (paper §5.1, Fig. 2).

    Each agent holds an integer in ``{-max_value, …, max_value}`` (uniform at
    reset) and moves it by −1, 0 or +1; moves leaving that range are masked.
    The team reward is ``+reward_scale`` when both agents approach the hidden
    target 0, ``−reward_scale`` when both move away, 0 otherwise. The game
    lasts ``max_steps`` steps (default 20: twice the longest distance to the
    target) and ends earlier when both values are 0; both ends are
    terminations (``truncated`` stays False). A time limit treated as
    truncation would be bootstrapped as if the game went on, and then cycles
    of moving away and back are worth more than reaching the target.

    Keys (group ``"agents"``, 2 agents): ``("agents", "observation")`` = (own
    value, other's value), ``("agents", "action_mask")``, ``("agents",
    "action")`` (index into −1/0/+1), ``"state"`` = both values, team
    ``"reward"``, ``done``/``terminated``/``truncated``. With ``normalize``
    (default) observation and state are divided by ``max_value``, so networks
    see inputs in [−1, 1]; ``normalize=False`` gives the raw integers.

    Args:
        num_envs: games stepped together (the env's batch size).
        max_steps: the game's length.
        max_value: the values range over ``{-max_value, …, max_value}``.
        reward_scale: the team reward's magnitude.
        normalize: divide observation and state by ``max_value``.
        device: where the games' tensors live.
        seed: seed of the games' random stream (``None``: drawn from torch's).

    Examples:
        >>> from torchrl_liir import PursuitEnv
        >>> env = PursuitEnv(num_envs=4, seed=0)
        >>> td = env.reset()
        >>> td.get(("agents", "observation")).shape, td.get(("agents", "action_mask")).shape, td.get("state").shape
        (torch.Size([4, 2, 2]), torch.Size([4, 2, 3]), torch.Size([4, 2]))
        >>> rollout = env.rollout(20)  # random actions within the mask; every game ends within 20 steps
        >>> rollout.get(("next", "reward")).shape[-1], bool(rollout.get(("next", "done"))[:, -1].all())
        (1, True)
        >>> bool(rollout.get(("next", "reward")).abs().le(env.reward_scale).all())
        True
    """

    n_agents = 2
    n_actions = len(MOVES)
    batch_locked = True

    def __init__(
        self,
        num_envs: int = 32,
        max_steps: int = 20,
        max_value: int = 10,
        reward_scale: float = 0.01,
        normalize: bool = True,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> None:
        for name, value in (("num_envs", num_envs), ("max_steps", max_steps), ("max_value", max_value)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={value}")
        if not math.isfinite(reward_scale) or reward_scale <= 0:
            raise ValueError(f"reward_scale={reward_scale} must be a finite number > 0")
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.max_steps, self.max_value, self.reward_scale = max_steps, max_value, reward_scale
        self.observation_scale = 1.0 / max_value if normalize else 1.0
        self.values = torch.zeros(num_envs, self.n_agents, dtype=torch.long, device=self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.rng = torch.Generator(device=self.device)
        self._make_specs()
        self.set_seed(torch.empty((), dtype=torch.int64).random_().item() if seed is None else seed)

    def _make_specs(self) -> None:
        b, n, dev = self.batch_size, self.n_agents, self.device
        agents = (*b, n)
        high = self.max_value * self.observation_scale
        self.observation_spec = Composite(
            agents=Composite(
                observation=Bounded(-high, high, (*agents, 2), dtype=torch.float32, device=dev),
                action_mask=Categorical(2, (*agents, self.n_actions), dtype=torch.bool, device=dev),
                shape=agents,
            ),
            state=Bounded(-high, high, (*b, n), dtype=torch.float32, device=dev),
            shape=b,
        )
        self.action_spec = Composite(
            agents=Composite(action=Categorical(self.n_actions, agents, device=dev), shape=agents), shape=b
        )
        self.reward_spec = Unbounded((*b, 1), device=dev)
        flag = Categorical(2, (*b, 1), dtype=torch.bool, device=dev)
        self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=b)

    def _set_seed(self, seed: int | None) -> None:
        self.rng.manual_seed(int(seed))

    def random_state(self) -> dict[str, torch.Tensor]:
        """The state of the games' random stream (a checkpoint's part: a resumed run draws the same games)."""
        return {"generator": self.rng.get_state()}

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None:
        self.rng.set_state(state["generator"].cpu())

    def _action_mask(self) -> torch.Tensor:
        mask = torch.ones(*self.batch_size, self.n_agents, self.n_actions, dtype=torch.bool, device=self.device)
        mask[..., 0] = self.values > -self.max_value
        mask[..., 2] = self.values < self.max_value
        return mask

    def _observe(self) -> TensorDict:
        values = self.values.float() * self.observation_scale
        own_other = torch.stack([values, values.flip(-1)], dim=-1)
        mask = self._action_mask()
        return TensorDict(
            {"agents": TensorDict({"observation": own_other, "action_mask": mask}, (*self.batch_size, self.n_agents)),
             "state": values},
            self.batch_size, device=self.device,
        )

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions among those the current action mask allows."""
        if tensordict is None:
            tensordict = self._observe()
        spec = self.full_action_spec["agents", "action"].clone()
        spec.update_mask(tensordict.get(("agents", "action_mask")))
        tensordict.set(("agents", "action"), spec.rand())
        return tensordict

    def _reset(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        if reset is None:
            reset = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
        reset = reset.reshape(self.batch_size)
        new = torch.randint(-self.max_value, self.max_value + 1, self.values.shape,
                            generator=self.rng, device=self.device)
        self.values = torch.where(reset.unsqueeze(-1), new, self.values)
        self.steps = torch.where(reset, 0, self.steps)
        out = self._observe()
        out.update({k: torch.zeros(*self.batch_size, 1, dtype=torch.bool, device=self.device)
                    for k in ("done", "terminated", "truncated")})
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = read_actions(tensordict)
        check_actions(action, self._action_mask())
        good, bad = action_labels(self.values.unsqueeze(-1), action)
        reward = self.reward_scale * (good.all(-1).float() - bad.all(-1).float())
        self.values = self.values + action - 1
        self.steps = self.steps + 1
        terminated = (self.values == 0).all(-1, keepdim=True) | (self.steps >= self.max_steps).unsqueeze(-1)
        out = self._observe()
        out.update({"reward": reward.unsqueeze(-1), "terminated": terminated, "done": terminated.clone(),
                    "truncated": torch.zeros_like(terminated)})
        return out
