"""Cost of one training update of LIIR (fast and reference meta-gradient), IAC and MAPPO on the same batch.

    python scripts/benchmark_update.py                  # CPU, one thread, Markdown table on stdout
    python scripts/benchmark_update.py --device cuda --repeats 20

One update is what the trainer does with a batch: loss forward, one backward of the sum of the
``loss_*`` terms, the policy gradient clipped to norm 10, every optimiser stepped (MAPPO: GAE over the
padded batch, then one epoch of one minibatch of its valid steps, a GRU in step mode). Networks and
hyper-parameters are those the trainer builds from ``torchrl_liir/conf/algo/{liir,iac,mappo}.yaml`` (LIIR's proxy
critic reads the state, IAC's critic V(o_i); StarCraft sizes: normalised advantages, dead agents
masked). Methods are timed interleaved (one update of each, in turn, per round), median over rounds
after warm-up. Peak memory of the LIIR update, each configuration in a fresh subprocess: on CUDA
``torch.cuda.max_memory_allocated`` over the second update minus the memory allocated before it; on
CPU the peak resident set size (``VmHWM``, reset just before) during the first full-size update,
after one on a tiny batch (one-off initialisation, optimiser state), minus the resident set size just
before, with glibc's mmap threshold fixed at 64 KiB so that freed tensors go back to the system and
the peak tracks live tensor memory.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.modules import set_recurrent_mode

import torchrl_liir
from torchrl_liir import (
    EpisodeMAPPOLoss,
    InnerStep,
    LIIRLoss,
    MultiAgentActorCriticLoss,
    make_extrinsic_critic,
    make_gru_policy,
    make_intrinsic_reward,
    make_mlp_policy,
    make_proxy_critic,
)
from torchrl_liir.modules import make_agent_value_critic

METHODS = ("liir_fast", "liir_reference", "iac", "mappo")
MAX_GRAD_NORM = 10.0
HIDDEN = 64
PADDING_MASK = ("collector", "mask")
AGENT_MASK = ("agents", "alive")


@dataclass(frozen=True)
class Size:
    """One batch size: ``episodes × steps × agents`` and the env's dimensions."""

    name: str
    episodes: int
    steps: int
    agents: int
    obs_dim: int
    actions: int
    state_dim: int
    policy: str
    starcraft: bool


SIZES = (
    Size("pursuit", 32, 20, 2, 2, 3, 2, "mlp", starcraft=False),
    Size("smac-3m", 32, 60, 3, 30, 9, 48, "gru", starcraft=True),
    Size("smac-8m", 32, 120, 8, 80, 14, 168, "gru", starcraft=True),
)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _policy(size: Size, device: str) -> torch.nn.Module:
    if size.policy == "gru":
        return make_gru_policy(size.agents, size.obs_dim, size.actions, hidden_size=HIDDEN, device=device,
                               action_mask_key=("agents", "action_mask"))
    return make_mlp_policy(size.agents, size.obs_dim, size.actions, device=device,
                           action_mask_key=("agents", "action_mask"))


