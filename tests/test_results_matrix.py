"""scripts/results_table.py --matrix (one row per map, one column per method) and the run directories and smallest
detectable differences of scripts/compare_methods.py, against hand values and the archived records in results/."""
from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
import sys
from pathlib import Path

import pytest
from conftest import run_in_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from compare_methods import detectable  # noqa: E402
from results_table import add_evaluation, main, matrix, steps_text, write_between_markers  # noqa: E402


def _row(env, method, seed, frames, budget, final, greedy=None, metric="test_win_rate"):
    row = {"env": env, "method": method, "seed": seed, "frames": frames, "budget": budget, "final": final,
           "metric": metric}
    if greedy is not None:
        row.update(evaluation={"greedy": greedy, "stochastic": greedy / 2}, evaluation_episodes=500)
    return row


def test_steps_are_rounded_down():
    assert steps_text(3_000_000) == "3M" and steps_text(10_000_000) == "10M"
    assert steps_text(6_823_558) == "6.8M" and steps_text(2_999_999) == "2.9M"
    assert steps_text(300_000) == "300k" and steps_text(585_999) == "585k"


def test_matrix_matches_hand_values():
    rows = [_row("smax_3m", "liir", 0, 3_000_105, 3_000_000, 0.7, greedy=0.75),
            _row("smax_3m", "liir", 1, 3_000_209, 3_000_000, 0.8, greedy=0.85),
            _row("smax_3m", "iac", 0, 3_000_020, 3_000_000, 0.9, greedy=0.9),
            _row("smax_3s5z", "liir", 0, 6_823_558, 10_000_000, 0.95),  # stopped early, not evaluated
            _row("vmas_balance", "iac", 0, 300_068, 300_000, 3.0, metric="test_return"),
            _row("vmas_balance", "iac", 1, 301_968, 300_000, 5.0, metric="test_return")]
    lines = matrix(rows, "Every map", "python scripts/train.py ...").splitlines()
    assert lines[:4] == ["### Every map", "", "`python scripts/train.py ...`", ""]
    # Columns in METHOD_ORDER (LIIR before IAC), rows in the order the runs came.
    assert lines[4:6] == ["| map | measure | LIIR | IAC |", "|---|---|---|---|"]
    # 3m: greedy 0.75 and 0.85: mean 0.80, std √(2·0.05²/1) = 0.0707; steps past the budget count as the budget.
    assert lines[6] == ("| smax_3m | greedy win rate, 500 fixed test episodes | 0.80 ± 0.07 (2 seeds), 3M of 3M "
                        "| 0.90 (1 seed), 3M of 3M |")
    # 3s5z: no evaluation, so the final test win rate; 6.8M of the 10M budget.
    assert lines[7] == "| smax_3s5z | final test win rate | 0.95 (1 seed), 6.8M of 10M | not run |"
    # VMAS: returns 3 and 5: mean 4.00, std √2 = 1.41.
    assert lines[8] == "| vmas_balance | final test return | not run | 4.00 ± 1.41 (2 seeds), 300k of 300k |"
    assert len(lines) == 9


def test_an_env_run_at_two_budgets_gets_a_line_per_budget():
    rows = [_row("smax_2s3z", "liir_lambda0", 0, 10_000_105, 10_000_000, 0.9, greedy=0.99),
            _row("smax_2s3z", "liir_lambda0", 1, 3_000_209, 3_000_000, 0.8, greedy=0.90),
            _row("smax_2s3z", "liir_lambda0", 2, 3_000_020, 3_000_000, 0.8, greedy=0.80),
            _row("smax_2s3z", "liir", 1, 3_000_020, 3_000_000, 0.8, greedy=0.70)]
    lines = matrix(rows, "Every map", "python scripts/train.py ...").splitlines()
    # Not one λ = 0 cell of 0.90 ± 0.10 (3 seeds) "3M of 10M": seed 0's 10M run stands alone.
    assert lines[6:] == [
        "| smax_2s3z (10M budget) | greedy win rate, 500 fixed test episodes | not run | 0.99 (1 seed), 10M of 10M |",
        "| smax_2s3z (3M budget) | greedy win rate, 500 fixed test episodes | 0.70 (1 seed), 3M of 3M "
        "| 0.85 ± 0.07 (2 seeds), 3M of 3M |"]


