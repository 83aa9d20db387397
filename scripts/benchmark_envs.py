"""Battle throughput: SMAXEnv (one jitted, vmapped JAX call per step) vs a per-battle Python loop.

    python scripts/benchmark_envs.py                     # CPU, Markdown table to stdout
    python scripts/benchmark_envs.py --device cuda --battles 32 1024 4096

Both sides play the same SMAX 3m battles with uniform random actions inside the mask
(auto-reset included): SMAXEnv steps all battles at once; the loop is a SerialEnv of
SMACEnv(SMAXSmacAPI), i.e. the SMAC code path, one battle per call.
"""
from __future__ import annotations

import argparse
import time

import torch
from torchrl.envs import EnvBase, SerialEnv

from torchrl_liir.envs import SMACEnv, SMAXEnv, SMAXSmacAPI
from torchrl_liir.envs.smac_layout import masked_rand_action
from torchrl_liir.trainers.trainer import describe_machine


def steps_per_second(env: EnvBase, steps: int, warmup: int = 100) -> float:
    """Battle-steps per second (env steps × battles) of random masked play with auto-reset.

    The warm-up outlasts a battle, so the partial-reset kernel is compiled before timing starts.
    """
    td = env.reset()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        td = masked_rand_action(env.full_action_spec, td)
        _, td = env.step_and_maybe_reset(td)
    if env.device.type == "cuda":
        torch.cuda.synchronize(env.device)
    return steps * env.batch_size.numel() / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--map", default="3m")
    parser.add_argument("--battles", type=int, nargs="+", default=[8, 32, 256, 1024])
    parser.add_argument("--loop-battles", type=int, nargs="+", default=[8, 32], help="battles for the Python loop")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = describe_machine(device)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    print(f"{machine['device']}; {versions}; torch threads {torch.get_num_threads()}; map {args.map}; "
          f"{args.steps} steps after 100 warm-up (loop: a quarter, after 20)\n")
    print("| battles | SMAXEnv (battle-steps/s) | per-battle loop (battle-steps/s) | SMAXEnv speed-up |")
    print("|---|---|---|---|")
    for battles in args.battles:
        batched = steps_per_second(SMAXEnv(args.map, battles, device=device), args.steps)
        loop, ratio = "—", "—"
        if battles in args.loop_battles:
            serial = SerialEnv(battles, lambda: SMACEnv(SMAXSmacAPI(args.map), device=device))
            looped = steps_per_second(serial, max(args.steps // 4, 10), warmup=20)
            serial.close()
            loop, ratio = f"{looped:,.0f}", f"{batched / looped:.1f}×"
        print(f"| {battles} | {batched:,.0f} | {loop} | {ratio} |")


if __name__ == "__main__":
    main()
