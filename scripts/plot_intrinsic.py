"""Intrinsic-reward case study of a trained LIIR run on a StarCraft map (paper §5.2.3, Figs. 4 and 5).

    python scripts/plot_intrinsic.py runs/<run>                  # 100 greedy test episodes
    python scripts/plot_intrinsic.py runs/<run> --episodes 100 --episode 3

Writes intrinsic_reward_episode.png (one episode: each agent's r_in and health,
deaths marked) and intrinsic_reward_statistic.json (cosine similarity of health
and r_in for attacks below 50 % health) into the run directory (or --out).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from torchrl_liir.runtime import configure_runtime
from torchrl_liir.studies.starcraft_case_study import intrinsic_reward_case_study
from torchrl_liir.tasks import get_task
from torchrl_liir.trainers import CheckpointFileError, load_run
from torchrl_liir.trainers.trainer import make_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a LIIR training run directory on task=smax or task=smac")
    parser.add_argument("--episodes", type=int, default=100, help="greedy test episodes (paper: 100)")
    parser.add_argument("--episode", type=int, default=None, help="which episode to plot (default: random)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test battles and of the random pick")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: the run directory)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (see BENCHMARKS.md)")
    args = parser.parse_args(argv)
    configure_runtime(args.threads)
    try:
        cfg, recipe, _ = load_run(args.run_dir, args.device)
    except (FileNotFoundError, CheckpointFileError) as err:
        sys.exit(f"error: {err}")
    if recipe.intrinsic_reward is None or cfg.task.name == "pursuit":
        sys.exit(f"error: {args.run_dir} is not a LIIR run on a StarCraft env (algo={cfg.algo.name}, "
                 f"task={cfg.task.name}); for pursuit see fig2_intrinsic_reward.png in the run directory")
    if args.episodes < 1:
        sys.exit(f"error: --episodes={args.episodes} must be >= 1")
    task = get_task(cfg.task.name)
    env = make_env(task, cfg, torch.device(args.device), args.episodes, args.seed + 20_000, recipe.actor)
    n_enemies = int(env.observation_spec["info", "dead_enemies"].space.high.max())
    stats = intrinsic_reward_case_study(
        env, recipe.actor, recipe.intrinsic_reward, n_enemies, task.episode_limit(cfg),
        args.out or args.run_dir, title=f"LIIR on {cfg.task.name} {cfg.task.map}", episode=args.episode, seed=args.seed,
    )
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
