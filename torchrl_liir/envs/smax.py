"""SMAX (JaxMARL's StarCraft-like battles) as a batched TorchRL env: N battles per jitted, vmapped JAX call."""
from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.envs import EnvBase

from torchrl_liir.envs.actions import check_actions, read_actions
from torchrl_liir.envs.jaxmarl_import import import_smax
from torchrl_liir.envs.smac_layout import masked_rand_action, smac_specs
from torchrl_liir.envs.smac_maps import default_episode_limit
from torchrl_liir.runtime import prepare_jax


def _import_smax():
    prepare_jax()
    try:
        import jax
        import jax.numpy as jnp

        smax = import_smax()
    except ImportError as err:
        raise ImportError("SMAXEnv needs JaxMARL: pip install 'torchrl_liir[smax]'") from err
    return jax, jnp, smax


def jax_device_for(device: torch.device):
    """The JAX device matching a torch device (CUDA index preserved)."""
    jax = _import_smax()[0]
    if device.type == "cuda":
        return jax.devices("gpu")[device.index or 0]
    if device.type != "cpu":
        raise ValueError(f"device={device}: SMAXEnv runs on cpu or cuda")
    return jax.devices("cpu")[0]


@functools.lru_cache(maxsize=None)
def smax_kernels(map_name: str, walls_cause_death: bool = True) -> SimpleNamespace:
    """The SMAX env and its jitted batched ``reset``/``step`` kernels (cached: compiled once per map, wall rule
    and shape).

    The episode limit is an argument of ``step`` (SMAX's own ``max_steps`` is left at a
    bound no limit reaches), so one compilation serves every limit. ``walls_cause_death``: SMAX's rule that a
    unit touching the map's edge dies.
    """
    jax, jnp, smax_package = _import_smax()
    try:
        scenario = smax_package.map_name_to_scenario(map_name)
    except KeyError as err:
        raise ValueError(f"map_name={map_name!r} is not a SMAX scenario") from err
    smax = smax_package.HeuristicEnemySMAX(scenario=scenario, max_steps=2**30, walls_cause_death=walls_cause_death)
    n, agents = smax.num_allies, smax.agents
    type_health = smax.unit_type_health

    n_units, n_types = smax.num_allies + smax.num_enemies, len(smax.unit_type_names)
    n_features = 4 + n_types  # health, x, y, weapon cooldown, one-hot unit type; then teams and types
    position_scale = jnp.array([smax.map_width, smax.map_height])

    def world_state(state):
        """SMAX's global state scaled as SMAC's: positions / map size, cooldowns / the unit type's cooldown."""
        raw = smax.get_world_state(state)
        units = raw[:n_units * n_features].reshape(n_units, n_features)
        cooldown = units[:, 3] / smax.unit_type_weapon_cooldowns[state.state.unit_types]
        units = units.at[:, 1:3].divide(position_scale).at[:, 3].set(jnp.clip(cooldown, -1.0, 1.0))
        teams, types = raw[n_units * n_features:n_units * (n_features + 1)], raw[n_units * (n_features + 1):]
        return jnp.concatenate([units.reshape(-1), teams, types / (n_types - 1)])

    def observe(state, reward, terminated, truncated):
        inner = state.state
        obs_dict, avail_dict = smax.get_obs(state), smax.get_avail_actions(state)
        obs = jnp.stack([obs_dict[a] for a in agents])
        avail = jnp.stack([avail_dict[a] for a in agents]).astype(jnp.float32)
        alive = inner.unit_alive
        health = inner.unit_health[:n] / type_health[inner.unit_types[:n]]
        lost, cleared = ~alive[:n].any(), ~alive[n:].any()
        flags = [reward, terminated, truncated, cleared & ~lost, (~alive[:n]).sum(), (~alive[n:]).sum()]
        return jnp.concatenate([
            obs.reshape(-1), world_state(state), avail.reshape(-1), health, alive[:n],
            jnp.stack(flags).astype(jnp.float32),
        ]).astype(jnp.float32)

    def reset_one(key):
        _, state = smax.reset(key)
        zero = jnp.zeros((), jnp.float32)
        return state, observe(state, zero, zero, zero)

    def step_one(key, state, action, episode_limit):
        _, state, rewards, _, _ = smax.step_env(key, state, {a: action[i] for i, a in enumerate(agents)})
        alive = state.state.unit_alive
        terminated = ~alive[:n].any() | ~alive[n:].any()
        truncated = (state.state.step >= episode_limit) & ~terminated
        return state, observe(state, rewards[agents[0]], terminated, truncated)

    def reset(key, states, mask):
        key, *keys = jax.random.split(key, mask.shape[0] + 1)
        new_states, packed = jax.vmap(reset_one)(jnp.stack(keys))
        if states is None:
            return key, new_states, packed
        pick = lambda a, b: jnp.where(mask.reshape(-1, *([1] * (a.ndim - 1))), a, b)  # noqa: E731
        return key, jax.tree.map(pick, new_states, states), packed

    def step(key, states, actions, episode_limit):
        key, *keys = jax.random.split(key, actions.shape[0] + 1)
        return (key, *jax.vmap(step_one, in_axes=(0, 0, 0, None))(jnp.stack(keys), states, actions, episode_limit))

    state_shape = jax.eval_shape(lambda key: world_state(smax.reset(key)[1]), jax.random.PRNGKey(0))
    return SimpleNamespace(
        smax=smax, state_dim=state_shape.shape[0], reset=jax.jit(reset), step=jax.jit(step),
        reset_all=jax.jit(lambda key, mask: reset(key, None, mask)),
    )


