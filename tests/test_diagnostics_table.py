"""scripts/diagnostics_table.py against archived records averaged by hand, and its rank correlations against the
textbook formula and every pairing counted."""
from __future__ import annotations

import csv
import gzip
import itertools
import json
import sys
from pathlib import Path

import pytest
from conftest import run_in_process
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
PAIRED = ROOT / "results" / "smax_5m_vs_6m" / "paired"


def by_hand(run: Path, column: str, start: int, end: int) -> float | None:
    with gzip.open(run / "metrics.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    if column not in rows[0]:
        return None
    values = [float(r[column]) for r in rows if start <= float(r["frames"]) <= end and r[column] != ""]
    return sum(values) / len(values)


def test_each_cell_is_the_mean_over_runs_of_each_runs_window_mean(tmp_path, capsys):
    runs = [PAIRED / "liir_s5", PAIRED / "liir_s0", PAIRED / "lam0_s5"]
    out = tmp_path / "README.md"
    out.write_text("<!-- results:d -->\n<!-- /results:d -->\n")
    script = [sys.executable, str(ROOT / "scripts" / "diagnostics_table.py"), *map(str, runs),
              "--window", "100000", "400000", "--title", "D", "--key", "d", "--out", str(out)]
    done = run_in_process(script, capsys)
    assert done.returncode == 0, done.stderr
    lines = {line.split(" | ")[1]: line for line in out.read_text().splitlines() if line.startswith("| smax_")}
    liir = [c.strip() for c in lines["LIIR, η on Adam 1e-3"].strip("|").split("|")]
    assert liir[2] == "2"
    entropy = [by_hand(run, "entropy", 100_000, 400_000) for run in runs[:2]]
    assert liir[3] == f"{sum(entropy) / 2:.2f}"
    # Seed 0 ran before the diagnostics: the saturation cell is seed 5's alone, and says so.
    assert by_hand(runs[1], "r_in_saturated", 0, 10**9) is None
    assert liir[5] == f"{by_hand(runs[0], 'r_in_saturated', 100_000, 400_000):.2f} (1 of 2 runs)"
    assert liir[7] == f"{by_hand(runs[0], 'proxy_advantage_share_r_in', 100_000, 400_000):.3f} (1 of 2 runs)"
    assert "| LIIR, λ = 0 | 1 |" in lines["LIIR, λ = 0"]
    bad = run_in_process([*script[:2 + len(runs)], "--window", "5", "1"], capsys)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: --window 5 1: the start is past the end"


SAFE_WALLS = ROOT / "results" / "smax_3s5z_vs_3s6z" / "safe_walls"


def spearman_by_hand(xs: list[float], ys: list[float]) -> float:
    """1 − 6 Σd² / (n (n² − 1)), the textbook formula for ranks without ties."""
    rank = {v: i for i, v in enumerate(sorted(xs))}, {v: i for i, v in enumerate(sorted(ys))}
    d2 = sum((rank[0][x] - rank[1][y]) ** 2 for x, y in zip(xs, ys))
    n = len(xs)
    return 1 - 6 * d2 / (n * (n * n - 1))


def exact_p_by_hand(xs: list[float], ys: list[float]) -> float:
    """The share of all n! pairings whose |ρ| reaches the observed one."""
    observed = abs(spearman_by_hand(xs, ys))
    pairings = list(itertools.permutations(ys))
    return sum(abs(spearman_by_hand(xs, list(p))) >= observed - 1e-12 for p in pairings) / len(pairings)


def test_rank_correlation_against_the_textbook_formula_and_every_pairing():
    sys.path.insert(0, str(ROOT / "scripts"))
    from diagnostics_table import rank_correlation

    # Ranks 1,2,3,4 against 1,3,4,2: Σd² = 0 + 1 + 1 + 4 = 6, ρ = 1 − 36/60 = 0.4; of the 24 pairings, 18 have
    # Σd² ≤ 6 or ≥ 14 (|ρ| ≥ 0.4), so p = 0.75.
    rho, p = rank_correlation([0.1, 0.2, 0.3, 0.4], [10.0, 30.0, 40.0, 20.0])
    assert rho == pytest.approx(0.4) and p == pytest.approx(0.75)
    assert exact_p_by_hand([0.1, 0.2, 0.3, 0.4], [10.0, 30.0, 40.0, 20.0]) == pytest.approx(0.75)
    # Three runs in perfect order: 2 of the 6 pairings are as extreme, p = 1/3, not the t approximation's 0.
    assert rank_correlation([1.0, 2.0, 3.0], [5.0, 6.0, 7.0]) == pytest.approx((1.0, 1 / 3))
    # Ties take their average rank, as scipy's spearmanr does.
    xs, ys = [1.0, 2.0, 2.0, 3.0, 5.0], [0.3, 0.1, 0.4, 0.5, 0.9]
    assert rank_correlation(xs, ys)[0] == pytest.approx(stats.spearmanr(xs, ys).statistic)


def test_per_run_rows_and_their_correlation_with_the_greedy_win_rate(tmp_path, capsys):
    runs = sorted(SAFE_WALLS.glob("*_liir_s[0-5]"))  # six runs: 720 pairings, every one counted on both sides
    evaluation = ROOT / "results" / "smax_3s5z_vs_3s6z" / "safe_walls_evaluation.json"
    wins = {Path(e["run"]).name: e["greedy"]["win_rate"] for e in json.loads(evaluation.read_text())}
    script = [sys.executable, str(ROOT / "scripts" / "diagnostics_table.py"), *map(str, runs),
              "--window", "500000", "1500000", "--per-run", "--evaluation", str(evaluation)]
    done = run_in_process(script, capsys)
    assert done.returncode == 0, done.stderr
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in done.stdout.splitlines()
            if line.startswith("| smax_")]
    per_run, correlations = rows[:len(runs)], rows[len(runs):]
    by_seed = {int(row[2]): row for row in per_run}
    assert [float(row[-1]) for row in per_run] == sorted((wins[r.name] for r in runs), reverse=True)
    share = {int(r.name[-1]): by_hand(r, "proxy_advantage_share_r_in", 500_000, 1_500_000) for r in runs}
    returns = {int(r.name[-1]): by_hand(r, "episode_return", 500_000, 1_500_000) for r in runs}
    for seed, row in by_seed.items():
        assert row[7] == f"{share[seed]:.3f}" and row[9] == f"{returns[seed]:.2f}"
        assert float(row[-1]) == wins[f"smax_3s5z_vs_3s6z_safe_walls_liir_s{seed}"]
    seeds = sorted(share)
    xs, ys = [share[s] for s in seeds], [wins[f"smax_3s5z_vs_3s6z_safe_walls_liir_s{s}"] for s in seeds]
    (liir,) = correlations
    assert liir[:3] == ["smax_3s5z_vs_3s6z_safe_walls", "LIIR", str(len(runs))]
    assert liir[7] == f"{spearman_by_hand(xs, ys):+.2f} (p = {exact_p_by_hand(xs, ys):.2g})"
    bad = run_in_process([*script[:2 + len(runs)], "--window", "0", "1", "--evaluation", str(evaluation)], capsys)
    assert bad.returncode == 1 and "--evaluation scores runs for --per-run only" in bad.stderr
