"""Shared fixtures: random multi-agent batches and an independent TD(λ) reference."""
from __future__ import annotations

import importlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from torchrl_liir.runtime import configure_runtime

# One torch thread per process (more stall in OpenMP barriers on these small tensors) and JAX's compile cache.
configure_runtime(threads=1)

N_AGENTS, OBS_DIM, N_ACTIONS, STATE_DIM = 3, 4, 5, 6


def pytest_collection_modifyitems(items):
    """The tests marked slow first, in their order: the parallel workers (pytest-xdist) then end on short tests."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run_in_process(command: list[str], capsys: pytest.CaptureFixture) -> subprocess.CompletedProcess:
    """``command`` (``[python, scripts/<name>.py, *args]``) as ``main(args)`` of the script, in this process.

    It ends as the program would: return code 0, argparse's 2, or 1 with the message of ``sys.exit("error: ...")``
    on stderr. A test runs its script as a program once; its further calls of it skip starting Python and the
    imports (seconds each).
    """
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    capsys.readouterr()
    try:
        importlib.import_module(Path(command[1]).stem).main(command[2:])
        code = 0
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            code = exit.code or 0
        else:  # sys.exit(message): Python prints the message to stderr and exits with 1
            print(exit.code, file=sys.stderr)
            code = 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(command, code, out, err)


def smax_west_edge_steps(env) -> int:
    """The most steps after which every ally of a SMAXEnv walking west has touched the map's west edge, from SMAX's
    constants (not measured): an ally starts at x = map_width / 4, moved by at most 2 (the start noise) and by at
    most one radius per other ally (pushed apart at reset); a step moves it velocity * time_per_step in each of the
    step's world steps."""
    smax = env._smax
    types = smax.scenario[:env.n_agents]
    start = smax.map_width / 4 + 2 + (env.n_agents - 1) * float(smax.unit_type_radiuses[types].max())
    speed = float(smax.unit_type_velocities[types].min()) * smax.time_per_step * smax.world_steps_per_env_step
    return math.ceil(start / speed)


def hand_td_lambda(reward, value, next_value, done, terminated, gamma, lmbda):
    """TD(λ) return and advantage by the textbook backward recursion over dim 1 (time)."""
    steps = reward.shape[1]
    ret = torch.zeros_like(reward)
    for t in reversed(range(steps)):
        bootstrap = next_value[:, t]
        if t < steps - 1:
            mixed = (1 - lmbda) * next_value[:, t] + lmbda * ret[:, t + 1]
            bootstrap = torch.where(done[:, t], next_value[:, t], mixed)
        ret[:, t] = reward[:, t] + gamma * (~terminated[:, t]) * bootstrap
    return ret, ret - value


def agent_end_flags(batch: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-agent ``(done, terminated)`` ``[B, T, n, 1]``: the team's flags (a death ends no return)."""
    nxt = batch["next"]
    shape = (*batch.batch_size, N_AGENTS, 1)
    return nxt["done"].unsqueeze(-2).expand(shape), nxt["terminated"].unsqueeze(-2).expand(shape)


def alive_r_in(batch: TensorDict, r_in: torch.Tensor) -> torch.Tensor:
    """r_in of the agents alive when acting; 0 for dead ones (they take no decision)."""
    alive = batch.get(("agents", "alive"), torch.ones(*batch.batch_size, N_AGENTS, dtype=torch.bool))
    return r_in * alive.unsqueeze(-1)


def random_batch(actor=None, batch=4, steps=6, padding=True, dead_agents=True, seed=0) -> TensorDict:
    """A ``[batch, steps]`` multi-agent batch with random masks, episode ends, padding and dead agents.

    Actions are sampled from ``actor`` (so they respect the masks) when given.
    """
    g = torch.Generator().manual_seed(seed)
    dtype = torch.get_default_dtype()
    mask = torch.rand(batch, steps, N_AGENTS, N_ACTIONS, generator=g) > 0.4
    mask[..., 0] = True
    done = torch.rand(batch, steps, 1, generator=g) > 0.75
    if padding:
        done[0, steps - 3] = True  # the padded row's last real step ends its episode
    terminated = done & (torch.rand(batch, steps, 1, generator=g) > 0.5)
    is_init = torch.zeros(batch, steps, 1, dtype=torch.bool)
    is_init[:, 0] = True
    is_init[:, 1:] = done[:, :-1]
    td = TensorDict(
        {
            "agents": TensorDict(
                {"observation": torch.randn(batch, steps, N_AGENTS, OBS_DIM, generator=g, dtype=dtype),
                 "action_mask": mask},
                [batch, steps, N_AGENTS],
            ),
            "state": torch.randn(batch, steps, STATE_DIM, generator=g, dtype=dtype),
            "is_init": is_init,
            "next": {
                "agents": TensorDict(
                    {"observation": torch.randn(batch, steps, N_AGENTS, OBS_DIM, generator=g, dtype=dtype)},
                    [batch, steps, N_AGENTS],
                ),
                "state": torch.randn(batch, steps, STATE_DIM, generator=g, dtype=dtype),
                "reward": torch.randn(batch, steps, 1, generator=g, dtype=dtype),
                "done": done,
                "terminated": terminated,
            },
        },
        [batch, steps],
    )
    # Within an episode, the next observation at t is the observation at t + 1.
    for t in range(steps - 1):
        cont = ~done[:, t, 0]
        for key in (("agents", "observation"), "state"):
            td[key][cont, t + 1] = td["next", key][cont, t]
    if padding:
        valid = torch.ones(batch, steps, dtype=torch.bool)
        valid[0, steps - 2:] = False
        td["collector", "mask"] = valid
    if dead_agents:
        # Agents die for good (within the row); the env reports who is alive after each step too.
        alive = (torch.rand(batch, steps, N_AGENTS, generator=g) > 0.15).cumprod(dim=1).bool()
        td["agents", "alive"] = alive
        td["next", "agents", "alive"] = torch.cat([alive[:, 1:], alive[:, -1:]], dim=1)
    if actor is not None:
        from torchrl.modules import set_recurrent_mode

        with torch.no_grad(), set_recurrent_mode(True):
            actor(td)
    else:
        td["agents", "action"] = torch.zeros(batch, steps, N_AGENTS, dtype=torch.long)
    return td


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
