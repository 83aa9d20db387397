"""scripts/short_episodes.py on hand-written training tables whose short, scoreless batches are known."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import run_in_process

ROOT = Path(__file__).resolve().parents[1]
ARCHIVED = ROOT / "results" / "smax_3s5z_vs_3s6z" / "runs"


def make_run(root: Path, method: str, seed: int, rows: list[tuple[int, float, float]]) -> Path:
    """A run directory with an archived run's config (its seed replaced) and a metrics table of
    ``(frames, episode_length, episode_return)`` rows."""
    run = root / f"{method}_s{seed}"
    run.mkdir()
    config = (ARCHIVED / f"smax_3s5z_vs_3s6z_{method}_s0" / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("seed: 0\n", f"seed: {seed}\n", 1))
    lines = ["update,frames,episode_length,episode_return"]
    lines += [f"{i},{frames},{length},{ret}" for i, (frames, length, ret) in enumerate(rows)]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run


def test_counts_short_scoreless_batches_and_the_runs_that_end_in_them(tmp_path, capsys):
    long = [(1000 * i, 60.0, 7.0) for i in range(20)]
    runs = [
        # a quick win is short but scores: not counted
        make_run(tmp_path, "liir", 0, [(f, 12.0 if f == 5000 else n, 20.0 if f == 5000 else r) for f, n, r in long]),
        # two scoreless short batches at 3000 and 8000 steps, then back to long battles
        make_run(tmp_path, "liir_lambda0", 0, [(f, 11.0 if f in (3000, 8000) else n, 0.0 if f in (3000, 8000)
                                                else r) for f, n, r in long]),
        # from 8000 steps to the end: ends there
        make_run(tmp_path, "liir_lambda0", 1, [(f, 7.0, 0.0) if f >= 8000 else (f, n, r) for f, n, r in long]),
        make_run(tmp_path, "liir_lambda0", 2, long),
    ]
    out = tmp_path / "README.md"
    out.write_text("<!-- results:walls -->\n<!-- /results:walls -->\n")
    script = [sys.executable, str(ROOT / "scripts" / "short_episodes.py"), *map(str, runs), "--below", "15",
              "--max-return", "1", "--title", "Walls", "--key", "walls", "--out", str(out)]
    done = subprocess.run(script, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "| smax_3s5z_vs_3s6z | LIIR | 1 | 0 | — | — | 0 |" in text
    assert "| smax_3s5z_vs_3s6z | LIIR, λ = 0 | 3 | 2 (seeds 0, 1) | 0.00M–0.01M | 0.01M–0.02M | 1 (seed 1) |" in text
    # Fisher's exact test on [[0, 1], [2, 1]]: the one-sided tables as or less likely sum to p = 1 here
    assert ("runs that had a batch of short episodes, LIIR 0 of 1 against LIIR, λ = 0 2 of 3: Fisher's exact "
            "test, two-sided p = 1.000.") in text
    bad = run_in_process([*script[:2], str(runs[0]), "--below", "0", "--max-return", "1"], capsys)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: --below=0: must be > 0"


def test_hand_checked_fisher_p_and_the_archived_wall_collapses(capsys):
    """On the archived 3s5z_vs_3s6z runs: LIIR's seed 3 is the one LIIR run that walks into the edge, λ = 0's
    seeds 2, 3 and 5 end there (their episodes of 7–12 steps, return 0, read off metrics.csv.gz by hand)."""
    runs = sorted(ARCHIVED.glob("smax_3s5z_vs_3s6z_liir*_s[0-9]"))
    done = run_in_process([sys.executable, "scripts/short_episodes.py", *map(str, runs), "--below", "15",
                           "--max-return", "1"], capsys)
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[1]: line for line in done.stdout.splitlines() if line.startswith("| smax_")}
    assert rows["LIIR"].endswith("| 1 (seed 3) |")
    assert rows["LIIR, λ = 0"].endswith("| 3 (seeds 2, 3, 5) |")
    # 1 of 10 against 9 of 10: p = 2 × (C(10,1)C(10,9) + C(10,0)C(10,10)) / C(20,10) = 2 × 101 / 184756
    assert f"p = {2 * 101 / 184756:.3f}" in done.stdout.split("had a batch")[1].splitlines()[0]


def test_a_run_without_the_tables_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(ARCHIVED / "smax_3s5z_vs_3s6z_liir_s0", run)
    (run / "metrics.csv.gz").unlink()
    done = run_in_process([sys.executable, "scripts/short_episodes.py", str(run), "--below", "15",
                           "--max-return", "1"], capsys)
    assert done.returncode == 1 and done.stderr.strip().startswith("error: ") and "\n" not in done.stderr.strip()