def make_batch(size: Size, device: str, seed: int = 0) -> TensorDict:
    """Padded episodes of random length in ``[steps/2, steps]`` with random masks and deaths.

    Actions, their log-probabilities and the policy's hidden states come from a GRU or MLP
    policy run over the batch, as a collector stores them.
    """
    g = torch.Generator().manual_seed(seed)
    e, t, n = size.episodes, size.steps, size.agents
    lengths = torch.randint(t // 2, t + 1, (e,), generator=g)
    steps = torch.arange(t)
    valid = steps < lengths.unsqueeze(-1)
    done = (steps == (lengths - 1).unsqueeze(-1)).unsqueeze(-1)
    is_init = torch.zeros(e, t, 1, dtype=torch.bool)
    is_init[:, 0] = True
    mask = torch.rand(e, t, n, size.actions, generator=g) > 0.3
    mask[..., 0] = True
    alive = (torch.rand(e, t, n, generator=g) > 0.01).cumprod(dim=1).bool()
    batch = TensorDict(
        {
            "agents": TensorDict({"observation": torch.randn(e, t, n, size.obs_dim, generator=g),
                                  "action_mask": mask, "alive": alive}, [e, t, n]),
            "state": torch.randn(e, t, size.state_dim, generator=g),
            "is_init": is_init,
            "collector": {"mask": valid},
            "next": {
                "agents": TensorDict({"observation": torch.randn(e, t, n, size.obs_dim, generator=g),
                                      "alive": torch.cat([alive[:, 1:], alive[:, -1:]], dim=1)}, [e, t, n]),
                "state": torch.randn(e, t, size.state_dim, generator=g),
                "reward": torch.randn(e, t, 1, generator=g),
                "done": done,
                "terminated": done.clone(),
            },
        },
        [e, t],
    )
    if not size.starcraft:
        del batch["agents", "alive"], batch["next", "agents", "alive"]
    torch.manual_seed(seed)
    actor = _policy(size, "cpu")
    with torch.no_grad(), set_recurrent_mode(True):
        actor(batch)
    if size.policy == "gru":
        hidden = batch.get(("next", "agents", "rnn_hidden"))
        batch.set(("agents", "rnn_hidden"), torch.cat([torch.zeros_like(hidden[:, :1]), hidden[:, :-1]], dim=1))
    return batch.to(device)


def _clip_and_step(optimizers: dict[str, torch.optim.Optimizer]) -> None:
    for name, opt in optimizers.items():
        if name == "policy":
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], MAX_GRAD_NORM)
        opt.step()


def _backward(losses: TensorDictBase, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
    _clip_and_step(optimizers)


def make_update(method: str, size: Size, device: str, seed: int = 0) -> Callable[[TensorDictBase], None]:
    """One training update of ``method`` on a batch of ``size``, with its own networks and optimisers."""
    torch.manual_seed(seed)
    actor = _policy(size, device)
    n, obs, state = size.agents, size.obs_dim, size.state_dim
    if method == "mappo":
        critic = make_agent_value_critic(state, n, device=device)
        loss = EpisodeMAPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coeff=0.01, critic_coeff=1.0,
                                gamma=0.99, lmbda=0.95)
        optimizers = {"policy": torch.optim.Adam(actor.parameters(), lr=5e-4),
                      "critic": torch.optim.Adam(critic.parameters(), lr=5e-4)}

        def update(batch: TensorDictBase) -> None:
            steps = loss.add_advantage(batch)[batch.get(PADDING_MASK)]
            _backward(loss(steps), optimizers)

        return update
    optimizers = {"policy": torch.optim.RMSprop(actor.parameters(), lr=5e-3, alpha=0.99, eps=1e-5)}
    if method == "iac":
        critic = make_proxy_critic(obs, n, out_key=("agents", "state_value"), device=device)
        loss = MultiAgentActorCriticLoss(actor, critic, n, entropy_coeff=0.01, normalize_advantage=size.starcraft,
                                         gamma=0.99, lmbda=0.8)
        optimizers["critic"] = torch.optim.Adam(critic.parameters(), lr=5e-3)
    else:
        intrinsic = make_intrinsic_reward(obs, size.actions, n, device=device)
        proxy = make_proxy_critic(obs, n, state_dim=state, device=device)
        extrinsic = make_extrinsic_critic(state, device=device)
        loss = LIIRLoss(actor, intrinsic, proxy, extrinsic,
                        inner_step=InnerStep(optimizers["policy"], MAX_GRAD_NORM), lambda_in=0.01,
                        entropy_coeff=0.01, normalize_advantage=size.starcraft,
                        meta_gradient="fast" if method == "liir_fast" else "reference", gamma=0.99, lmbda=0.8)
        optimizers["intrinsic"] = torch.optim.Adam(intrinsic.parameters(), lr=1e-3)
        optimizers["critic"] = torch.optim.Adam([*proxy.parameters(), *extrinsic.parameters()], lr=5e-3)
    if size.starcraft:
        loss.set_keys(agent_mask=AGENT_MASK)

    def update(batch: TensorDictBase) -> None:
        _backward(loss(batch), optimizers)

    return update


