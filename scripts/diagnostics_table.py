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
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import block_key, write_between_markers  # noqa: E402
from run_records import env_of, method_label, method_of, method_sort_key, read_metric  # noqa: E402

from torchrl_liir.config_checks import ConfigError  # noqa: E402
from torchrl_liir.trainers.config import load_saved_config  # noqa: E402

COLUMNS = (("entropy", "policy entropy", 2), ("intrinsic_reward", "mean r_in", 2),
           ("r_in_saturated", "r_in above 95 % of its bound", 2),
           ("r_in_spread_actions", "r_in spread across actions", 2),
           ("proxy_advantage_share_r_in", "share of the advantage r_in moves", 3),
           ("update_norm_intrinsic", "η's step ‖Δη‖", 4))


def window_mean(run_dir: Path, column: str, start: int, end: int) -> float | None:
    """The mean of ``column`` over the run's updates at steps in ``[start, end]``; None if it did not log it."""
    try:
        values = read_metric(run_dir, column)
    except (FileNotFoundError, ValueError):
        return None
    inside = values[(values[:, 0] >= start) & (values[:, 0] <= end), 1]
    inside = inside[np.isfinite(inside)]
    return float(inside.mean()) if len(inside) else None


def diagnostics_rows(run_dirs: list[Path], start: int, end: int) -> dict[tuple[str, str], list[dict]]:
    """``{(map, method): [{column: window mean or None}, ...]}``, one dict per run."""
    rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run_dir in run_dirs:
        cfg = load_saved_config(run_dir / "config.yaml")
        env = env_of(cfg)
        rows[env, method_of(cfg)].append({name: window_mean(run_dir, name, start, end) for name, _, _ in COLUMNS})
    return rows


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--window", type=int, nargs=2, metavar=("START", "END"), required=True,
                        help="the steps whose updates are averaged")
    parser.add_argument("--title", default="r_in diagnostics")
    parser.add_argument("--key", default=None, help="marker name of the block (default: from the title)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file to write the block into")
    args = parser.parse_args(argv)
    start, end = args.window
    if start > end:
        sys.exit(f"error: --window {start} {end}: the start is past the end")
    try:
        rows = diagnostics_rows(args.run_dirs, start, end)
    except (FileNotFoundError, ConfigError) as err:
        sys.exit(f"error: {err}")
    text = markdown(rows, args.title, start, end)
    print(text)
    if args.out is not None:
        write_between_markers(args.out, args.key or block_key(args.title), text)


if __name__ == "__main__":
    main()
