"""The fused-JAX ceiling: SMAX battles and a plain-JAX policy rolled out inside one jitted ``lax.scan``.

No torch, no host round trip per step: this is the collection rate a fully fused JAX pipeline reaches on
this machine, the bound the TorchRL ``SMAXEnv`` + torch policy loop can be compared against.

    OMP_NUM_THREADS=1 python scripts/benchmark_ceiling.py                      # Markdown table to stdout
    OMP_NUM_THREADS=1 python scripts/benchmark_ceiling.py --battles 32 256 --policies mlp
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxmarl import make
from jaxmarl.environments.smax import map_name_to_scenario

HIDDEN = 64
POLICIES = ("mlp", "gru")


def _dense(key: jax.Array, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """A linear layer with LeCun-normal weights and zero bias."""
    return {"w": jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in), "b": jnp.zeros(n_out)}


def _linear(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ layer["w"] + layer["b"]


def init_policy(key: jax.Array, policy: str, obs_dim: int, n_actions: int) -> dict[str, Any]:
    """Parameters shared by agents: ``mlp`` obs → 64 → 64 → logits; ``gru`` obs → 64 → GRU-64 → logits."""
    keys = jax.random.split(key, 4)
    if policy == "mlp":
        return {"fc1": _dense(keys[0], obs_dim, HIDDEN), "fc2": _dense(keys[1], HIDDEN, HIDDEN),
                "out": _dense(keys[2], HIDDEN, n_actions)}
    if policy == "gru":
        # Gates packed as [reset, update, candidate]; the candidate's hidden part is gated by ``reset``.
        return {"fc1": _dense(keys[0], obs_dim, HIDDEN), "gru_x": _dense(keys[1], HIDDEN, 3 * HIDDEN),
                "gru_h": _dense(keys[2], HIDDEN, 3 * HIDDEN), "out": _dense(keys[3], HIDDEN, n_actions)}
    raise ValueError(f"policy={policy!r}: expected one of {POLICIES}")


def policy_logits(params: dict[str, Any], obs: jax.Array, hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Logits and next hidden state for ``obs`` of shape ``(..., obs_dim)`` (the MLP passes ``hidden`` through)."""
    x = jax.nn.relu(_linear(params["fc1"], obs))
    if "fc2" in params:
        return _linear(params["out"], jax.nn.relu(_linear(params["fc2"], x))), hidden
    xr, xz, xn = jnp.split(_linear(params["gru_x"], x), 3, axis=-1)
    hr, hz, hn = jnp.split(_linear(params["gru_h"], hidden), 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    hidden = (1.0 - z) * jnp.tanh(xn + r * hn) + z * hidden
    return _linear(params["out"], hidden), hidden


Rollout = Callable[[dict[str, Any], tuple], tuple[tuple, dict[str, jax.Array]]]


def make_rollout(map_name: str, policy: str, battles: int, steps: int) -> tuple[Any, dict[str, Any], tuple, Rollout]:
    """The SMAX env, initial ``(params, carry)`` and the un-jitted ``rollout(params, carry) -> (carry, trajectory)``.

    The carry holds the PRNG key, the battles' states, observations, action masks, GRU hidden states and the
    previous step's dones; ``rollout`` continues from it, so successive calls collect one long stream. SMAX's
    ``step`` auto-resets finished battles (SMAX's default ``max_steps=100`` bounds an episode).
    """
    env = make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name))
    agents = env.agents
    obs_dim = env.observation_spaces[agents[0]].shape[0]
    n_actions = env.action_spaces[agents[0]].n

    def observe(obs_dict: dict[str, jax.Array], state: Any) -> tuple[jax.Array, jax.Array]:
        avail = env.get_avail_actions(state)
        return jnp.stack([obs_dict[a] for a in agents]), jnp.stack([avail[a] for a in agents])

    def reset_one(key: jax.Array) -> tuple[Any, jax.Array, jax.Array]:
        obs_dict, state = env.reset(key)
        return (state, *observe(obs_dict, state))

    def step_one(key: jax.Array, state: Any, action: jax.Array) -> tuple[Any, jax.Array, jax.Array, jax.Array, Any]:
        obs_dict, state, rewards, dones, _ = env.step(key, state, {a: action[i] for i, a in enumerate(agents)})
        obs, avail = observe(obs_dict, state)
        return state, obs, avail, jnp.stack([rewards[a] for a in agents]), dones["__all__"]

    def scan_step(params: dict[str, Any], carry: tuple, _: None) -> tuple[tuple, dict[str, jax.Array]]:
        key, states, obs, avail, hidden, done = carry
        key, act_key, env_key = jax.random.split(key, 3)
        hidden = jnp.where(done[:, None, None], 0.0, hidden)  # a new episode starts with a zero hidden state
        logits, hidden = policy_logits(params, obs, hidden)
        logits = jnp.where(avail.astype(bool), logits, -jnp.inf)
        actions = jax.random.categorical(act_key, logits)
        states, next_obs, avail, rewards, done = jax.vmap(step_one)(jax.random.split(env_key, battles), states, actions)
        return (key, states, next_obs, avail, hidden, done), {"obs": obs, "action": actions, "reward": rewards,
                                                              "done": done}

    def rollout(params: dict[str, Any], carry: tuple) -> tuple[tuple, dict[str, jax.Array]]:
        return jax.lax.scan(lambda c, x: scan_step(params, c, x), carry, None, length=steps)

    key, init_key, reset_key = jax.random.split(jax.random.PRNGKey(0), 3)
    params = init_policy(init_key, policy, obs_dim, n_actions)
    states, obs, avail = jax.jit(jax.vmap(reset_one))(jax.random.split(reset_key, battles))
    hidden = jnp.zeros((battles, env.num_agents, HIDDEN))
    carry = (key, states, obs, avail, hidden, jnp.ones(battles, dtype=bool))
    return env, params, carry, rollout