def test_an_evaluation_finds_its_run_by_path_before_name(tmp_path):
    """Seed 0 of 2s3z ran at 10M and at 3M steps under one name: the 3M run's entry names its archived path, and the
    10M run's entry (evaluated under runs/dev/) is then the only one left to match by name."""
    ten_m, three_m = tmp_path / "runs" / "smax_2s3z_liir_s0", tmp_path / "pairs_3M" / "smax_2s3z_liir_s0"

    def entry(run, greedy):
        return {"run": str(run), "episodes": 500, "greedy": {"win_rate": greedy}, "stochastic": {"win_rate": 0.5}}

    evaluations = [entry("runs/dev/smax_2s3z_liir_s0", 0.98), entry(three_m, 0.73)]
    rows = [{}, {}]
    add_evaluation(rows, [ten_m, three_m], evaluations)
    assert [row["evaluation"]["greedy"] for row in rows] == [0.98, 0.73]
    # A same-named run of another method or seed (a short run of a former default) is not given the entry.
    with pytest.raises(ValueError, match="is method liir_eta_adam, but the evaluation entry found for it"):
        add_evaluation([{"method": "liir_eta_adam", "seed": 0}], [tmp_path / "short_runs" / "smax_2s3z_liir_s0"],
                       [{**entry("runs/dev/smax_2s3z_liir_s0", 0.98), "method": "liir", "train_seed": 0}])
    # With neither entry naming its run's path, the name is ambiguous: no run gets an evaluation.
    evaluations[1]["run"] = "elsewhere/smax_2s3z_liir_s0"
    with pytest.raises(ValueError, match="is not in the evaluation file"):
        add_evaluation([{}, {}], [ten_m, three_m], evaluations)


def test_an_evaluation_of_an_earlier_checkpoint_is_refused(tmp_path):
    """A run evaluated at 2,092,593 steps and resumed to 3,001,620 since: its entry no longer holds its final policy.
    Entries written before evaluations named their checkpoint are taken as they are."""
    run = tmp_path / "smax_3s5z_liir_s6"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"status": "finished", "frames": 3_001_620}))
    entry = {"run": str(run), "episodes": 500, "greedy": {"win_rate": 0.83}, "stochastic": {"win_rate": 0.46}}
    with pytest.raises(ValueError, match="reached 3,001,620 steps, but its evaluation entry .* played the checkpoint "
                                         "of step 2,092,593: evaluate it again"):
        add_evaluation([{}], [run], [{**entry, "checkpoint_frames": 2_092_593}])
    for found in ({**entry, "checkpoint_frames": 3_001_620}, entry):
        rows = [{}]
        add_evaluation(rows, [run], [found])
        assert rows[0]["evaluation"] == {"greedy": 0.83, "stochastic": 0.46}
    (run / "summary.json").unlink()
    with pytest.raises(ValueError, match="summary.json is missing"):
        add_evaluation([{}], [run], [{**entry, "checkpoint_frames": 3_001_620}])


def test_a_map_with_some_runs_evaluated_and_some_not_is_refused(tmp_path):
    """A matrix line is either every run's greedy evaluation or every run's final test metric: one run missing from
    the evaluations must not turn its whole map back to the 20-episode test metric."""
    runs = [tmp_path / name for name in ("smax_8m_liir_s0", "smax_8m_liir_s1", "smax_5m_vs_6m_liir_s0")]
    evaluations = [{"run": str(runs[0]), "episodes": 500, "greedy": {"win_rate": 0.9}, "stochastic": {"win_rate": 0.8}}]
    rows = [_row("smax_8m", "liir", 0, 3_000_000, 3_000_000, 0.7),
            _row("smax_8m", "liir", 1, 3_000_000, 3_000_000, 0.6),
            _row("smax_5m_vs_6m", "liir", 0, 3_000_000, 3_000_000, 0.3)]
    with pytest.raises(ValueError, match=r"smax_8m_liir_s1 is not in the evaluation file \(other runs of smax_8m"):
        add_evaluation(rows, runs, evaluations, missing_ok=True)
    # 5m_vs_6m alone, none of its runs evaluated: admitted, and its line shows the final test win rate.
    add_evaluation(rows[2:], runs[2:], evaluations, missing_ok=True)
    assert "evaluation" not in rows[2]
    assert "| smax_5m_vs_6m | final test win rate | 0.30 (1 seed), 3M of 3M |" in matrix(rows[2:], "t", "c")


def test_without_out_the_table_is_printed_and_no_file_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # results/README.md was the default --out: a bare command wrote into it
    runs = sorted((ROOT / "results" / "smax_2s3z" / "runs").iterdir())
    main([*map(str, runs), "--evaluation", str(ROOT / "results" / "smax_2s3z" / "evaluation.json"), "--matrix"])
    printed = capsys.readouterr().out
    assert printed.startswith("### Results\n") and "| smax_2s3z | greedy win rate, 500 fixed test episodes |" in printed
    assert list(tmp_path.iterdir()) == []


def _final_test_win_rate(run_dir: Path, last: int = 3) -> float:
    with (run_dir / "test.csv").open(newline="") as f:
        rates = [float(row["test_win_rate"]) for row in csv.DictReader(f)]
    return statistics.mean(rates[-last:])


