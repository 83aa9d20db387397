"""Fill a Markdown results table (test win rate per method, mean ± std over seeds) from training run directories.

    python scripts/results_table.py runs/*smax_3m* --out runs/tables.md --title "SMAX 3m"
    python scripts/results_table.py runs/multirun/<sweep>/* --metric test_return --train-metric episode_return
    python scripts/results_table.py runs/a runs/b --evaluation runs/evaluation.json --title "SMAX 3m, 3M steps"
    python scripts/results_table.py runs/*smax_3m* runs/*smax_8m* --evaluation runs/*evaluation.json --matrix

Per run: the final test win rate (``--metric``; mean of its last ``--last`` evaluations, each over the run's
``experiment.evaluation_episodes`` greedy test episodes), its best evaluation, the training win rate
(``--train-metric``) of its last 10 batches (the stochastic policy), env steps, device and date (from summary.json);
``--up-to-frames N`` reads only the first N steps of every run, so that runs stopped at different budgets compare at
one. With ``--evaluation`` (the JSON of ``scripts/evaluate_runs.py``), also each method's final policies' win rates on
that many fixed-seed test episodes, greedy and stochastic (mean ± std over seeds). Rows are methods (LIIR's variants
apart); the table is written between markers in ``--out`` so the rest of the file (notes, figures) is kept, or printed
without ``--out``. ``--matrix`` writes one row per env and one column per method instead: in each cell the final
policies' greedy win rate on the ``--evaluation`` episodes where every run of that env has one (some but not all is
refused), else the final test metric (a run without ``--metric``, such as a VMAS run without a win rate, gives its test
return), mean ± std over seeds, the seeds, and the steps every seed reached of the runs' budget.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from run_records import env_of, method_label, method_of, method_sort_key, read_metric, refuse_repeated_runs

from torchrl_liir.trainers.config import load_saved_config


def run_row(run_dir: Path, last: int, metric: str = "test_win_rate", train_metric: str = "win_rate",
            up_to_frames: int | None = None, unfinished: bool = False) -> dict:
    """The numbers one run contributes to the table: from its whole run, or from its first ``up_to_frames``
    steps (a budget every compared run reached). ``unfinished`` admits runs that stopped before their budget."""
    for name in ("config.yaml", "summary.json"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} is missing: did this run finish?")
    cfg = load_saved_config(run_dir / "config.yaml")
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary.get("status", "finished") != "finished" and not unfinished:  # older runs: summary only when finished
        raise ValueError(f"{run_dir} did not finish (status {summary['status']!r}): resume it first, or pass "
                         "--unfinished to report the steps it reached")
    tests, train_wins = read_metric(run_dir, metric), read_metric(run_dir, train_metric)
    frames = summary["frames"]
    if up_to_frames is not None:
        if train_wins[-1, 0] < up_to_frames:
            raise ValueError(f"{run_dir} reached {int(train_wins[-1, 0]):,} steps, fewer than --up-to-frames "
                             f"{up_to_frames:,}")
        tests, train_wins = tests[tests[:, 0] <= up_to_frames], train_wins[train_wins[:, 0] <= up_to_frames]
        frames = int(train_wins[-1, 0])
    tests, train_wins = tests[:, 1], train_wins[:, 1]
    return {
        "method": method_of(cfg), "algo": cfg.algo.name, "env": env_of(cfg),
        "seed": cfg.seed, "policy": cfg.model.get("policy", "-"), "frames": frames,
        "final": float(tests[-last:].mean()),
        "best": float(tests.max()), "train": float(train_wins[-10:].mean()), "device": summary.get("device", "?"),
        "date": summary.get("finished", "?")[:10], "episodes_per_test": cfg.experiment.evaluation_episodes,
        "budget": int(cfg.experiment.total_frames), "metric": metric,
    }


def read_evaluations(paths: list[Path]) -> list[dict]:
    """Every entry of the JSON files of ``scripts/evaluate_runs.py`` (one list of runs each), in order."""
    return [entry for path in paths for entry in json.loads(path.read_text())]


def add_evaluation(rows: list[dict], run_dirs: list[Path], evaluations: list[dict], missing_ok: bool = False) -> None:
    """Each row gets its run's ``scripts/evaluate_runs.py`` results (``greedy`` and ``stochastic`` win rates),
    found by the run's path or, for an archived copy in results/, by its directory name when that is unique among
    the entries no run matched by path (two runs of one name, at two budgets, tell themselves apart by path).
    ``missing_ok`` leaves the runs of an env (at one budget) none of which is in ``evaluations`` without them; an
    env with some runs in it and some not is refused all the same, since its line would fall back to the final test
    metric for every run. An entry that names the step of the checkpoint it played (``checkpoint_frames``) must name
    the run's last step: an evaluation of an earlier checkpoint (the run resumed since, or its newest checkpoint was
    damaged) is refused rather than reported as the run's final policy."""
    by_run = {Path(e["run"]).resolve(): e for e in evaluations}
    matched = {run_dir.resolve() for run_dir in run_dirs} & by_run.keys()
    unmatched = [e for e in evaluations if Path(e["run"]).resolve() not in matched]
    names = Counter(Path(e["run"]).name for e in unmatched)
    by_name = {Path(e["run"]).name: e for e in unmatched if names[Path(e["run"]).name] == 1}
    found = [by_run.get(run_dir.resolve()) or by_name.get(run_dir.name) for run_dir in run_dirs]
    evaluated_lines = {(row.get("env"), row.get("budget")) for row, entry in zip(rows, found) if entry is not None}
    for row, run_dir, entry in zip(rows, run_dirs, found):
        for field, key in (("method", "method"), ("seed", "train_seed")):  # a same-named run of another method
            if entry is not None and field in row and key in entry and row[field] != entry[key]:
                raise ValueError(f"{run_dir} is {field} {row[field]}, but the evaluation entry found for it "
                                 f"({entry['run']}) is of {entry[key]}: name the run's path in the entry")
        if entry is not None and "checkpoint_frames" in entry:
            summary = run_dir / "summary.json"
            if not summary.is_file():
                raise ValueError(f"{summary} is missing: the evaluation of {run_dir} cannot be told to be of its "
                                 "last checkpoint")
            reached = json.loads(summary.read_text())["frames"]
            if entry["checkpoint_frames"] != reached:
                raise ValueError(f"{run_dir} reached {reached:,} steps, but its evaluation entry ({entry['run']}) "
                                 f"played the checkpoint of step {entry['checkpoint_frames']:,}: evaluate it again")
        if entry is None and (not missing_ok or (row.get("env"), row.get("budget")) in evaluated_lines):
            others = f" (other runs of {row['env']} are)" if missing_ok else ""
            raise ValueError(f"{run_dir} is not in the evaluation file{others}: evaluate it with "
                             "scripts/evaluate_runs.py")
        if entry is not None:
            row["evaluation"] = {name: entry[name]["win_rate"] for name in ("greedy", "stochastic")}
            row["evaluation_episodes"] = entry["episodes"]


