"""Which runs fall into short episodes that score nothing, when, and whether they stay there.

    python scripts/short_episodes.py results/smax_3s5z_vs_3s6z/runs/* --below 15 --max-return 1 \\
        --title "3s5z_vs_3s6z: batches of short episodes" --out results/smax_3s5z_vs_3s6z/README.md

On SMAX, where a unit touching the map's edge dies, a policy can collapse into walking every ally into the edge:
its episodes end after a few steps with a team return of 0. Per run, the training batches (rows of
``metrics.csv``; archived runs keep every 10th) whose episodes average under ``--below`` steps and a team
return of at most ``--max-return`` (a quick win is short too, but scores), the steps of the first and last of
them, and whether the run ends there (its last 10 rows do too). Per map and method: the runs that had such a
batch and those that end there, by seed; on a map with exactly two methods, Fisher's exact test (two-sided) on
each count. The Markdown is printed and, with ``--out``, written between ``<!-- results:KEY -->`` markers as
results_table.py does.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import block_key, write_between_markers  # noqa: E402
from run_records import env_of, method_label, method_of, method_sort_key, read_metric, refuse_repeated_runs  # noqa: E402

from torchrl_liir.config_checks import ConfigError  # noqa: E402
from torchrl_liir.trainers.config import load_saved_config  # noqa: E402

LAST_ROWS = 10


@dataclass(frozen=True)
class ShortEpisodes:
    """One run's batches of short episodes."""

    seed: int
    batches: int  # rows whose mean episode length and return are under the thresholds
    first: float | None  # steps of the first such row
    last: float | None  # steps of the last such row
    ends_there: bool  # the last LAST_ROWS rows average under both thresholds


def short_episodes(run_dir: Path, seed: int, below: float, max_return: float) -> ShortEpisodes:
    """The rows of the training table of ``run_dir`` (the run of ``seed``) whose mean episode length is under
    ``below`` steps and whose mean team return is at most ``max_return``."""
    lengths, returns = read_metric(run_dir, "episode_length"), read_metric(run_dir, "episode_return")
    if len(lengths) != len(returns) or (lengths[:, 0] != returns[:, 0]).any():
        raise ValueError(f"{run_dir}: episode_length and episode_return are not logged on the same rows")
    short = (lengths[:, 1] < below) & (returns[:, 1] <= max_return)
    steps = lengths[short, 0]
    first, last = (float(steps[0]), float(steps[-1])) if len(steps) else (None, None)
    tail = slice(-LAST_ROWS, None)
    return ShortEpisodes(seed, len(steps), first, last,
                         bool(lengths[tail, 1].mean() < below and returns[tail, 1].mean() <= max_return))


def runs_by_method(run_dirs: list[Path], below: float, max_return: float
                   ) -> dict[tuple[str, str], list[ShortEpisodes]]:
    """``{(map, method): [one ShortEpisodes per run, by seed]}``."""
    refuse_repeated_runs(run_dirs)
    found: dict[tuple[str, str], list[ShortEpisodes]] = defaultdict(list)
    for run_dir in run_dirs:
        cfg = load_saved_config(run_dir / "config.yaml")
        found[env_of(cfg), method_of(cfg)].append(short_episodes(run_dir, int(cfg.seed), below, max_return))
    return {key: sorted(runs, key=lambda r: r.seed) for key, runs in found.items()}


def _seeds(runs: list[ShortEpisodes]) -> str:
    if not runs:
        return "0"
    return f"{len(runs)} (seed{'s' if len(runs) > 1 else ''} {', '.join(str(r.seed) for r in runs)})"


def _span(steps: list[float]) -> str:
    """``0.23M–0.81M``: the earliest and latest of ``steps`` in millions, one value when they agree."""
    if not steps:
        return "—"
    low, high = f"{min(steps) / 1e6:.2f}M", f"{max(steps) / 1e6:.2f}M"
    return low if low == high else f"{low}–{high}"


def fisher_lines(found: dict[tuple[str, str], list[ShortEpisodes]]) -> list[str]:
    """Fisher's exact test on each count, for every map with exactly two methods."""
    lines = []
    for env in sorted({env for env, _ in found}):
        methods = sorted((m for e, m in found if e == env), key=method_sort_key)
        if len(methods) != 2:
            continue
        runs = [found[env, m] for m in methods]
        for what, test in (("had a batch of short episodes", lambda r: r.batches > 0),
                           ("end in them", lambda r: r.ends_there)):
            hits = [sum(map(test, rs)) for rs in runs]
            table = [[h, len(rs) - h] for h, rs in zip(hits, runs)]
            p = stats.fisher_exact(table).pvalue
            lines.append(f"{env}: runs that {what}, {method_label(methods[0])} {table[0][0]} of {len(runs[0])} "
                         f"against {method_label(methods[1])} {table[1][0]} of {len(runs[1])}: Fisher's exact "
                         f"test, two-sided p = {p:.3f}.")
    return lines


def markdown(found: dict[tuple[str, str], list[ShortEpisodes]], title: str, below: float, max_return: float
             ) -> str:
    lines = [f"### {title}", "",
             f"Training batches whose episodes average under {below:g} steps and a team return of at most "
             f"{max_return:g} (archived runs keep every 10th batch); a run ends there when its last {LAST_ROWS} "
             "batches do.", "",
             "| map | method | runs | runs with such batches | steps of their first one | steps of their last one "
             "| runs that end there |",
             "|---|---|---|---|---|---|---|"]
    for (env, method), runs in sorted(found.items(), key=lambda kv: (kv[0][0], method_sort_key(kv[0][1]))):
        hit = [r for r in runs if r.batches]
        lines.append(f"| {env} | {method_label(method)} | {len(runs)} | {_seeds(hit)} | "
                     f"{_span([r.first for r in hit])} | {_span([r.last for r in hit])} | "
                     f"{_seeds([r for r in runs if r.ends_there])} |")
    tests = fisher_lines(found)
    return "\n".join(lines + ([""] + tests if tests else [])) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--below", type=float, required=True, help="a batch's mean episode length, in steps")
    parser.add_argument("--max-return", type=float, required=True, help="a batch's mean team return")
    parser.add_argument("--title", default="Batches of short episodes")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    args = parser.parse_args(argv)
    if args.below <= 0:
        sys.exit(f"error: --below={args.below:g}: must be > 0")
    try:
        found = runs_by_method(args.run_dirs, args.below, args.max_return)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        sys.exit(f"error: {err}")
    text = markdown(found, args.title, args.below, args.max_return)
    print(text)
    if args.out is not None:
        write_between_markers(args.out, args.key or block_key(args.title), text)


if __name__ == "__main__":
    main()
