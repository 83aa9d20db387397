"""Evaluate trained runs on many test episodes with fixed seeds shared by every run: greedy and stochastic policy.

    python scripts/evaluate_runs.py runs/<run A> runs/<run B> --episodes 500 --out runs/evaluation.json

Each run's latest intact checkpoint plays ``--episodes`` episodes greedily and again with its stochastic policy (for
IQL and QMIX: ε-greedy at the ε the run reached, 0.05 after annealing), on test envs seeded with ``--seed``
(the same battles, in the same order, for every run, so methods are compared on equal terms). Prints a Markdown
table (win rate with its 95 % Wilson interval, return) and writes the numbers as JSON to ``--out``, each run's with
the step of the checkpoint it played (``checkpoint_frames``: ``scripts/results_table.py`` refuses an entry whose run
has since gone further); nothing is written into the run directories.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from run_records import env_of, method_of
from torchrl.envs.utils import ExplorationType
from tqdm import tqdm

from torchrl_liir.runtime import configure_runtime
from torchrl_liir.tasks import get_task
from torchrl_liir.trainers import load_run
from torchrl_liir.trainers.evaluation import play_episodes, wilson_interval
from torchrl_liir.trainers.trainer import make_env

POLICIES = {"greedy": ExplorationType.DETERMINISTIC, "stochastic": ExplorationType.RANDOM}


def evaluate_run(run_dir: Path, episodes: int, seed: int, device: str) -> dict:
    """Greedy and stochastic results of one run on ``episodes`` episodes from envs seeded with ``seed``."""
    run = load_run(run_dir, device)
    cfg, recipe = run.config, run.recipe
    task = get_task(cfg.task.name)
    out = {"run": str(run_dir), "env": env_of(cfg), "algo": cfg.algo.name,
           "method": method_of(cfg), "train_seed": cfg.seed, "checkpoint_frames": run.frames,
           "episodes": episodes, "eval_seed": seed}
    for name, exploration in POLICIES.items():
        torch.manual_seed(seed)  # the stochastic policy's samples, and any env drawing from torch's generator
        env = make_env(task, cfg, torch.device(device), task.test_envs(cfg), seed, recipe.actor)
        try:
            stats = play_episodes(env, recipe.actor, episodes, task.episode_limit(cfg), exploration)
        finally:
            env.close(raise_if_closed=False)
        out[name] = {"return": stats["return"].mean().item()}
        if "won" in stats:
            wins = int(stats["won"].sum().item())
            out[name].update(win_rate=wins / episodes, win_rate_95=wilson_interval(wins, episodes))
    return out


def markdown(results: list[dict]) -> str:
    lines = ["| run | env | method | seed | greedy win rate (95 % CI) | greedy return | stochastic win rate (95 % CI) "
             "| stochastic return |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = []
        for name in POLICIES:
            part = r[name]
            rate = (f"{part['win_rate']:.3f} ({part['win_rate_95'][0]:.3f}–{part['win_rate_95'][1]:.3f})"
                    if "win_rate" in part else "—")
            cells += [rate, f"{part['return']:.3f}"]
        run = Path(r["run"]).name
        lines.append(f"| {run} | {r['env']} | {r['method']} | {r['train_seed']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=12345, help="test envs' seed, shared by every run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (see BENCHMARKS.md)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the numbers")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        sys.exit(f"error: --episodes={args.episodes}: must be >= 1")
    if args.out is not None and args.out.exists():
        sys.exit(f"error: {args.out} exists; pick another --out")
    configure_runtime(args.threads)
    try:
        results = [evaluate_run(run_dir, args.episodes, args.seed, args.device)
                   for run_dir in tqdm(args.run_dirs, unit="run")]
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(markdown(results))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
