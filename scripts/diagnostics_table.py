"""The r_in diagnostics of many LIIR runs side by side: one row per map and method, averaged over a window of steps.

    python scripts/diagnostics_table.py results/smax_5m_vs_6m/screen/* results/smax_5m_vs_6m/paired/*_s[149] \\
        --window 0 300000 --title "5m_vs_6m, first 300k steps" --out results/README.md

Per run: the mean of each column of its ``metrics.csv`` (or archived ``metrics.csv.gz``) over the updates whose
steps lie in ``--window``; per row: the mean of those over the runs (the seeds) of one method on one map. The
columns are the policy's entropy and LIIR's diagnostics (``LIIRLoss``'s docstring): r_in's mean, the fraction
near its bound, its spread across a state's actions, the share of the standardised proxy advantage it moves, and
η's step. A run that did not log a column (it ran before the diagnostics, or its r_in is unbounded) is left out
of that cell, which then says over how many of the row's runs it averages. The Markdown is printed and, with
``--out``, written between ``<!-- results:KEY -->`` markers as results_table.py does.

``--per-run`` asks which runs' diagnostics go with which outcomes: one row per run instead, beside its score (with
``--evaluation``, its final greedy policy's win rate on the fixed battles of ``scripts/evaluate_runs.py``; without,
its final test win rate, the mean of its last 3 evaluations) and with its training return over the window, and under
the table, for each method on each map, Spearman's rank correlation between each column and the score over that
method's runs.

    python scripts/diagnostics_table.py results/smax_3s5z_vs_3s6z/safe_walls/* --window 500000 1500000 --per-run \\
        --evaluation results/smax_3s5z_vs_3s6z/safe_walls_evaluation.json
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import add_evaluation, block_key, read_evaluations, run_row, write_between_markers  # noqa: E402
from run_records import env_of, method_label, method_of, method_sort_key, read_metric, refuse_repeated_runs  # noqa: E402
from scipy import stats  # noqa: E402

from torchrl_liir.config_checks import ConfigError  # noqa: E402
from torchrl_liir.trainers.config import load_saved_config  # noqa: E402

COLUMNS = (("entropy", "policy entropy", 2), ("intrinsic_reward", "mean r_in", 2),
           ("r_in_saturated", "r_in above 95 % of its bound", 2),
           ("r_in_spread_actions", "r_in spread across actions", 2),
           ("proxy_advantage_share_r_in", "share of the advantage r_in moves", 3),
           ("update_norm_intrinsic", "η's step ‖Δη‖", 4))
# With --per-run, the training return beside them: whether the runs that end apart already differed in it.
PER_RUN_COLUMNS = (*COLUMNS, ("episode_return", "training return", 2))


def window_mean(run_dir: Path, column: str, start: int, end: int) -> float | None:
    """The mean of ``column`` over the run's updates at steps in ``[start, end]``; None if it did not log it."""
    try:
        values = read_metric(run_dir, column)
    except (FileNotFoundError, ValueError):
        return None
    inside = values[(values[:, 0] >= start) & (values[:, 0] <= end), 1]
    inside = inside[np.isfinite(inside)]
    return float(inside.mean()) if len(inside) else None


def run_windows(run_dirs: list[Path], start: int, end: int, columns: tuple = COLUMNS) -> list[dict]:
    """One dict per run: its map, method, seed and ``{column: window mean or None}`` for each of ``columns``."""
    refuse_repeated_runs(run_dirs)
    runs = []
    for run_dir in run_dirs:
        cfg = load_saved_config(run_dir / "config.yaml")
        runs.append({"env": env_of(cfg), "method": method_of(cfg), "seed": int(cfg.seed),
                     **{name: window_mean(run_dir, name, start, end) for name, _, _ in columns}})
    return runs


