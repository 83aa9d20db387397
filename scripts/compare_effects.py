"""Does a change of env change one method's lead over another? Welch's t-test on two sets of seed-for-seed differences.

    python scripts/compare_effects.py results/smax_3s5z/{evaluation_3M,safe_walls_evaluation}.json \
        --a liir --b liir_lambda0 --env smax_3s5z --against smax_3s5z_safe_walls

On each of the two envs, the lead of A over B is one number per training seed: the seed-for-seed difference of
their final win rates (``scripts/evaluate_runs.py``'s JSON; the seeds both methods ran on that env). The two envs'
leads are then compared across seeds with Welch's t-test, two-sided: a difference in differences, which asks
whether the env changes A's lead (an interaction), where ``compare_methods.py`` asks whether A leads on one env. The
two envs' runs share only their seed numbers, so their differences are not paired. After the block the script
prints the smallest change of the lead the seeds detect (5 % level, two-sided, 80 % power), as
``compare_methods.py`` does. ``--out`` writes the Markdown between markers, as results_table.py.
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
from compare_methods import detectable_text, per_seed, welch_detectable  # noqa: E402
from results_table import block_key, write_between_markers  # noqa: E402


def lead_per_seed(evaluations: list[dict], method_a: str, method_b: str, env: str,
                  policy: str = "greedy") -> dict[int, float]:
    """``{training seed: A's win rate − B's}`` on ``env``, over the seeds both methods ran there."""
    a, b = per_seed(evaluations, method_a, env, policy), per_seed(evaluations, method_b, env, policy)
    leads = {seed: a[seed][0] - b[seed][0] for seed in sorted(set(a) & set(b))}
    if len(leads) < 2:
        raise ValueError(f"{method_a!r} and {method_b!r} on {env}: {len(leads)} seed(s) ran by both; the test needs "
                         "at least 2")
    return leads


def compare_leads(first: dict[int, float], second: dict[int, float]) -> dict:
    """Welch's t-test of the mean lead on the first env against the mean lead on the second."""
    welch = stats.ttest_ind(list(first.values()), list(second.values()), equal_var=False)
    mean_first, mean_second = statistics.mean(first.values()), statistics.mean(second.values())
    return {"mean_first": mean_first, "mean_second": mean_second, "change": mean_first - mean_second,
            "welch_t": float(welch.statistic), "welch_df": float(welch.df), "welch_p": float(welch.pvalue),
            "change_95": tuple(float(x) for x in welch.confidence_interval(0.95))}


def markdown(method_a: str, method_b: str, env: str, against: str, first: dict[int, float],
             second: dict[int, float], result: dict, policy: str, title: str) -> str:
    lead = f"({method_label(method_a)}) − ({method_label(method_b)})"
    verdict = "differ" if result["welch_p"] < 0.05 else "do not differ detectably"
    low, high = result["change_95"]
    return "\n".join([
        f"### {title}", "",
        f"| {lead}, {policy} win rate | {env} | {against} |", "|---|---|---|",
        f"| per seed | {_per_seed_text(first)} | {_per_seed_text(second)} |",
        f"| mean over seeds | {result['mean_first']:+.3f} | {result['mean_second']:+.3f} |", "",
        f"Change of the lead {result['change']:+.3f} (95 % interval {low:+.3f} to {high:+.3f}). Across seeds "
        f"(Welch's t-test on the per-seed leads): t = {result['welch_t']:.2f}, df = {result['welch_df']:.1f}, "
        f"two-sided p = {result['welch_p']:.3f}: at the 5 % level the two leads {verdict}.", ""])


def _per_seed_text(leads: dict[int, float]) -> str:
    return ", ".join(f"{lead:+.3f} (seed {seed})" for seed, lead in sorted(leads.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", type=Path, nargs="+", help="JSON files of scripts/evaluate_runs.py")
    parser.add_argument("--a", required=True, help="the method whose lead is measured, e.g. liir")
    parser.add_argument("--b", required=True, help="the method it leads, e.g. liir_lambda0")
    parser.add_argument("--env", required=True, help="the first env, e.g. smax_3s5z")
    parser.add_argument("--against", required=True, help="the second env, e.g. smax_3s5z_safe_walls")
    parser.add_argument("--policy", choices=("greedy", "stochastic"), default="greedy")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    args = parser.parse_args(argv)
    try:
        evaluations = [e for path in args.evaluations for e in json.loads(path.read_text())]
        first = lead_per_seed(evaluations, args.a, args.b, args.env, args.policy)
        second = lead_per_seed(evaluations, args.a, args.b, args.against, args.policy)
    except (FileNotFoundError, ValueError, KeyError) as err:
        sys.exit(f"error: {err}")
    title = args.title or f"{args.a} − {args.b} on {args.env} against {args.against}"
    text = markdown(args.a, args.b, args.env, args.against, first, second, compare_leads(first, second),
                    args.policy, title)
    print(text)
    print(detectable_text(welch_detectable(list(first.values()), list(second.values())), "change of the lead"))
    if args.out is not None:
        write_between_markers(args.out, args.key or block_key(title), text)
        print(f"wrote the block to {args.out}")


if __name__ == "__main__":
    main()
