"""scripts/diagnostics_table.py against the archived 5m_vs_6m records, averaged by hand."""
from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

from conftest import run_in_process

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
