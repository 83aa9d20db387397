"""Time LIIRLoss's two meta-gradient implementations side by side (same batch, same networks).

    python scripts/benchmark.py                  # CPU, writes a Markdown table to stdout
    python scripts/benchmark.py --device cuda --repeats 20
"""
from __future__ import annotations

import argparse
import platform
import time

import tensordict
import torch
import torchrl
from tensordict import TensorDict

from torchrl_liir import (
    InnerStep,
    LIIRLoss,
    make_extrinsic_critic,
    make_gru_policy,
    make_intrinsic_reward,
    make_mlp_policy,
    make_proxy_critic,
)

# (name, episodes, steps, agents, obs_dim, actions, state_dim, policy)
SIZES = [
    ("pursuit", 32, 20, 2, 2, 3, 2, "mlp"),
    ("smac-3m-like", 32, 60, 3, 30, 9, 48, "gru"),
    ("smac-8m-like", 32, 120, 8, 80, 14, 168, "gru"),
]


def make_batch(episodes, steps, agents, obs_dim, actions, state_dim, device) -> TensorDict:
    def agent_td(obs):
        return TensorDict({"observation": obs}, [episodes, steps, agents])

    done = torch.zeros(episodes, steps, 1, dtype=torch.bool, device=device)
    done[:, -1] = True
    is_init = torch.zeros_like(done)
    is_init[:, 0] = True
    td = TensorDict(
        {
            "agents": agent_td(torch.randn(episodes, steps, agents, obs_dim, device=device)),
            "state": torch.randn(episodes, steps, state_dim, device=device),
            "is_init": is_init,
            "next": {
                "agents": agent_td(torch.randn(episodes, steps, agents, obs_dim, device=device)),
                "state": torch.randn(episodes, steps, state_dim, device=device),
                "reward": torch.randn(episodes, steps, 1, device=device),
                "done": done,
                "terminated": done.clone(),
            },
        },
        [episodes, steps],
        device=device,
    )
    td["agents", "action_mask"] = torch.ones(episodes, steps, agents, actions, dtype=torch.bool, device=device)
    td["agents", "action"] = torch.randint(0, actions, (episodes, steps, agents), device=device)
    return td


def time_loss(loss: LIIRLoss, batch: TensorDict, repeats: int, device: str) -> float:
    """Median seconds of one loss forward + full backward."""
    times = []
    for i in range(repeats + 2):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = loss(batch)
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = args.device
    cpu = f"{platform.machine()} CPU"
    print(f"device: {torch.cuda.get_device_name() if device.startswith('cuda') else cpu}"
          f" ({torch.get_num_threads()} threads); torch {torch.__version__}, torchrl {torchrl.__version__}, "
          f"tensordict {tensordict.__version__}; median of {args.repeats}\n")
    print("| batch | episodes×steps×agents | policy | reference (s) | fast (s) | fast speed-up |")
    print("|---|---|---|---|---|---|")
    for name, episodes, steps, agents, obs_dim, actions, state_dim, policy in SIZES:
        if policy == "gru":
            actor = make_gru_policy(agents, obs_dim, actions, hidden_size=64, device=device)
        else:
            actor = make_mlp_policy(agents, obs_dim, actions, device=device)
        nets = (
            actor,
            make_intrinsic_reward(obs_dim, actions, agents, device=device),
            make_proxy_critic(obs_dim, agents, device=device),
            make_extrinsic_critic(state_dim, device=device),
        )
        step = InnerStep(torch.optim.RMSprop(actor.parameters(), lr=5e-4), max_grad_norm=10.0)
        batch = make_batch(episodes, steps, agents, obs_dim, actions, state_dim, device)
        seconds = {
            mode: time_loss(LIIRLoss(*nets, inner_step=step, meta_gradient=mode), batch, args.repeats, device)
            for mode in ("reference", "fast")
        }
        print(f"| {name} | {episodes}×{steps}×{agents} | {policy} | {seconds['reference']:.4f} | "
              f"{seconds['fast']:.4f} | {seconds['reference'] / seconds['fast']:.2f}× |")


if __name__ == "__main__":
    main()