def time_updates(size: Size, device: str, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of one update per method, the methods interleaved round by round."""
    batch = make_batch(size, device)
    updates = {m: make_update(m, size, device) for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for round_ in range(warmup + repeats):
        for method, update in updates.items():
            _sync(device)
            start = time.perf_counter()
            update(batch)
            _sync(device)
            if round_ >= warmup:
                times[method].append(time.perf_counter() - start)
    return {m: statistics.median(v) for m, v in times.items()}


def _proc_status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024


def peak_memory(method: str, size: Size, device: str) -> int:
    """Peak bytes one update of ``method`` adds over what is allocated before it (see the module docstring)."""
    batch = make_batch(size, device)
    update = make_update(method, size, device)
    if device.startswith("cuda"):
        update(batch)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        update(batch)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    # One-off costs (lazy initialisation, optimiser state) on a tiny batch, leaving the heap nearly empty.
    update(make_batch(replace(size, episodes=2, steps=4), device))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current resident set size
    before = _proc_status_bytes("VmRSS")
    update(batch)
    return _proc_status_bytes("VmHWM") - before


def _peak_memory_in_subprocess(method: str, size: Size, device: str) -> int:
    """:func:`peak_memory` in a fresh interpreter importing the same ``torchrl_liir`` and this module."""
    paths = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(torchrl_liir.__file__))]
    code = (f"import sys; sys.path[:0] = {paths!r}; import json, torch; "
            f"torch.set_num_threads({torch.get_num_threads()}); import benchmark_update as b; "
            f"print(b.peak_memory({method!r}, b.Size(**json.loads({json.dumps(json.dumps(asdict(size)))})), "
            f"{device!r}))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def update_cost_rows(device: str = "cpu", repeats: int = 10) -> list[dict]:
    """One row per size: seconds per update of each method, LIIR / IAC and fast / reference, LIIR peak memory."""
    rows = []
    for size in SIZES:
        seconds = time_updates(size, device, repeats)
        memory = {m: _peak_memory_in_subprocess(m, size, device) for m in ("liir_fast", "liir_reference")}
        rows.append({
            "size": size.name,
            "shape": f"{size.episodes}×{size.steps}×{size.agents}",
            "policy": size.policy,
            **{f"{m}_s": s for m, s in seconds.items()},
            "liir_over_iac": seconds["liir_fast"] / seconds["iac"],
            "fast_over_reference": seconds["liir_fast"] / seconds["liir_reference"],
            "liir_fast_peak_mib": memory["liir_fast"] / 2**20,
            "liir_reference_peak_mib": memory["liir_reference"] / 2**20,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = f"{platform.machine()} CPU"
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu
    print(f"device: {device_name} ({torch.get_num_threads()} thread); torch {torch.__version__}; "
          f"median of {args.repeats} interleaved rounds; load average {os.getloadavg()[0]:.2f}\n")
    print("| batch | episodes×steps×agents | policy | LIIR fast (s) | LIIR reference (s) | IAC (s) | MAPPO (s) "
          "| LIIR / IAC | fast / reference | peak MiB fast | peak MiB reference |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in update_cost_rows(args.device, args.repeats):
        print(f"| {r['size']} | {r['shape']} | {r['policy']} | {r['liir_fast_s']:.4f} | {r['liir_reference_s']:.4f} "
              f"| {r['iac_s']:.4f} | {r['mappo_s']:.4f} | {r['liir_over_iac']:.2f}× | {r['fast_over_reference']:.2f} "
              f"| {r['liir_fast_peak_mib']:.0f} | {r['liir_reference_peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
