"""EpisodeCollector against FusedSMAXCollector on SMAX: kept battle-steps per second, one torch thread.

Both collect the paper's batches (every battle plays one episode from its start) with the same policy; the
ceiling is the fused collector's compiled program alone (no TensorDict built). Kept = steps of the played
episodes (the batch's ``("collector", "mask")``); stepped = battles × the batch's steps. Steady state: each
round starts with warm-up batches (the first compiles), then the three are timed interleaved.

    python scripts/bench_fused_rollout.py                              # 3m, 32 battles, GRU-64, 3 rounds
    python scripts/bench_fused_rollout.py --policy mlp --battles 64 --batches 20
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def timed(collect: Callable[[], tuple[int, int]], batches: int, warmup: int) -> dict[str, float]:
    """Rates of ``batches`` calls of ``collect() -> (kept, stepped)`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        collect()
    kept = stepped = 0
    start = time.perf_counter()
    for _ in range(batches):
        k, s = collect()
        kept, stepped = kept + k, stepped + s
    seconds = time.perf_counter() - start
    return {"kept": kept / seconds, "stepped": stepped / seconds, "ms_per_batch": 1000 * seconds / batches}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="3m")
    parser.add_argument("--battles", type=int, default=32)
    parser.add_argument("--policy", choices=("gru", "mlp"), default="gru")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per collector and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from torchrl_liir.runtime import configure_runtime

    configure_runtime(threads=1)
    from torchrl.envs import Compose, InitTracker, TransformedEnv

    from torchrl_liir import SMAXEnv, make_gru_policy, make_mlp_policy, policy_primer
    from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector, first_episode_mask
    from torchrl_liir.collectors.fused_smax import FusedSMAXCollector

    torch.manual_seed(0)

    def env(policy=None) -> TransformedEnv:
        primer = policy_primer(policy) if policy is not None else None
        base = SMAXEnv(args.map, args.battles, reward_scale=10.0)
        return TransformedEnv(base, Compose(InitTracker(), *([primer] if primer is not None else [])))

    probe = SMAXEnv(args.map, 1)
    make = make_gru_policy if args.policy == "gru" else make_mlp_policy
    policy = make(probe.n_agents, probe.obs_dim, probe.n_actions, action_mask_key=("agents", "action_mask"))
    episode = EpisodeCollector(env(policy), policy)
    fused = FusedSMAXCollector(env(policy), policy, seed=0)
    layout = fused.layout

    def kept_and_stepped(batch) -> tuple[int, int]:
        return int(batch.get(PADDING_MASK).sum()), args.battles * batch.shape[1]

    def program_only() -> tuple[int, int]:
        buffer, steps = fused.run_program()
        flags = buffer[:, 1:steps + 1, layout.flags + 1:layout.flags + 3]
        done = (flags.sum(-1) > 0.5).unsqueeze(-1)
        return int((first_episode_mask(done) & done[..., 0].any(-1, keepdim=True)).sum()), args.battles * steps

    start = time.perf_counter()
    fused.rollout()
    compile_s = time.perf_counter() - start
    print(f"SMAX {args.map}, {args.battles} battles, {args.policy} policy (sampling), torch threads "
          f"{torch.get_num_threads()}, {args.batches} timed batches per collector and round after {args.warmup} "
          f"warm-up; first fused batch (compile or cache load) {compile_s:.1f} s")
    contenders = {"EpisodeCollector": lambda: kept_and_stepped(episode.rollout()),
                  "FusedSMAXCollector": lambda: kept_and_stepped(fused.rollout()),
                  "fused program alone (ceiling)": program_only}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    print("\n| round | collector | kept steps/s | stepped/s | ms per batch | load average |")
    print("|---:|---|---:|---:|---:|---|")
    for round_ in range(1, args.rounds + 1):
        for name, collect in contenders.items():
            load = load_average()
            rates = timed(collect, args.batches, args.warmup)
            results[name].append(rates)
            print(f"| {round_} | {name} | {rates['kept']:,.0f} | {rates['stepped']:,.0f} | "
                  f"{rates['ms_per_batch']:.1f} | {load} |", flush=True)
    print("\nMedian over rounds:\n\n| collector | kept steps/s | stepped/s | × EpisodeCollector (kept) |")
    print("|---|---:|---:|---:|")
    base = statistics.median(r["kept"] for r in results["EpisodeCollector"])
    for name, rounds in results.items():
        kept = statistics.median(r["kept"] for r in rounds)
        stepped = statistics.median(r["stepped"] for r in rounds)
        print(f"| {name} | {kept:,.0f} | {stepped:,.0f} | {kept / base:.1f}× |")
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
