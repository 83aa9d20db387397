"""Win rate and return of uniform random play (over the available actions) on a SMAX map: the floor of the
results tables.

    python scripts/random_policy.py --map 3m --episodes 320
"""
from __future__ import annotations

import argparse

from torchrl_liir.collectors import first_episodes
from torchrl_liir.envs import SMAXEnv
from torchrl_liir.envs.smac_layout import masked_rand_action
from torchrl_liir.runtime import configure_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--map", default="3m")
    parser.add_argument("--episodes", type=int, default=320)
    parser.add_argument("--reward-scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (see BENCHMARKS.md)")
    args = parser.parse_args()
    configure_runtime(args.threads)
    env = SMAXEnv(args.map, args.episodes, seed=args.seed, reward_scale=args.reward_scale)
    rollout = env.rollout(env.episode_limit, lambda td: masked_rand_action(env.full_action_spec, td),
                          break_when_any_done=False)
    stats = first_episodes(rollout)
    print(f"SMAX {args.map}, {stats['won'].numel()} episodes of random play (seed {args.seed}): "
          f"win rate {stats['won'].float().mean().item():.3f}, return {stats['return'].mean().item():.2f}, "
          f"length {stats['length'].mean().item():.1f}")


if __name__ == "__main__":
    main()
