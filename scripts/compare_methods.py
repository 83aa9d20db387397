"""Does method A win more often than method B? A test across training seeds on the final evaluations.

    python scripts/compare_methods.py runs/evaluation.json --a liir --b liir_lambda0 --env smax_3m

Reads the JSON of ``scripts/evaluate_runs.py`` (each run's final policy on the same fixed-seed test episodes).
The unit is the training seed: Welch's t-test on the per-seed win rates (two-sided), which is what decides
"does A's training give better policies". Where both methods are variants of one algorithm (such as LIIR and
LIIR with λ = 0) and ran the same seeds, the paired t-test on the seed-for-seed differences is printed too: such
runs of one seed share their initial networks and environment seeds, so pairing removes what the seed alone
decides. Runs of different algorithms share nothing but the seed number, so they are not paired. Fisher's exact
test on the pooled battles is printed beside them; it treats every battle as independent and ignores how much
seeds differ, so it can only say whether the particular policies trained here differ. ``--out`` writes the
Markdown between markers, as results_table.py.

A run directory given in place of a JSON file enters with its final test win rate (the mean of its last 3
evaluations, ``--last``, each of the run's greedy test episodes) as its greedy win rate, for runs whose final policy
was not kept. After the block the script prints the smallest difference the seeds can detect: at the 5 % level,
two-sided, with 80 % power, (t(0.975, df) + t(0.80, df)) times the standard error of the difference, across seeds
(Welch's standard error and df) and, where the runs are paired, seed for seed (the paired differences' standard
error, n − 1 df).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from run_records import method_label
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import block_key, run_row, write_between_markers  # noqa: E402


def runs_of(evaluations: list[dict], method: str, env: str | None, seeds: set[int] | None = None) -> list[dict]:
    """The evaluations of one method's runs (on ``env`` only and of ``seeds`` only, if given)."""
    return [e for e in evaluations if e["method"] == method and (env is None or e["env"] == env)
            and (seeds is None or e["train_seed"] in seeds)]


def per_seed(evaluations: list[dict], method: str, env: str | None, policy: str,
             seeds: set[int] | None = None) -> dict[int, tuple[float, int]]:
    """``{training seed: (win rate, episodes)}`` of one method's runs."""
    runs = runs_of(evaluations, method, env, seeds)
    by_seed: dict[int, dict] = {}
    for e in runs:
        if policy not in e:
            raise ValueError(f"{e['run']}: no {policy} win rate (a run directory gives its greedy test win rate only)")
        if e["train_seed"] in by_seed:  # two maps, two budgets or one run twice: one would overwrite the other
            raise ValueError(f"method {method!r} has two evaluations of seed {e['train_seed']} "
                             f"({by_seed[e['train_seed']]['run']} and {e['run']}): pass one map (--env) and one "
                             "budget's evaluation file")
        by_seed[e["train_seed"]] = e
    found = {seed: (e[policy]["win_rate"], e["episodes"]) for seed, e in by_seed.items()}
    if len(found) < 2:
        raise ValueError(f"method {method!r}{f' on {env}' if env else ''}: {len(found)} evaluated seed(s); "
                         "the test needs at least 2 (evaluate more runs with scripts/evaluate_runs.py)")
    return found