def fused_jax_ceiling(map_name: str = "3m", battles: int = 32, steps: int = 200, policy: str = "mlp",
                      repeats: int = 5) -> dict[str, Any]:
    """Median steady collection rate of ``steps`` SMAX steps × ``battles`` battles in one jitted scan.

    Compiles once (timed as ``compile_s``: trace, lower and XLA compile), runs one warm-up call, then times
    ``repeats`` calls, each continuing from the last one's carry and waited on with ``block_until_ready``.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r}: expected one of {POLICIES}")
    env, params, carry, rollout = make_rollout(map_name, policy, battles, steps)
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(params, carry).compile()
    compile_s = time.perf_counter() - start
    carry, trajectory = compiled(params, carry)
    jax.block_until_ready((carry, trajectory))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        carry, trajectory = compiled(params, carry)
        jax.block_until_ready((carry, trajectory))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    device = jax.devices()[0]
    return {
        "map": map_name, "battles": battles, "steps": steps, "policy": policy,
        "battle_steps_per_s": steps * battles / seconds,
        "agent_steps_per_s": steps * battles * env.num_agents / seconds,
        "seconds_per_call": seconds, "compile_s": compile_s, "jax": jax.__version__,
        "device": f"{device.platform}:{device.device_kind}", "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="3m")
    parser.add_argument("--battles", type=int, nargs="+", default=[32, 256, 1024, 4096])
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [fused_jax_ceiling(args.map, b, args.steps, p, args.repeats) for p in args.policies for b in args.battles]
    print(f"Fused JAX ceiling, map {args.map}, {args.steps} steps per scan call, jax {rows[0]['jax']} on "
          f"{rows[0]['device']}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')!r}\n")
    print("| policy | battles | battle-steps/s | agent-steps/s | s per call | compile s | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['policy']} | {r['battles']} | {r['battle_steps_per_s']:,.0f} | {r['agent_steps_per_s']:,.0f} | "
              f"{r['seconds_per_call']:.3f} | {r['compile_s']:.1f} | {r['load_average']:.2f} |")


if __name__ == "__main__":
    main()
