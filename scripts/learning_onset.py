"""When does each run start winning, and do the runs that start late end higher? Onset against final win rate.

    python scripts/learning_onset.py results/smax_8m/runs/* --evaluation results/smax_8m/evaluation.json \
        --out runs/onset_8m.png

Per run: its onset, the first environment step at which the training win rate (the stochastic policy's) averaged over
the trailing ``--window`` steps reaches ``--threshold``, or "never"; and its final win rate on the fixed test battles of
``scripts/evaluate_runs.py`` (``--policy``: greedy or stochastic). Prints the runs sorted by onset and Spearman's rank
correlation between the two over all runs (a run that never got there ranks after every other, tied; p by permutation),
or over those whose onset came before ``--onset-before`` steps, and draws the scatter to ``--out`` (with its numbers as
CSV beside it). ``--pair A B`` adds a sign test of which of two methods gets there first, seed for seed. Every training
row is one batch of the same number of episodes, so the trailing mean weights rows equally; archived runs keep every
10th row, and their onset is read from those.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from run_records import method_label, method_of, method_sort_key, read_metric, refuse_repeated_runs
from scipy import stats

from torchrl_liir.trainers.config import load_saved_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnostics_table import rank_correlation  # noqa: E402
from results_table import add_evaluation, read_evaluations  # noqa: E402


def onset(curve: np.ndarray, threshold: float = 0.2, window: float = 100_000) -> float:
    """First step ``f >= window`` of ``curve`` (``[n, 2]``: steps, value) at which the mean of the values logged
    in ``(f - window, f]`` reaches ``threshold``; ``math.inf`` if none does."""
    frames, values = curve[:, 0], curve[:, 1]
    sums = np.concatenate([[0.0], np.cumsum(values)])
    first = np.searchsorted(frames, frames - window, side="right")
    last = np.arange(1, len(frames) + 1)
    means = (sums[last] - sums[first]) / (last - first)
    hits = np.flatnonzero((frames >= window) & (means >= threshold))
    return float(frames[hits[0]]) if hits.size else math.inf


def paired_onsets(rows: list[dict], a: str, b: str) -> tuple[int, int, int, float]:
    """Seed for seed, method ``a``'s onset against ``b``'s: the pairs where ``a`` came first, where ``b`` did, the
    ties (the same step, or neither got there), and the exact two-sided sign test's p over the untied pairs
    (binomial with one half: under no difference either method is as likely to come first)."""
    onsets = {(row["method"], row["seed"]): row["onset"] for row in rows}
    seeds_of: dict[str, set[int]] = defaultdict(set)
    for method, seed in onsets:
        seeds_of[method].add(seed)
    for method in (a, b):
        if method not in seeds_of:
            raise ValueError(f"no runs of {method!r}: the runs are of {', '.join(sorted(seeds_of))}")
    seeds = sorted(seeds_of[a] & seeds_of[b])
    first_a = sum(onsets[a, seed] < onsets[b, seed] for seed in seeds)
    first_b = sum(onsets[b, seed] < onsets[a, seed] for seed in seeds)
    if first_a + first_b == 0:
        raise ValueError(f"no seed of {a} and {b} with one onset before the other: a sign test needs one")
    p = stats.binomtest(first_a, first_a + first_b, 0.5).pvalue
    return first_a, first_b, len(seeds) - first_a - first_b, float(p)


def markdown(rows: list[dict], policy: str, threshold: float, window: float, rho: float, p: float,
             counted: str) -> str:
    """The runs sorted by onset (never last) and the correlation over the ``counted`` runs."""
    lines = [f"| run | method | seed | steps to a training win rate of {threshold:g} over {window:,.0f} steps "
             f"| {policy} win rate |", "|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["onset"], r["method"], r["seed"])):
        steps = "never" if math.isinf(row["onset"]) else f"{row['onset']:,.0f}"
        lines.append(f"| {row['run']} | {method_label(row['method'])} | {row['seed']} | {steps} "
                     f"| {row['win_rate']:.3f} |")
    lines += ["", f"Spearman's rank correlation over {counted}: ρ = {rho:+.2f}, two-sided p = {p:.3g}."]
    return "\n".join(lines)


def plot(rows: list[dict], policy: str, title: str, out: Path, onset_before: float | None = None) -> None:
    """Scatter of onset (never: at the right edge, crossed) against the final win rate, one colour per method;
    ``title`` carries the correlation, a dashed line the ``--onset-before`` cut."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    finite = [r["onset"] for r in rows if not math.isinf(r["onset"])]
    never_at = max([*finite, max(r["frames"] for r in rows)])
    methods = {r["method"] for r in rows}
    order = sorted(methods, key=method_sort_key)
    for i, method in enumerate(order):
        runs = [r for r in rows if r["method"] == method]
        for never, marker in ((False, "osD^"[i // 10]), (True, "x")):  # ten colours, then another marker
            chosen = [r for r in runs if math.isinf(r["onset"]) == never]
            if chosen:
                ax.scatter([never_at if never else r["onset"] for r in chosen], [r["win_rate"] for r in chosen],
                           color=f"C{i % 10}", marker=marker,
                           label=None if never else method_label(method))
    ax.set_xlabel("environment steps to the onset (×: never)")
    ax.set_ylabel(f"final {policy} win rate")
    ax.set_ylim(-0.02, 1.02)
    if onset_before is not None:
        ax.axvline(onset_before, color="grey", linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["run", "method", "seed", "onset", "win_rate"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--evaluation", type=Path, nargs="+", required=True,
                        help="JSON files of scripts/evaluate_runs.py holding every run's final evaluation")
    parser.add_argument("--policy", choices=("greedy", "stochastic"), default="greedy",
                        help="whose final win rate to correlate with the onset")
    parser.add_argument("--threshold", type=float, default=0.2, help="training win rate that marks the onset")
    parser.add_argument("--window", type=float, default=100_000, help="environment steps the rate is averaged over")
    parser.add_argument("--onset-before", type=float, default=None,
                        help="correlate only the runs whose onset came before this many steps")
    parser.add_argument("--pair", nargs=2, metavar=("A", "B"), default=None,
                        help="two methods (liir, liir_lambda0, ...): which gets there first, seed for seed")
    parser.add_argument("--title", default="Onset of winning against the final win rate")
    parser.add_argument("--out", type=Path, default=None, help="PNG of the scatter (and its CSV beside it)")
    args = parser.parse_args(argv)
    if len(args.run_dirs) < 3:
        sys.exit(f"error: {len(args.run_dirs)} runs given: a rank correlation needs at least 3")
    if args.window <= 0:
        sys.exit(f"error: --window={args.window:g}: must be > 0")
    try:
        refuse_repeated_runs(args.run_dirs)
        rows = []
        for run_dir in args.run_dirs:
            config = run_dir / "config.yaml"
            if not config.exists():
                raise FileNotFoundError(f"{config} is missing: is {run_dir} a training run directory?")
            cfg = load_saved_config(config)
            curve = read_metric(run_dir, "win_rate")
            rows.append({"run": run_dir.name, "method": method_of(cfg), "seed": cfg.seed,
                         "frames": float(curve[-1, 0]), "onset": onset(curve, args.threshold, args.window)})
        evaluations = read_evaluations(args.evaluation)
        add_evaluation(rows, args.run_dirs, evaluations)
        paired = paired_onsets(rows, *args.pair) if args.pair else None
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    for row in rows:
        row["win_rate"] = row.pop("evaluation")[args.policy]
    counted = [r for r in rows if args.onset_before is None or r["onset"] < args.onset_before]
    if len(counted) < 3:
        sys.exit(f"error: only {len(counted)} of {len(rows)} runs started winning before {args.onset_before:,.0f} "
                 "steps: a rank correlation needs at least 3")
    rho, p = rank_correlation([r["onset"] for r in counted], [r["win_rate"] for r in counted])
    scope = f"{len(rows)} runs" if len(counted) == len(rows) else \
        f"the {len(counted)} of {len(rows)} runs whose onset came before {args.onset_before:,.0f} steps"
    print(markdown(rows, args.policy, args.threshold, args.window, rho, p, scope))
    if paired is not None:
        (a, b), (first_a, first_b, ties, sign_p) = map(method_label, args.pair), paired
        print(f"\nSeed for seed, {a} got there first on {first_a} of {first_a + first_b + ties} pairs, {b} on "
              f"{first_b}, {ties} tied (the same step, or neither); sign test, two-sided p = {sign_p:.3g}.")
    if args.out is not None:
        cut = "" if len(counted) == len(rows) else f", onset before {args.onset_before:,.0f}"
        plot(rows, args.policy, f"{args.title}\nSpearman ρ = {rho:+.2f}, p = {p:.2g} ({len(counted)} runs{cut})",
             args.out, args.onset_before)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