@pytest.mark.slow
def test_matrix_of_the_archived_records(tmp_path, capsys):
    """2s3z (evaluated, one seed each) and 5m_vs_6m (not evaluated: the final test win rate of test.csv by hand)."""
    paired = sorted((ROOT / "results" / "smax_5m_vs_6m" / "paired").iterdir())
    out = tmp_path / "README.md"
    script = [sys.executable, str(ROOT / "scripts" / "results_table.py"), "--matrix",
              *map(str, sorted((ROOT / "results" / "smax_2s3z" / "runs").iterdir())), *map(str, paired),
              "--evaluation", str(ROOT / "results" / "smax_2s3z" / "evaluation.json"), "--out", str(out)]
    result = run_in_process(script, capsys)
    assert result.returncode == 0, result.stderr
    lines = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert lines[0] == "| map | measure | LIIR, η on Adam 1e-3 | LIIR, λ = 0 | Central-V |"  # the former default
    # evaluation.json: LIIR 491, λ = 0 497 and Central-V 497 of 500 battles.
    assert lines[1] == ("| smax_2s3z | greedy win rate, 500 fixed test episodes | 0.98 (1 seed), 10M of 10M "
                        "| 0.99 (1 seed), 10M of 10M | 0.99 (1 seed), 10M of 10M |")
    rates = {name: [_final_test_win_rate(d) for d in paired if d.name.startswith(name)] for name in ("liir", "lam0")}
    cells = [f"{statistics.mean(r):.2f} ± {statistics.stdev(r):.2f} ({len(r)} seeds), 3M of 3M" for r in rates.values()]
    assert lines[2] == f"| smax_5m_vs_6m | final test win rate | {cells[0]} | {cells[1]} | not run |"


def test_detectable_difference_matches_hand_values():
    # Across seeds: variances 0.01 and 0.01, n = 3: standard error √(0.02/3), Welch df 4;
    # t(0.975, 4) = 2.7764451 and t(0.80, 4) = 0.9409646 from the t table.
    a = {0: (0.1, 10), 1: (0.2, 10), 2: (0.3, 10)}
    b = {0: (0.4, 10), 1: (0.5, 10), 2: (0.6, 10)}
    result = detectable(a, b, paired=False)
    assert result["welch_df"] == pytest.approx(4.0)
    assert result["welch"] == pytest.approx((2.7764451 + 0.9409646) * math.sqrt(0.02 / 3), rel=1e-6)
    assert result["paired"] is None
    # Seed for seed: differences 0.05, 0.04, 0.04, standard error 0.01/3 (test_compare_methods.py), 2 df, where
    # the t distribution's quantile is closed-form: t(p, 2) = (2p − 1)/√(2p(1 − p)).
    a = {0: (0.80, 100), 1: (0.70, 100), 2: (0.90, 100)}
    b = {0: (0.75, 100), 1: (0.66, 100), 2: (0.86, 100)}

    def quantile(p):
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))

    result = detectable(a, b)
    assert result["paired_df"] == 2
    assert result["paired"] == pytest.approx((quantile(0.975) + quantile(0.8)) * 0.01 / 3, rel=1e-6)


@pytest.mark.slow
def test_compare_methods_reads_run_directories(capsys):
    """5m_vs_6m's runs kept no policy: each enters with its final test win rate, the mean of its last 3 tests."""
    paired = sorted((ROOT / "results" / "smax_5m_vs_6m" / "paired").iterdir())
    script = [sys.executable, str(ROOT / "scripts" / "compare_methods.py"), *map(str, paired),
              "--a", "liir_eta_adam", "--b", "liir_lambda0"]
    result = run_in_process(script, capsys)
    assert result.returncode == 0, result.stderr
    per_seed = ", ".join(f"{_final_test_win_rate(d):.3f} (seed {d.name[-1]})" for d in paired
                         if d.name.startswith("liir"))
    assert f"| greedy win rate per seed | {per_seed} |" in result.stdout
    assert "Seed for seed (paired t-test)" in result.stdout  # one algorithm, the same seeds
    assert "Smallest difference these seeds detect" in result.stdout
    refused = run_in_process([*script, "--policy", "stochastic"], capsys)
    assert refused.returncode == 1 and "no stochastic win rate" in refused.stderr


def test_compare_methods_refuses_two_evaluations_of_one_seed(capsys):
    """3m's and 8m's files together, without --env: seed for seed, one map's entries would overwrite the other's."""
    files = [str(ROOT / "results" / m / "evaluation.json") for m in ("smax_3m_3M", "smax_8m")]
    script = [sys.executable, str(ROOT / "scripts" / "compare_methods.py"), *files,
              "--a", "liir", "--b", "liir_lambda0"]
    refused = run_in_process(script, capsys)
    assert refused.returncode == 1
    assert "method 'liir' has two evaluations of seed 0 (" in refused.stderr
    assert "pass one map (--env)" in refused.stderr
    one_map = run_in_process([*script, "--env", "smax_8m"], capsys)
    assert one_map.returncode == 0, one_map.stderr