def compare(a: dict[int, tuple[float, int]], b: dict[int, tuple[float, int]], paired: bool = True) -> dict:
    """Welch's t-test on the per-seed rates, the paired t-test when ``paired`` and both ran the same seeds (else
    its entries are ``None``), and Fisher's exact test on the pooled battles."""
    rates_a, rates_b = [rate for rate, _ in a.values()], [rate for rate, _ in b.values()]
    welch = stats.ttest_ind(rates_a, rates_b, equal_var=False)
    wins_a = round(sum(rate * n for rate, n in a.values()))
    wins_b = round(sum(rate * n for rate, n in b.values()))
    n_a, n_b = sum(n for _, n in a.values()), sum(n for _, n in b.values())
    fisher = stats.fisher_exact([[wins_a, n_a - wins_a], [wins_b, n_b - wins_b]])
    seed_for_seed = {"paired_t": None, "paired_p": None, "paired_95": None}
    if paired and set(a) == set(b):
        seeds = sorted(a)
        test = stats.ttest_rel([a[s][0] for s in seeds], [b[s][0] for s in seeds])
        seed_for_seed = {"paired_t": float(test.statistic), "paired_p": float(test.pvalue),
                         "paired_95": tuple(float(x) for x in test.confidence_interval(0.95))}
    return {**seed_for_seed, "mean_a": statistics.mean(rates_a), "mean_b": statistics.mean(rates_b),
            "difference": statistics.mean(rates_a) - statistics.mean(rates_b),
            "welch_t": float(welch.statistic), "welch_df": float(welch.df), "welch_p": float(welch.pvalue),
            "difference_95": tuple(float(x) for x in welch.confidence_interval(0.95)),
            "pooled": (wins_a, n_a, wins_b, n_b), "fisher_p": float(fisher.pvalue)}


def run_as_evaluation(run_dir: Path, last: int = 3) -> dict:
    """A run directory as an entry of ``scripts/evaluate_runs.py``'s JSON: its final test win rate (the mean of its
    last ``last`` evaluations) as the greedy win rate, over ``last`` times its test episodes. No stochastic entry."""
    row = run_row(run_dir, last, unfinished=True)
    return {"run": str(run_dir), "env": row["env"], "method": row["method"], "train_seed": row["seed"],
            "algo": row["algo"], "episodes": last * row["episodes_per_test"], "greedy": {"win_rate": row["final"]}}


def welch_detectable(values_a: list[float], values_b: list[float], power: float = 0.8, level: float = 0.05) -> dict:
    """The smallest difference of the means of ``values_a`` and ``values_b`` detectable across seeds at ``level``
    (two-sided) with ``power``: (t(1 − level/2, df) + t(power, df)) × Welch's standard error, with Welch's df."""
    var_a, var_b = statistics.variance(values_a) / len(values_a), statistics.variance(values_b) / len(values_b)
    se = (var_a + var_b) ** 0.5
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(values_a) - 1) + var_b ** 2 / (len(values_b) - 1))
    factor = float(stats.t.ppf(1 - level / 2, df) + stats.t.ppf(power, df))
    return {"welch": factor * se, "welch_se": se, "welch_df": df, "welch_factor": factor}


def detectable(a: dict[int, tuple[float, int]], b: dict[int, tuple[float, int]], paired: bool = True,
               power: float = 0.8, level: float = 0.05) -> dict:
    """The smallest difference the seeds detect at ``level`` (two-sided) with ``power``: (t(1 − level/2, df) +
    t(power, df)) × the standard error of the difference; across seeds with Welch's standard error and df, and seed
    for seed (``paired`` and the same seeds) with the paired differences' standard error and n − 1 df."""
    result = {**welch_detectable([rate for rate, _ in a.values()], [rate for rate, _ in b.values()], power, level),
              "paired": None, "paired_se": None, "paired_df": None, "paired_factor": None}
    if paired and set(a) == set(b):
        differences = [a[s][0] - b[s][0] for s in sorted(a)]
        se = statistics.stdev(differences) / len(differences) ** 0.5
        df = len(differences) - 1
        factor = float(stats.t.ppf(1 - level / 2, df) + stats.t.ppf(power, df))
        result.update(paired=factor * se, paired_se=se, paired_df=df, paired_factor=factor)
    return result


def detectable_text(result: dict, what: str = "difference") -> str:
    text = (f"Smallest {what} these seeds detect (5 % level, two-sided, 80 % power): {result['welch']:.3f} "
            f"across seeds ({result['welch_factor']:.2f} × Welch's standard error {result['welch_se']:.4f}, "
            f"df = {result['welch_df']:.1f})")
    if result.get("paired") is not None:
        text += (f"; {result['paired']:.3f} seed for seed ({result['paired_factor']:.2f} × the paired standard "
                 f"error {result['paired_se']:.4f}, df = {result['paired_df']})")
    return text + "."