def mean_spread(values: list[float]) -> str:
    """``mean ± std`` over seeds (``mean`` alone for one seed)."""
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{spread}"


def table(rows: list[dict], title: str, command: str, metric: str = "test_win_rate",
          train_metric: str = "win_rate") -> str:
    """Markdown: one line per (env, method)."""
    test_name, train_name = metric.replace("_", " "), train_metric.replace("_", " ")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["env"], row["method"]].append(row)
    evaluated = all("evaluation" in row for row in rows)
    episodes = "/".join(sorted({str(row["evaluation_episodes"]) for row in rows})) if evaluated else ""
    extra = f" greedy win rate, {episodes} fixed test episodes | stochastic win rate, {episodes} episodes |"
    lines = [f"### {title}", "", f"`{command}`", "",
             f"| env | method | policy | seeds | env steps per seed | final {test_name} | best {test_name} "
             f"| final training {train_name} |{extra if evaluated else ''} device | date |",
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if evaluated else "")]
    for (env, method), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], method_sort_key(kv[0][1]))):
        seeds = ", ".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
        steps = sorted({r["frames"] for r in runs})
        steps_text = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}–{steps[-1]:,}"
        devices = "; ".join(sorted({r["device"] for r in runs}))
        dates = ", ".join(sorted({r["date"] for r in runs}))
        final_evaluation = "".join(f" {mean_spread([r['evaluation'][name] for r in runs])} |"
                                   for name in ("greedy", "stochastic")) if evaluated else ""
        lines.append(
            f"| {env} | {method_label(method)} | {'/'.join(sorted({r['policy'] for r in runs}))} "
            f"| {seeds} | {steps_text} | {mean_spread([r['final'] for r in runs])} "
            f"| {statistics.mean(r['best'] for r in runs):.2f} | {statistics.mean(r['train'] for r in runs):.2f} "
            f"|{final_evaluation} {devices} | {dates} |"
        )
    return "\n".join(lines) + "\n"


def matrix_metrics(run_dir: Path, metric: str, train_metric: str) -> tuple[str, str]:
    """The test and training metrics a run enters the matrix with: ``metric`` and ``train_metric`` where the run
    logs ``metric``, else its returns (VMAS and pursuit runs log no win rate)."""
    try:
        read_metric(run_dir, metric)
    except (FileNotFoundError, ValueError):
        return "test_return", "episode_return"
    return metric, train_metric


def steps_text(frames: int) -> str:
    """Environment steps, short and rounded down: 3,000,205 → 3M, 6,823,558 → 6.8M, 300,068 → 300k."""
    if frames >= 1_000_000:
        return f"{math.floor(frames / 100_000) / 10:g}M"
    return f"{frames // 1000}k"


def budgets_per_env(rows: list[dict]) -> dict[str, set[int]]:
    """The budgets (``experiment.total_frames``) each env's runs had."""
    budgets: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        budgets[row["env"]].add(row["budget"])
    return budgets