EVALUATION_3S5Z = str(ROOT / "results" / "smax_3s5z" / "evaluation_3M.json")


@pytest.mark.parametrize("script, options", [
    ("results_table", []), ("aggregate_stats", []), ("plot_curves", []),
    ("short_episodes", ["--below", "15", "--max-return", "1"]),
    ("diagnostics_table", ["--window", "1000000", "3000000"]),
    ("learning_onset", ["--evaluation", EVALUATION_3S5Z])])
def test_one_run_passed_twice_is_refused_not_counted_as_two_seeds(tmp_path, capsys, script, options):
    """The same directory twice (overlapping globs), or a run beside a copy of it (runs/ and its archive): either
    would count as two seeds in every table and statistic."""
    runs = sorted((ROOT / "results" / "smax_3s5z" / "pairs_3M").glob("smax_3s5z_liir_s[1-3]"))
    copy = tmp_path / "elsewhere" / runs[0].name
    shutil.copytree(runs[0], copy)
    for given, twice in (([*runs, runs[0]], runs[0]), ([*runs, copy], copy)):
        done = run_in_process([sys.executable, str(ROOT / "scripts" / f"{script}.py"), *map(str, given), *options],
                              capsys)
        assert done.returncode == 1
        assert done.stderr.strip() == (f"error: {runs[0]} and {twice} are one run (LIIR, seed 1 on smax_3s5z, "
                                       "3,000,000 steps): pass each run once")


def test_plot_curves_cuts_each_run_at_a_budget(tmp_path, capsys):
    run = ROOT / "results" / "smax_5m_vs_6m" / "paired" / "lam0_s1"
    out = tmp_path / "curves.png"
    done = run_in_process([sys.executable, str(ROOT / "scripts" / "plot_curves.py"), str(run), "--up-to-frames",
                           "1000000", "--out", str(out)], capsys)
    assert done.returncode == 0, done.stderr
    with (run / "test.csv").open(newline="") as f:
        tests = [(int(r["frames"]), float(r["test_win_rate"])) for r in csv.DictReader(f)]
    last = [t for t in tests if t[0] <= 1_000_000][-1]
    assert tests[-1][0] > 1_000_000  # the run went on past the cut
    with out.with_suffix(".csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["env_steps"]) == last[0] and float(rows[-1]["mean"]) == pytest.approx(last[1])


def test_a_block_is_rewritten_in_place_and_a_page_with_its_markers_twice_is_refused(tmp_path):
    page = tmp_path / "README.md"
    page.write_text("intro\n<!-- results:k -->\nold\n<!-- /results:k -->\nafter\n")
    write_between_markers(page, "k", "new\n")
    assert page.read_text() == "intro\n<!-- results:k -->\nnew\n<!-- /results:k -->\nafter\n"
    page.write_text(page.read_text() * 2)
    with pytest.raises(SystemExit, match="holds the markers of 'k' 2 times"):
        write_between_markers(page, "k", "newer\n")
    assert "newer" not in page.read_text()


def _markdown_table(text: str, start: str, end: str) -> list[list[str]]:
    block = text[text.index(start) + len(start):text.index(end)]
    rows = [line for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in rows]


def test_the_readme_headline_copies_the_results_matrix():
    """README.md's headline is written by hand: each of its cells must be the IQM [95 % CI] of the matrix cell of
    the same map and method in results/README.md, which a command regenerates from the records."""
    headline = _markdown_table((ROOT / "README.md").read_text(), "<!-- headline -->", "<!-- /headline -->")
    matrix_rows = _markdown_table((ROOT / "results/README.md").read_text(), "<!-- results:matrix -->",
                                  "<!-- /results:matrix -->")
    matrix_cells = {row[0]: dict(zip(matrix_rows[0], row)) for row in matrix_rows[1:]}
    column_of = {"LIIR, former default (η on Adam 1e-3)": "LIIR, η on Adam 1e-3", "QMIX": "QMIX, transition replay"}
    checked = 0
    for row in headline[1:]:
        env, steps = row[0].split(",")[0], row[0].split(", ")[1].split()[0]  # "2s3z, 3M (10 seeds)"
        # A map run at two budgets has a line per budget in the matrix.
        cells = matrix_cells.get(f"smax_{env} ({steps} budget)") or matrix_cells[f"smax_{env}"]
        for method, cell in list(zip(headline[0], row))[1:]:
            expected = cells[column_of.get(method, method)].split(" (")[0]  # "0.74 [0.71, 0.75] (10 seeds), ..."
            assert cell.replace("\xa0", " ") == expected, (row[0], method, cell, expected)  # no-break spaces
            checked += 1
    assert checked >= 21
