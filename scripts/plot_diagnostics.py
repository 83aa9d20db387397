"""Diagnostics of LIIR's intrinsic reward r_in against environment steps, one panel each, for one run.

    python scripts/plot_diagnostics.py runs/<run>                         # writes runs/<run>/diagnostics.png
    python scripts/plot_diagnostics.py results/smax_3m/runs/<run> --out /tmp/diagnostics.png

Reads the run's ``metrics.csv`` (or the archived ``metrics.csv.gz``): r_in's mean (eq. 2), its spread across the
agents of a step and across the actions of a state, the fraction of r_in near its bound, the size of η's optimiser
step (its gradient norm beside it) and the share of the policy's proxy advantage (eq. 3, 6) that r_in moves. Each
panel shows the per-update values and their moving average. Runs logged before these columns existed are refused
in one line.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

# (column, title, y label); the first three every LIIR run logs, the others only with a discrete-action or bounded
# intrinsic reward (LIIRLoss's docstring).
REQUIRED = ("r_in_spread_agents", "proxy_advantage_share_r_in", "update_norm_intrinsic")
PANELS = (
    ("intrinsic_reward", "mean r_in over valid entries", "r_in"),
    ("r_in_spread_agents", "r_in spread across a step's living agents", "mean std"),
    ("r_in_spread_actions", "r_in spread across a state's available actions", "mean std"),
    ("r_in_saturated", "r_in above 95 % of its bound", "fraction of entries"),
    ("update_norm_intrinsic", "η's step ‖Δη‖ (gradient norm dashed, right)", "‖Δη‖"),
    ("proxy_advantage_share_r_in", "share of the proxy advantage r_in moves", "mean|ΔÂ| / mean|Â|"),
)


def read_columns(run_dir: Path) -> dict[str, np.ndarray]:
    """``{column: [n, 2] array of (frames, value)}`` of the panels' columns and η's gradient norm, from the run's
    ``metrics.csv`` or archived ``metrics.csv.gz`` (``read_metric``); refuses a run without :data:`REQUIRED`."""
    from run_records import read_metric

    columns = {}
    for name in dict.fromkeys((*REQUIRED, *(panel[0] for panel in PANELS), "grad_norm_intrinsic")):
        try:
            columns[name] = read_metric(run_dir, name)
        except ValueError:
            if name in REQUIRED:
                raise ValueError(f"{run_dir} has no column {name}: a run logged before the r_in diagnostics, or "
                                 "not a LIIR run") from None
    return columns


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values among the last ``window`` at each point (fewer at the start; NaN if none)."""
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(end - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums[end] - sums[start]) / (counts[end] - counts[start])


def run_title(run_dir: Path) -> str:
    """The run's name, with its method, task and λ where its ``config.yaml`` says them."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        return run_dir.name
    from run_records import method_label, method_of

    from torchrl_liir.trainers.config import load_saved_config

    cfg = load_saved_config(config)
    task = cfg.task.name + (f" {cfg.task.map}" if "map" in cfg.task else "")
    method = method_of(cfg)
    return f"{run_dir.name}: {method_label(method)} on {task}, λ = {cfg.algo.get('lambda_in', 'n/a')}"


def plot(columns: dict[str, np.ndarray], title: str, out: Path) -> list[str]:
    """Writes the figure to ``out``; returns the columns it drew a panel of."""
    panels = [panel for panel in PANELS if panel[0] in columns]
    window = max(1, len(columns[REQUIRED[0]]) // 30)
    cols = 3
    fig = Figure(figsize=(4.2 * cols, 3.4 * math.ceil(len(panels) / cols)))
    axes = fig.subplots(math.ceil(len(panels) / cols), cols, squeeze=False).ravel()
    for ax, (name, label, unit) in zip(axes, panels):
        frames, values = columns[name].T
        if window > 1:
            ax.plot(frames, values, color="C0", alpha=0.35, linewidth=0.8, label="per update")
            ax.plot(frames, moving_average(values, window), color="C0", label=f"moving average ({window} updates)")
        else:
            ax.plot(frames, values, color="C0", label="per update")
        if name == "update_norm_intrinsic" and "grad_norm_intrinsic" in columns:
            twin = ax.twinx()
            grad_frames, grad_norms = columns["grad_norm_intrinsic"].T
            twin.plot(grad_frames, moving_average(grad_norms, window), color="C3", linestyle="--", linewidth=0.9)
            twin.set_ylabel("‖∇η‖ before the step", color="C3", fontsize=8)
            twin.tick_params(axis="y", labelcolor="C3", labelsize=7)
        if name == "r_in_saturated":
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("environment steps", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(loc="best", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return [panel[0] for panel in panels]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a LIIR training run directory (or an archived one in results/)")
    parser.add_argument("--out", type=Path, default=None, help="output PNG (default: diagnostics.png in the run)")
    args = parser.parse_args(argv)
    try:
        columns = read_columns(args.run_dir)
        title = run_title(args.run_dir)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    out = args.out or args.run_dir / "diagnostics.png"
    drawn = plot(columns, title, out)
    print(f"wrote {out} ({len(drawn)} panels: {', '.join(drawn)})")


if __name__ == "__main__":
    main()