def by_method(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """``{(map, method): [run, ...]}`` in the order the runs come."""
    rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in runs:
        rows[run["env"], run["method"]].append(run)
    return rows


def add_scores(runs: list[dict], run_dirs: list[Path], evaluations: list[dict] | None) -> str:
    """Each run's ``score``: its greedy win rate in ``evaluations`` or, without them, its final test win rate (the
    mean of its last 3 evaluations). Returns the score's name for the table's header."""
    if evaluations is None:
        for run, run_dir in zip(runs, run_dirs):
            run["score"] = run_row(run_dir, 3, unfinished=True)["final"]
        return "final test win rate"
    add_evaluation(runs, run_dirs, evaluations)
    for run in runs:
        run["score"] = run.pop("evaluation")["greedy"]
    return "greedy win rate, fixed test battles"


def rank_correlation(values: list[float], scores: list[float]) -> tuple[float, float]:
    """Spearman's ρ (the Pearson correlation of the average ranks) and its two-sided p-value by permutation: exact
    over every pairing up to 7 runs, else over 9,999 random pairings (seed 0), so that a handful of seeds gets no
    p of 0 from the t approximation scipy's ``spearmanr`` uses."""
    x, y = stats.rankdata(values), stats.rankdata(scores)
    x, y = x - x.mean(), y - y.mean()
    norm = np.sqrt((x * x).sum() * (y * y).sum())  # the same for every pairing: permuting x keeps it centred

    def pearson(permuted_x: np.ndarray, axis: int = -1) -> np.ndarray:
        return (permuted_x * y).sum(axis) / norm

    # One sample permuted against y held fixed: n! pairings, every one of them once up to 7 runs.
    result = stats.permutation_test((x,), pearson, permutation_type="pairings", vectorized=True,
                                    n_resamples=9999, alternative="two-sided", rng=0)
    return float(result.statistic), float(result.pvalue)


def spearman_cell(values: list[float | None], scores: list[float]) -> str:
    """Spearman's ρ between a column and the score over the runs that logged the column, with its p; "—" under 3
    such runs or when either side is constant."""
    pairs = [(v, s) for v, s in zip(values, scores) if v is not None]
    if len(pairs) < 3 or len({v for v, _ in pairs}) < 2 or len({s for _, s in pairs}) < 2:
        return "—"
    rho, p = rank_correlation(*map(list, zip(*pairs)))
    runs = "" if len(pairs) == len(values) else f", {len(pairs)} of {len(values)} runs"
    return f"{rho:+.2f} (p = {p:.2g}{runs})"


def cell(values: list[float | None], digits: int) -> str:
    """The mean of the logged values, ``(k of n runs)`` when some did not log it, "—" when none did."""
    logged = [v for v in values if v is not None]
    if not logged:
        return "—"
    mean = sum(logged) / len(logged)
    text = f"{mean:.{digits}f}" if abs(mean) >= 10 ** -digits or mean == 0 else f"{mean:.1e}"
    return text if len(logged) == len(values) else f"{text} ({len(logged)} of {len(values)} runs)"


def markdown(rows: dict[tuple[str, str], list[dict]], title: str, start: int, end: int) -> str:
    lines = [f"### {title}", "",
             f"Means over the updates between {start:,} and {end:,} steps of each run, then over the runs.", "",
             "| map | method | runs | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for (env, method), runs in sorted(rows.items(), key=lambda kv: (kv[0][0], method_sort_key(kv[0][1]))):
        cells = " | ".join(cell([run[name] for run in runs], digits) for name, _, digits in COLUMNS)
        lines.append(f"| {env} | {method_label(method)} | {len(runs)} | {cells} |")
    return "\n".join(lines) + "\n"


def per_run_markdown(runs: list[dict], score_name: str, title: str, start: int, end: int) -> str:
    """One row per run, sorted by map, method and score (best first), then the rank correlations per method."""
    names = [label for _, label, _ in PER_RUN_COLUMNS]
    lines = [f"### {title}", "",
             f"Means over the updates between {start:,} and {end:,} steps of each run, beside its {score_name}; "
             "ρ: Spearman's rank correlation of each column with it over one method's runs (two-sided p by "
             "permutation).", "",
             "| map | method | seed | " + " | ".join(names) + f" | {score_name} |",
             "|---|---|---|" + "---|" * (len(PER_RUN_COLUMNS) + 1)]
    order = sorted(runs, key=lambda r: (r["env"], method_sort_key(r["method"]), -r["score"], r["seed"]))
    for run in order:
        cells = " | ".join(cell([run[name]], digits) for name, _, digits in PER_RUN_COLUMNS)
        lines.append(f"| {run['env']} | {method_label(run['method'])} | {run['seed']} | {cells} | {run['score']:.3f} |")
    lines += ["", "| map | method | runs | " + " | ".join(f"ρ: {name}" for name in names) + " |",
              "|---|---|---|" + "---|" * len(PER_RUN_COLUMNS)]
    for (env, method), group in by_method(order).items():
        scores = [run["score"] for run in group]
        cells = " | ".join(spearman_cell([run[name] for run in group], scores) for name, _, _ in PER_RUN_COLUMNS)
        lines.append(f"| {env} | {method_label(method)} | {len(group)} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--window", type=int, nargs=2, metavar=("START", "END"), required=True,
                        help="the steps whose updates are averaged")
    parser.add_argument("--title", default="r_in diagnostics")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    parser.add_argument("--per-run", action="store_true",
                        help="one row per run beside its score, and each column's rank correlation with it")
    parser.add_argument("--evaluation", type=Path, nargs="+", default=None,
                        help="with --per-run: JSON files of scripts/evaluate_runs.py; the score is then each run's "
                             "greedy win rate on their battles")
    args = parser.parse_args(argv)
    start, end = args.window
    if start > end:
        sys.exit(f"error: --window {start} {end}: the start is past the end")
    if args.evaluation is not None and not args.per_run:
        sys.exit("error: --evaluation scores runs for --per-run only: add --per-run, or leave --evaluation out")
    try:
        runs = run_windows(args.run_dirs, start, end, PER_RUN_COLUMNS if args.per_run else COLUMNS)
        if args.per_run:
            evaluations = None if args.evaluation is None else read_evaluations(args.evaluation)
            score_name = add_scores(runs, args.run_dirs, evaluations)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        sys.exit(f"error: {err}")
    text = per_run_markdown(runs, score_name, args.title, start, end) if args.per_run else \
        markdown(by_method(runs), args.title, start, end)
    print(text)
    if args.out is not None:
        write_between_markers(args.out, args.key or block_key(args.title), text)


if __name__ == "__main__":
    main()
