"""Test win rate (or any logged metric) against environment steps, mean ± std over seeds (paper Fig. 3).

    python scripts/plot_curves.py runs/*smax_3m* --out results/smax_3m_win_rate.png
    python scripts/plot_curves.py runs/a runs/b --metric test_return

One line per method (the run's algorithm, and LIIR's variant: ``method_of``), shaded ±1 std over its seeds; each seed's
curve is interpolated onto a common grid of env steps, up to the shortest seed of the
method. Also writes the plotted numbers as CSV next to the PNG.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from run_records import method_label, method_of, method_sort_key, read_metric, refuse_repeated_runs

from torchrl_liir.trainers.config import load_saved_config


def group_runs(run_dirs: list[Path], metric: str, up_to_frames: int | None = None) -> dict[str, list[np.ndarray]]:
    """Curves of ``metric`` grouped by method (:func:`method_of` each run's ``config.yaml``), each cut after
    ``up_to_frames`` steps where given."""
    refuse_repeated_runs(run_dirs)
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for run_dir in run_dirs:
        config = run_dir / "config.yaml"
        if not config.exists():
            raise FileNotFoundError(f"{config} is missing: is {run_dir} a training run directory?")
        curve = read_metric(run_dir, metric)
        if up_to_frames is not None:
            curve = curve[curve[:, 0] <= up_to_frames]
        groups[method_of(load_saved_config(config))].append(curve)
    return dict(groups)


def mean_std(curves: list[np.ndarray], points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common step grid (to the shortest curve) and the mean and std of the curves on it."""
    end = min(curve[-1, 0] for curve in curves)
    grid = np.linspace(0.0, end, points)
    values = np.stack([np.interp(grid, curve[:, 0], curve[:, 1]) for curve in curves])
    return grid, values.mean(0), values.std(0)


def plot(groups: dict[str, list[np.ndarray]], metric: str, title: str, out: Path) -> list[dict]:
    """Writes the figure to ``out`` and the plotted numbers to ``out`` with a ``.csv`` suffix."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    rows = []
    order = sorted(groups, key=method_sort_key)
    for i, method in enumerate(order):
        grid, mean, std = mean_std(groups[method])
        seeds = len(groups[method])
        label = f"{method_label(method)} ({seeds} seed{'s' if seeds > 1 else ''})"
        ax.plot(grid, mean, color=f"C{i}", label=label)
        ax.fill_between(grid, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        rows += [{"method": method, "env_steps": s, "mean": m, "std": d} for s, m, d in zip(grid, mean, std)]
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric.replace("_", " "))
    if metric.endswith("win_rate"):
        ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "env_steps", "mean", "std"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="training run directories")
    parser.add_argument("--metric", default="test_win_rate",
                        help="a column of the runs' metrics.csv or test.csv (default: test_win_rate)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", type=Path, default=Path("win_rate.png"), help="output PNG (a CSV is written beside)")
    parser.add_argument("--up-to-frames", type=int, default=None, help="each run's first N steps only")
    args = parser.parse_args(argv)
    try:
        groups = group_runs(args.run_dirs, args.metric, args.up_to_frames)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    plot(groups, args.metric, args.title or args.metric.replace("_", " "), args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