def _per_seed_text(runs: dict[int, tuple[float, int]]) -> str:
    return ", ".join(f"{rate:.3f} (seed {seed})" for seed, (rate, _) in sorted(runs.items()))


def markdown(method_a: str, method_b: str, a: dict, b: dict, result: dict, policy: str, title: str) -> str:
    name_a, name_b = method_label(method_a), method_label(method_b)
    wins_a, n_a, wins_b, n_b = result["pooled"]
    verdict = "differ" if result["welch_p"] < 0.05 else "do not differ detectably"
    return "\n".join([
        f"### {title}", "",
        f"| | {name_a} | {name_b} |", "|---|---|---|",
        f"| {policy} win rate per seed | {_per_seed_text(a)} | {_per_seed_text(b)} |",
        f"| mean over seeds | {result['mean_a']:.3f} | {result['mean_b']:.3f} |",
        f"| pooled battles won | {wins_a} / {n_a} | {wins_b} / {n_b} |", "",
        f"Difference {result['difference']:+.3f} (95 % interval {result['difference_95'][0]:+.3f} to "
        f"{result['difference_95'][1]:+.3f}). Across seeds (Welch's t-test): t = {result['welch_t']:.2f}, "
        f"df = {result['welch_df']:.1f}, two-sided p = {result['welch_p']:.3f}: at the 5 % level the two "
        f"{verdict}.{_paired_text(result)} Pooled battles (Fisher's exact test, these particular policies): p = "
        f"{result['fisher_p']:.3f}.", ""])


def _paired_text(result: dict) -> str:
    if result["paired_t"] is None:
        return ""
    low, high = result["paired_95"]
    return (f" Seed for seed (paired t-test): 95 % interval {low:+.3f} to {high:+.3f}, t = {result['paired_t']:.2f}, "
            f"two-sided p = {result['paired_p']:.3f}.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", type=Path, nargs="+",
                        help="JSON files of scripts/evaluate_runs.py, or run directories (their final test win rate)")
    parser.add_argument("--a", required=True, help="a method, e.g. liir (see scripts/run_records.py)")
    parser.add_argument("--b", required=True, help="the method to compare with, e.g. liir_lambda0")
    parser.add_argument("--env", default=None, help="only runs on this env, e.g. smax_3m")
    parser.add_argument("--policy", choices=("greedy", "stochastic"), default="greedy")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    parser.add_argument("--last", type=int, default=3, help="a run directory's evaluations averaged into its rate")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="only these training seeds, e.g. those both methods ran, so that they pair")
    args = parser.parse_args(argv)
    try:
        evaluations = [e for path in args.evaluations for e in (
            [run_as_evaluation(path, args.last)] if path.is_dir() else json.loads(path.read_text()))]
        seeds = None if args.seeds is None else set(args.seeds)
        a = per_seed(evaluations, args.a, args.env, args.policy, seeds)
        b = per_seed(evaluations, args.b, args.env, args.policy, seeds)
    except (FileNotFoundError, ValueError, KeyError) as err:
        sys.exit(f"error: {err}")
    title = args.title or f"{args.a} against {args.b}{f' on {args.env}' if args.env else ''}"
    # Each method names one algorithm (``method_of``); its variants share that algorithm's ``algo``.
    one_algorithm = len({e["algo"] for method in (args.a, args.b) for e in runs_of(evaluations, method, args.env)}) == 1
    text = markdown(args.a, args.b, a, b, compare(a, b, paired=one_algorithm), args.policy, title)
    print(text)
    print(detectable_text(detectable(a, b, paired=one_algorithm)))
    if args.out is not None:
        write_between_markers(args.out, args.key or block_key(title), text)
        print(f"wrote the block to {args.out}")


if __name__ == "__main__":
    main()