def matrix(rows: list[dict], title: str, command: str, cell: Callable[[list[float]], str] = mean_spread) -> str:
    """Markdown: one line per env (in the order of ``rows``), one column per method (``method_sort_key``); each cell
    ``<cell(scores)> (n seeds), <steps every seed reached> of <budget>`` (``mean ± std`` by default), or "not
    run". Steps past the budget (the last batch's) count as the budget. An env whose runs had different budgets
    gets one line per budget (``smax_2s3z (3M budget)``), so that no cell pools runs of two budgets."""
    budgets = budgets_per_env(rows)
    rows_per_line: dict[str, list[dict]] = defaultdict(list)  # in the order of ``rows``
    for row in rows:
        env = row["env"]
        rows_per_line[env if len(budgets[env]) == 1 else f"{env} ({steps_text(row['budget'])} budget)"].append(row)
    methods = sorted({row["method"] for row in rows}, key=method_sort_key)
    lines = [f"### {title}", "", f"`{command}`", "",
             "| map | measure | " + " | ".join(method_label(m) for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for label, env_rows in rows_per_line.items():
        evaluated = all("evaluation" in row for row in env_rows)
        if evaluated:
            episodes = "/".join(sorted({str(row["evaluation_episodes"]) for row in env_rows}))
            measure = f"greedy win rate, {episodes} fixed test episodes"
        else:
            measure = "final " + "/".join(sorted({row["metric"].replace("_", " ") for row in env_rows}))
        cells = []
        for method in methods:
            runs = [row for row in env_rows if row["method"] == method]
            if not runs:
                cells.append("not run")
                continue
            values = [r["evaluation"]["greedy"] if evaluated else r["final"] for r in runs]
            seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
            budget = runs[0]["budget"]
            reached = min(min(r["frames"] for r in runs), budget)  # a run ends within a batch past its budget
            cells.append(f"{cell(values)} ({seeds}), {steps_text(reached)} of {steps_text(budget)}")
        lines.append(f"| {label} | {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def block_key(title: str) -> str:
    """The marker name a block gets from its title when no ``--key`` is given."""
    return re.sub(r"\W+", "_", title.lower()).strip("_")


def write_between_markers(path: Path, key: str, text: str) -> None:
    """Replaces the block between ``<!-- results:key -->`` markers in ``path`` (appends it when absent)."""
    start, end = f"<!-- results:{key} -->", f"<!-- /results:{key} -->"
    block = f"{start}\n{text}{end}\n"
    content = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    found = len(pattern.findall(content))
    if found > 1:  # each copy would be rewritten alike, and a page's text around them would only say it once
        sys.exit(f"error: {path} holds the markers of {key!r} {found} times; keep one pair")
    if found:
        content = pattern.sub(lambda _: block, content)
    else:
        content = content + ("\n" if content else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def table_rows(run_dirs: list[Path], last: int, metric: str, train_metric: str, up_to_frames: int | None,
               unfinished: bool, evaluation_files: list[Path], for_matrix: bool) -> list[dict]:
    """One :func:`run_row` per run, with its final evaluation from ``evaluation_files``; ``for_matrix``: each run
    with the metrics of :func:`matrix_metrics`, and runs missing from the evaluations admitted."""
    refuse_repeated_runs(run_dirs)
    rows = []
    for run_dir in run_dirs:
        metrics = matrix_metrics(run_dir, metric, train_metric) if for_matrix else (metric, train_metric)
        rows.append(run_row(run_dir, last, *metrics, up_to_frames, unfinished))
    if evaluation_files:
        add_evaluation(rows, run_dirs, read_evaluations(evaluation_files), missing_ok=for_matrix)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown file to write the block into (default: print it)")
    parser.add_argument("--title", default="Results")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    parser.add_argument("--command", default="python scripts/train.py ...", help="the command the runs came from")
    parser.add_argument("--last", type=int, default=3, help="evaluations averaged into the final win rate")
    parser.add_argument("--metric", default="test_win_rate", help="the test metric (test.csv column)")
    parser.add_argument("--train-metric", default="win_rate", help="the training metric (metrics.csv column)")
    parser.add_argument("--evaluation", type=Path, nargs="*", default=[],
                        help="JSON files of scripts/evaluate_runs.py holding every run's final evaluation")
    parser.add_argument("--up-to-frames", type=int, default=None,
                        help="use each run's first N environment steps only (a budget all of them reached)")
    parser.add_argument("--unfinished", action="store_true",
                        help="admit runs stopped before their budget (the table shows the steps they reached)")
    parser.add_argument("--matrix", action="store_true",
                        help="one row per env, one column per method (greedy win rate where evaluated, else the "
                             "final test metric; seeds; steps reached of the budget)")
    args = parser.parse_args(argv)
    try:
        rows = table_rows(args.run_dirs, args.last, args.metric, args.train_metric, args.up_to_frames,
                          args.unfinished, args.evaluation, args.matrix)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    key = args.key or block_key(args.title)
    text = (matrix(rows, args.title, args.command) if args.matrix
            else table(rows, args.title, args.command, args.metric, args.train_metric))
    if args.out is None:
        print(text, end="")
        return
    write_between_markers(args.out, key, text)
    print(f"wrote the {args.title!r} table to {args.out}")


if __name__ == "__main__":
    main()