class SMAXEnv(EnvBase):
    """``num_envs`` SMAX battles against SMAX's heuristic enemy, as one batched env.

    Keys follow TorchRL's ``SMACv2Env`` (see :func:`smac_specs`), with the episode
    limit reported as truncation (SMAC's ``episode_limit``), a win as
    ``("info", "battle_won")`` (all enemies dead, an ally alive), and SMAC's
    episode limit per map by default. Each step is one jitted ``jax.vmap`` over the
    battles; results cross to torch through DLPack as one packed array (zero copy
    on CPU, on the device on CUDA). Actions outside the mask raise ``ValueError``.

    Args:
        map_name: a SMAX scenario (``3m``, ``8m``, ``2s3z``, ``3s5z``, ...).
        num_envs: battles stepped together.
        episode_limit: steps before truncation; default SMAC's limit for the map.
        device: ``cpu`` or ``cuda[:N]`` (JAX must have a CUDA backend for the latter).
        seed: PRNG seed of the battles.
        reward_scale: multiplies SMAX's team reward (damage share + 1 for a win, at most about 2 per
            episode); 10 gives SMAC's scale (``reward_scale_rate=20``: at most about 20 per episode).
        check_action_mask: reject actions outside the mask. On CPU at once; on a GPU the step's actions
            are kept on the device and checked together at the next reset (one sync per batch, not per step).
        walls_cause_death: SMAX kills units that touch the map's edge, StarCraft II does not: False gives SMAC's rule.

    Examples:
        >>> from torchrl_liir import SMAXEnv
        >>> env = SMAXEnv("3m", num_envs=2, seed=0)  # compiles SMAX's kernels for this map: seconds
        >>> env.n_agents, env.n_actions, env.obs_dim, env.state_dim, env.episode_limit
        (3, 8, 75, 72, 60)
        >>> td = env.reset()
        >>> td.get(("agents", "observation")).shape, td.get(("agents", "action_mask")).shape
        (torch.Size([2, 3, 75]), torch.Size([2, 3, 8]))
        >>> td = env.step(env.rand_action(td))
        >>> td.get(("next", "reward")).shape, td.get(("next", "info", "battle_won")).dtype
        (torch.Size([2, 1]), torch.bool)
    """

    def __init__(
        self,
        map_name: str = "3m",
        num_envs: int = 32,
        *,
        episode_limit: int | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        reward_scale: float = 1.0,
        check_action_mask: bool = True,
        walls_cause_death: bool = True,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be >= 1")
        if episode_limit is not None and episode_limit < 1:
            raise ValueError(f"episode_limit={episode_limit} must be >= 1 (None: SMAC's limit for the map)")
        if not math.isfinite(reward_scale) or reward_scale <= 0:
            raise ValueError(f"reward_scale={reward_scale} must be a finite number > 0")
        super().__init__(device=device, batch_size=(num_envs,))
        jax = _import_smax()[0]
        self._kernels = smax_kernels(map_name, walls_cause_death)
        if episode_limit is None:
            episode_limit = default_episode_limit(map_name)
        self.map_name, self.episode_limit, self.check_action_mask = map_name, int(episode_limit), check_action_mask
        self.reward_scale, self.walls_cause_death = reward_scale, walls_cause_death
        self._jax, self._jax_device = jax, jax_device_for(self.device)
        self._smax = self._kernels.smax
        self.n_agents, self.n_enemies = self._smax.num_allies, self._smax.num_enemies
        self.n_actions = self._smax.action_spaces[self._smax.agents[0]].n
        self.obs_dim = self._smax.observation_spaces[self._smax.agents[0]].shape[0]
        self.state_dim = self._kernels.state_dim
        for name, spec in smac_specs(self.batch_size, self.n_agents, self.n_enemies, self.n_actions,
                                     self.obs_dim, self.state_dim, self.device).items():
            setattr(self, name, spec)
        self._set_seed(seed)
        self._state = None
        self._mask = None
        self._defer_mask_check = self.device.type != "cpu"
        self._unchecked: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _to_jax(self, tensor: torch.Tensor):
        """A kernel argument: on CPU the tensor's NumPy view (jit takes it in microseconds, DLPack in about 50),
        on a GPU the same memory through DLPack."""
        if tensor.device.type == "cpu":
            return tensor.contiguous().numpy()
        return self._jax.dlpack.from_dlpack(tensor.contiguous())

    @property
    def packed_sizes(self) -> list[int]:
        """The widths of the entries of one battle's packed kernel output, in order: observations, state, action
        mask, health, alive, and the flags (reward, terminated, truncated, won, dead allies, dead enemies)."""
        n = self.n_agents
        return [n * self.obs_dim, self.state_dim, n * self.n_actions, n, n, 6]

    def unpack(self, flat: torch.Tensor, batch: torch.Size, reward: bool = True, copy: bool = False) -> TensorDict:
        """The env's entries of packed kernel outputs ``flat`` (``[*batch, sum(packed_sizes)]``, on the env's
        device): one step of the battles (``batch`` the env's batch size) or a fused rollout's ``[battles, T]``.
        ``reward=False`` leaves the reward out (after a reset); ``copy``: no entry is a view of ``flat`` (one step's
        output is a fresh array, so its entries may be views; a rollout's rows are read twice, as a step's
        result and the next step's input)."""
        n, a = self.n_agents, self.n_actions
        own = torch.Tensor.contiguous if copy else (lambda x: x)
        obs, state, avail, health, alive, flags = flat.split(self.packed_sizes, dim=-1)
        reward_, terminated, truncated, won, dead_allies, dead_enemies = flags.unbind(-1)
        terminated, truncated = terminated.bool().unsqueeze(-1), truncated.bool().unsqueeze(-1)
        # Every entry is built here with the specs' shapes and device: skip TensorDict's per-entry checks.
        new = TensorDict._new_unsafe
        agents = new({
            "observation": own(obs.reshape(*batch, n, self.obs_dim)),
            "action_mask": avail.reshape(*batch, n, a).bool(),
            "health": own(health.unsqueeze(-1)),
            "alive": alive.bool().unsqueeze(-1),
        }, torch.Size((*batch, n)), device=self.device)
        info = new({
            "battle_won": won.bool(), "episode_limit": truncated.squeeze(-1),
            "dead_allies": dead_allies.long(), "dead_enemies": dead_enemies.long(),
        }, batch, device=self.device)
        entries = {"agents": agents, "state": own(state), "info": info, "terminated": terminated,
                   "truncated": truncated, "done": terminated | truncated}
        if reward:
            entries["reward"] = reward_.unsqueeze(-1) * self.reward_scale
        return new(entries, batch, device=self.device)

    def _unpack(self, packed, reward: bool = True) -> TensorDict:
        flat = torch.from_dlpack(packed)
        if flat.device != self.device:
            flat = flat.to(self.device)
        return self.unpack(flat, self.batch_size, reward)

    def check_pending_actions(self) -> None:
        """Checks the actions of the steps since the last reset (GPU: deferred there to avoid a sync per step)."""
        if self._unchecked:
            actions, masks = zip(*self._unchecked)
            self._unchecked = []
            check_actions(torch.stack(actions), torch.stack(masks))

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        self.check_pending_actions()
        reset = None if tensordict is None else tensordict.get("_reset", None)
        if reset is None or self._state is None:
            mask = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
            self._reset_key, self._state, packed = self._kernels.reset_all(self._reset_key, self._to_jax(mask))
        else:
            mask = reset.reshape(self.batch_size)
            self._reset_key, self._state, packed = self._kernels.reset(self._reset_key, self._state,
                                                                       self._to_jax(mask))
        out = self._unpack(packed, reward=False)
        new_mask = out.get(("agents", "action_mask"))
        self._mask = new_mask if self._mask is None else torch.where(mask.view(-1, 1, 1), new_mask, self._mask)
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = read_actions(tensordict)
        if self.check_action_mask:
            if self._defer_mask_check:
                self._unchecked.append((action, self._mask))
            else:
                check_actions(action, self._mask)
        self._step_key, self._state, packed = self._kernels.step(
            self._step_key, self._state, self._to_jax(action.to(torch.int32)), self.episode_limit)
        out = self._unpack(packed)
        self._mask = out.get(("agents", "action_mask"))
        return out

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions among those the current action mask allows."""
        if tensordict is None:
            tensordict = TensorDict({"agents": {"action_mask": self._mask}}, self.batch_size, device=self.device)
        return masked_rand_action(self.full_action_spec, tensordict)

    @property
    def jax_keys(self) -> tuple:
        """The reset and step JAX keys as they are, on the env's JAX device (no host copy): what a fused rollout
        continues from and hands back (:class:`~torchrl_liir.collectors.FusedSMAXCollector`)."""
        return self._reset_key, self._step_key

    @jax_keys.setter
    def jax_keys(self, keys: tuple) -> None:
        self._reset_key, self._step_key = keys

    def random_state(self) -> dict[str, torch.Tensor]:
        """The reset and step JAX keys (a checkpoint's part: a resumed run plays the same battles)."""
        return {name: torch.as_tensor(self._jax.device_get(key).astype("int64"))
                for name, key in (("reset_key", self._reset_key), ("step_key", self._step_key))}

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None:
        def key(tensor: torch.Tensor):
            return self._jax.device_put(tensor.cpu().numpy().astype("uint32"), self._jax_device)

        self._reset_key, self._step_key = key(state["reset_key"]), key(state["step_key"])

    def _set_seed(self, seed: int | None) -> None:
        # Separate key streams for resets and steps: a battle's episode then does not depend on when the
        # other battles were reset, so stopping a batch early or resetting partially changes no kept step.
        keys = self._jax.random.split(self._jax.random.PRNGKey(int(seed or 0)))
        self._reset_key, self._step_key = (self._jax.device_put(k, self._jax_device) for k in keys)
