"""The field's statistics over training seeds and maps: IQM, mean, probability of improvement, with rliable.

    python scripts/aggregate_stats.py results/smax_3m_3M/runs/smax_3m_liir{,_lambda0}_s? \\
        results/smax_8m/runs/smax_8m_liir{,_lambda0}_s? results/smax_5m_vs_6m/paired/* \\
        --evaluation results/smax_{3m_3M,8m}/evaluation.json --title "LIIR and LIIR with λ = 0" \\
        --out results/README.md --figures results/stats

The measures of Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice") as the cooperative MARL
protocol of Gorsane et al. (2022) applies them, computed with rliable. Per run, one score: its final policy's
greedy win rate on the fixed-seed test episodes of ``--evaluation`` (the JSON of ``scripts/evaluate_runs.py``)
where every run of that map has one, else its final test win rate (``--metric``, the mean of its last ``--last``
evaluations), as ``scripts/results_table.py --matrix`` takes it. Maps are the strata: every method needs the same
number of runs on every map (a method with more on one map keeps its lowest seeds there; one missing a map, or
with fewer than ``--min-runs`` runs, is left out; both are said under the table). Per method: the interquartile
mean (IQM, rliable's 25 % trimmed mean of all its runs' scores) and the mean over maps of the mean score, each
with a 95 % stratified bootstrap interval (percentile; ``--reps`` resamples of the runs within each map, the
random generator seeded with ``--seed`` before each method, so the output is the same byte for byte), and the
probability of improvement P(X > Y) of every method over every other (or over ``--baseline``): the chance that a
run of X scores above a run of Y on a map (ties count one half), averaged over maps, with its interval.

The Markdown is printed and, with ``--out``, written between ``<!-- results:KEY -->`` markers as
results_table.py does. With ``--figures DIR``: ``KEY_profiles.png`` (performance profiles: the fraction of runs
scoring above τ, with bands), ``KEY_sample_efficiency.png`` (IQM of the test metric against environment steps
with its interval, each run's test curve interpolated linearly at ``--points`` common steps from 0 to the
smallest budget; a point past a run's last evaluation takes that evaluation) and ``KEY_marl_eval.json``: the same
curves and final scores in the raw-data format of InstaDeep's marl-eval (``{env: {task: {algorithm: {run_i:
{step_k: {step_count, metric: [value]}, absolute_metrics: {metric: [final score]}}}}}}``). Its
``absolute_metrics`` hold the scores above (the final policy's, not the best checkpoint's that Gorsane et al.
evaluate again).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from rliable import library as rly
from rliable import metrics, plot_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import (  # noqa: E402
    add_evaluation,
    block_key,
    budgets_per_env,
    matrix,
    read_evaluations,
    run_row,
    steps_text,
    table_rows,
    write_between_markers,
)
from run_records import method_label, method_sort_key, read_metric, refuse_repeated_runs  # noqa: E402

REPS, SEED, POINTS = 2000, 0, 31


def load_runs(run_dirs: list[Path], evaluations: list[dict], metric: str = "test_win_rate", last: int = 3,
              unfinished: bool = False) -> list[dict]:
    """``scripts/results_table.py``'s row of each run with its ``score`` (the greedy evaluation where every run of
    its map has one, else the final ``metric``), the ``measure`` that names it, ``curve`` (its test table, ``[n,
    2]`` frames and values) and ``run`` (the directory)."""
    refuse_repeated_runs(run_dirs)
    rows = [run_row(run_dir, last, metric, "win_rate" if metric == "test_win_rate" else "episode_return",
                    unfinished=unfinished) for run_dir in run_dirs]
    if evaluations:
        add_evaluation(rows, run_dirs, evaluations, missing_ok=True)
    for row, run_dir in zip(rows, run_dirs):
        row["run"], row["curve"] = run_dir, read_metric(run_dir, metric)
    for env in {row["env"] for row in rows}:
        env_rows = [row for row in rows if row["env"] == env]
        evaluated = all("evaluation" in row for row in env_rows)
        episodes = "/".join(sorted({str(row.get("evaluation_episodes")) for row in env_rows}))
        measure = (f"greedy win rate, {episodes} fixed test episodes" if evaluated
                   else f"final {metric.replace('_', ' ')}, mean of the last {last} evaluations")
        for row in env_rows:
            row["score"] = row["evaluation"]["greedy"] if evaluated else row["final"]
            row["measure"] = measure
    return rows


def group(rows: list[dict], min_runs: int = 3) -> tuple[list[str], dict[str, list[list[dict]]], list[str]]:
    """Maps (in the order of ``rows``), each kept method's runs per map (``method_sort_key``; the same number on every
    map, its lowest seeds where it has more) and notes on what was left out. A map whose runs had different budgets
    is refused (ValueError): a score at 3M steps and one at 10M are not draws of one quantity."""
    for task, budgets in budgets_per_env(rows).items():
        if len(budgets) > 1:
            raise ValueError(f"the runs of {task} had different budgets ({', '.join(map(steps_text, sorted(budgets)))} "
                             "steps): pass the runs of one budget")
    tasks = list(dict.fromkeys(row["env"] for row in rows))
    by_method: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_method[row["method"]][row["env"]].append(row)
    kept, notes = {}, []
    for method in sorted(by_method, key=method_sort_key):
        name, runs = method_label(method), by_method[method]
        missing = [task for task in tasks if task not in runs]
        if missing:
            notes.append(f"{name} left out: no runs on {', '.join(missing)}.")
            continue
        n = min(len(runs[task]) for task in tasks)
        if n < min_runs:
            notes.append(f"{name} left out: {n} run(s) on a map, fewer than {min_runs}.")
            continue
        for task in tasks:
            if len(runs[task]) > n:
                seeds = sorted(r["seed"] for r in runs[task])
                notes.append(f"{name} on {task}: seeds {', '.join(map(str, seeds[:n]))} of its {len(seeds)} runs "
                             "(the same number of runs on every map).")
        kept[method] = [sorted(runs[task], key=lambda r: r["seed"])[:n] for task in tasks]
    return tasks, kept, notes


def score_matrix(runs_per_task: list[list[dict]]) -> np.ndarray:
    """``[runs, tasks]`` scores, rliable's layout."""
    return np.array([[row["score"] for row in runs] for runs in runs_per_task], dtype=float).T


def iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    """``[IQM, mean]`` of a ``[runs, tasks]`` score matrix (rliable's ``aggregate_iqm`` and ``aggregate_mean``)."""
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores)])


def interval_estimates(scores: dict[str, np.ndarray], func, reps: int = REPS, seed: int = SEED
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{key: (point estimates, [2, ...] lower and upper 95 % bounds)}`` of ``func`` by rliable's stratified
    bootstrap; the generator it draws from (numpy's global one) is seeded with ``seed`` before each key."""
    result = {}
    for key, value in scores.items():
        np.random.seed(seed)
        points, intervals = rly.get_interval_estimates({key: value}, func, reps=reps)
        result[key] = (np.asarray(points[key], dtype=float), np.asarray(intervals[key], dtype=float))
    return result


def improvement(scores: dict[str, np.ndarray], baseline: str | None = None, reps: int = REPS, seed: int = SEED
                ) -> dict[tuple[str, str], tuple[float, float, float]]:
    """``{(X, Y): (P(X > Y), lower, upper)}`` for every pair X before Y in ``scores`` (P(Y > X) is 1 − P(X > Y)),
    or every X over ``baseline``: rliable's ``probability_of_improvement`` with its independent stratified
    bootstrap interval."""
    methods = list(scores)
    pairs = ([(x, baseline) for x in methods if x != baseline] if baseline is not None
             else [(x, y) for i, x in enumerate(methods) for y in methods[i + 1:]])
    estimates = interval_estimates({pair: [scores[pair[0]], scores[pair[1]]] for pair in pairs},
                                   metrics.probability_of_improvement, reps, seed)
    return {pair: (float(p), float(ci[0].item()), float(ci[1].item())) for pair, (p, ci) in estimates.items()}


def frame_grid(kept: dict[str, list[list[dict]]], points: int = POINTS) -> np.ndarray:
    """``points`` environment steps from 0 to the smallest budget of the runs."""
    budget = min(row["budget"] for runs in kept.values() for task_runs in runs for row in task_runs)
    return np.linspace(0, budget, points).round().astype(int)


def curve_matrix(runs_per_task: list[list[dict]], grid: np.ndarray) -> np.ndarray:
    """``[runs, tasks, points]``: each run's test curve interpolated linearly at ``grid``."""
    return np.stack([np.stack([np.interp(grid, row["curve"][:, 0], row["curve"][:, 1]) for row in runs])
                     for runs in runs_per_task], axis=1)


def iqm_per_point(curves: np.ndarray) -> np.ndarray:
    """IQM over runs and tasks at each point of a ``[runs, tasks, points]`` array."""
    return np.array([metrics.aggregate_iqm(curves[..., i]) for i in range(curves.shape[-1])])


def _split_env(env: str) -> tuple[str, str]:
    """``smax_3m`` → (``smax``, ``3m``); an env without a task names both."""
    name, _, task = env.partition("_")
    return name, task or name


def marl_eval(tasks: list[str], kept: dict[str, list[list[dict]]], grid: np.ndarray, metric: str) -> dict:
    """The raw-data JSON of marl-eval: ``{env: {task: {algorithm: {run_i: {step_k: {"step_count": steps, name:
    [value]}, "absolute_metrics": {name: [score]}}}}}}``; ``name`` is ``metric`` without ``test_``, the values
    each run's test curve at ``grid``, runs in seed order."""
    name = metric.removeprefix("test_")
    data: dict = {}
    for t, task in enumerate(tasks):
        env, task_name = _split_env(task)
        for method, runs_per_task in kept.items():
            runs = {}
            for i, row in enumerate(runs_per_task[t]):
                values = np.interp(grid, row["curve"][:, 0], row["curve"][:, 1])
                steps = {f"step_{k}": {"step_count": int(step), name: [round(float(v), 6)]}
                         for k, (step, v) in enumerate(zip(grid, values))}
                runs[f"run_{i}"] = {**steps, "absolute_metrics": {name: [round(float(row["score"]), 6)]}}
            data.setdefault(env, {}).setdefault(task_name, {})[method] = runs
    return data


def _interval(point: float, low: float, high: float) -> str:
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def markdown(title: str, tasks: list[str], kept: dict[str, list[list[dict]]], estimates: dict,
             pairs: dict, notes: list[str], reps: int, seed: int, figures: dict[str, str] | None = None) -> str:
    """The block: measures per map, one row per method (IQM and mean with intervals, runs), one per pair (P(X > Y)
    with its interval), the notes and links to the figures."""
    measures = {task: next(row["measure"] for runs in kept.values() for row in runs[t])
                for t, task in enumerate(tasks)}
    lines = [f"### {title}", "",
             "Score per run: " + "; ".join(f"{task}: {measure}" for task, measure in measures.items())
             + f". 95 % intervals: stratified bootstrap over runs within each map, {reps} resamples, seed {seed}.",
             "", "| method | runs per map | IQM [95 % CI] | mean [95 % CI] |", "|---|---|---|---|"]
    for method, runs_per_task in kept.items():
        (iqm, mean), ci = estimates[method]
        lines.append(f"| {method_label(method)} | {len(runs_per_task[0])} "
                     f"| {_interval(iqm, ci[0, 0], ci[1, 0])} | {_interval(mean, ci[0, 1], ci[1, 1])} |")
    if pairs:
        lines += ["", "| X | Y | P(X > Y) [95 % CI] |", "|---|---|---|"]
        lines += [f"| {method_label(x)} | {method_label(y)} | {_interval(*value)} |"
                  for (x, y), value in pairs.items()]
    if notes:
        lines += [""] + notes
    if figures:
        lines += ["", "Figures: " + ", ".join(f"[{label}]({path})" for label, path in figures.items()) + "."]
    return "\n".join(lines) + "\n"


def iqm_cell(values: list[float], reps: int = REPS, seed: int = SEED) -> str:
    """``IQM [95 % CI]`` of one map's runs (rliable's stratified bootstrap over them, seeded); one run: its score."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    (point,), interval = interval_estimates({"cell": np.array(values, dtype=float)[:, None]},
                                            lambda s: np.array([metrics.aggregate_iqm(s)]), reps, seed)["cell"]
    return f"{point:.2f} [{interval[0, 0]:.2f}, {interval[1, 0]:.2f}]"


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=80, bbox_inches="tight", metadata={"Software": None})


def plot_profiles(scores: dict[str, np.ndarray], path: Path, reps: int = REPS, seed: int = SEED,
                  label: str = "win rate") -> None:
    """Performance profiles (fraction of runs scoring above τ) with their bootstrap bands, as a PNG."""
    values = np.concatenate([s.ravel() for s in scores.values()])
    taus = np.linspace(min(0.0, values.min()), max(1.0, values.max()), 101)
    profiles, bands = {}, {}
    for method, method_scores in scores.items():
        np.random.seed(seed)
        profile, band = rly.create_performance_profile({method: method_scores}, taus, reps=reps)
        profiles[method_label(method)], bands[method_label(method)] = profile[method], \
            band[method]
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=bands, ax=ax,
                                         xlabel=f"final {label} (τ)", ylabel="fraction of runs above τ",
                                         labelsize="medium", ticklabelsize="small")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    _save(fig, path)


def plot_sample_efficiency(grid: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                           label: str = "test win rate") -> None:
    """IQM of the test metric with its interval against environment steps, as a PNG."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    names = {method: method_label(method) for method in curves}
    plot_utils.plot_sample_efficiency_curve(grid / 1e6, {names[m]: p for m, (p, _) in curves.items()},
                                            {names[m]: ci for m, (_, ci) in curves.items()}, ax=ax,
                                            xlabel="environment steps (millions)", ylabel=f"IQM {label}",
                                            labelsize="medium", ticklabelsize="small", marker=".")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    _save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--evaluation", type=Path, nargs="*", default=[],
                        help="JSON files of scripts/evaluate_runs.py (a map's score is their greedy win rate where "
                             "every run of it is in them)")
    parser.add_argument("--title", default="IQM, mean and probability of improvement")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    parser.add_argument("--key", default=None, help="marker name of the block and figures (default: from the title)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="folder for KEY_profiles.png, KEY_sample_efficiency.png and KEY_marl_eval.json")
    parser.add_argument("--baseline", default=None, help="P(X > baseline) only, e.g. liir_lambda0")
    parser.add_argument("--reps", type=int, default=REPS, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the bootstrap")
    parser.add_argument("--points", type=int, default=POINTS, help="steps of the sample-efficiency curves")
    parser.add_argument("--metric", default="test_win_rate", help="the test metric (test.csv column)")
    parser.add_argument("--last", type=int, default=3, help="evaluations averaged into the final test metric")
    parser.add_argument("--min-runs", type=int, default=3, help="a method with fewer runs on a map is left out")
    parser.add_argument("--unfinished", action="store_true", help="admit runs stopped before their budget")
    parser.add_argument("--matrix", action="store_true",
                        help="the map × method table of results_table.py --matrix with IQM [95 %% CI] per cell "
                             "(every run of each cell; --min-runs, --baseline and --figures do not apply)")
    parser.add_argument("--command", default="python scripts/train.py ...", help="--matrix: the runs' command")
    parser.add_argument("--up-to-frames", type=int, default=None,
                        help="--matrix: each run's first N steps only (a budget all of them reached; the final "
                             "policies' --evaluation does not apply there)")
    args = parser.parse_args(argv)
    if args.matrix:
        try:
            rows = table_rows(args.run_dirs, args.last, args.metric, "win_rate", args.up_to_frames, args.unfinished,
                              [] if args.up_to_frames else args.evaluation, for_matrix=True)
        except (FileNotFoundError, ValueError) as err:
            sys.exit(f"error: {err}")
        if args.up_to_frames is not None:  # every run reached it (table_rows checks): the cells' budget
            for row in rows:
                row["frames"] = row["budget"] = args.up_to_frames
        text = matrix(rows, args.title, args.command, cell=lambda v: iqm_cell(v, args.reps, args.seed))
        print(text)
        if args.out is not None:
            write_between_markers(args.out, args.key or block_key(args.title), text)
        return
    try:
        evaluations = read_evaluations(args.evaluation)
        rows = load_runs(args.run_dirs, evaluations, args.metric, args.last, args.unfinished)
        tasks, kept, notes = group(rows, args.min_runs)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    if not kept:
        sys.exit("error: no method has runs on every map: " + " ".join(notes))
    if args.baseline is not None and args.baseline not in kept:
        sys.exit(f"error: the baseline {args.baseline!r} is not among the methods kept: {', '.join(kept)}")
    scores = {method: score_matrix(runs) for method, runs in kept.items()}
    estimates = interval_estimates(scores, iqm_and_mean, args.reps, args.seed)
    pairs = improvement(scores, args.baseline, args.reps, args.seed) if len(kept) > 1 else {}
    key = args.key or block_key(args.title)
    figures = None
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        label = args.metric.removeprefix("test_").replace("_", " ")
        paths = {name: args.figures / f"{key}_{name}" for name in
                 ("profiles.png", "sample_efficiency.png", "marl_eval.json")}
        plot_profiles(scores, paths["profiles.png"], args.reps, args.seed, label)
        grid = frame_grid(kept, args.points)
        curves = interval_estimates({m: curve_matrix(runs, grid) for m, runs in kept.items()}, iqm_per_point,
                                    args.reps, args.seed)
        plot_sample_efficiency(grid, curves, paths["sample_efficiency.png"], f"test {label}")
        paths["marl_eval.json"].write_text(json.dumps(marl_eval(tasks, kept, grid, args.metric), indent=1) + "\n")
        base = args.out.resolve().parent if args.out is not None else Path.cwd()
        figures = {label_: Path(os.path.relpath(paths[name].resolve(), base)).as_posix() for label_, name in
                   (("performance profiles", "profiles.png"), ("IQM against steps", "sample_efficiency.png"),
                    ("marl-eval JSON", "marl_eval.json"))}
    text = markdown(args.title, tasks, kept, estimates, pairs, notes, args.reps, args.seed, figures)
    print(text)
    if args.out is not None:
        write_between_markers(args.out, key, text)
        print(f"wrote the block to {args.out}")


if __name__ == "__main__":
    main()
