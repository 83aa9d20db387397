"""scripts/aggregate_stats.py: the IQM, mean and probability of improvement (rliable) against hand values, their
bootstrap intervals, the marl-eval JSON, and the script on the archived SMAX 3m records."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_in_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from aggregate_stats import (  # noqa: E402
    frame_grid,
    group,
    improvement,
    interval_estimates,
    iqm_and_mean,
    iqm_cell,
    marl_eval,
)


def test_iqm_is_the_mean_of_the_runs_left_after_cutting_a_quarter_rounded_down_from_each_end():
    scores = np.array([[0.1, 0.3], [0.9, 1.0], [0.4, 0.2], [0.0, 0.8], [0.6, 0.5]])  # 5 runs, 2 maps
    iqm, mean = iqm_and_mean(scores)
    # 10 scores sorted: 0.0 0.1 | 0.2 0.3 0.4 0.5 0.6 0.8 | 0.9 1.0: int(10 / 4) = 2 cut from each end.
    assert iqm == pytest.approx((0.2 + 0.3 + 0.4 + 0.5 + 0.6 + 0.8) / 6)
    # Not the fractional-weight IQM (2.5 cut from each end: half of 0.2 and of 0.8 kept), which is 0.46.
    assert iqm != pytest.approx((0.5 * 0.2 + 0.3 + 0.4 + 0.5 + 0.6 + 0.5 * 0.8) / 5)
    # The mean over maps of each map's mean.
    assert mean == pytest.approx(((0.1 + 0.9 + 0.4 + 0.0 + 0.6) / 5 + (0.3 + 1.0 + 0.2 + 0.8 + 0.5) / 5) / 2)
    # Three runs on one map: nothing is cut (int(3 / 4) = 0), the IQM is the mean.
    assert iqm_and_mean(np.array([[0.2], [0.5], [0.9]]))[0] == pytest.approx(1.6 / 3)


def test_probability_of_improvement_counts_pairs_with_ties_as_one_half_averaged_over_maps():
    x = np.array([[0.1, 0.9], [0.5, 0.3], [0.5, 0.2]])
    y = np.array([[0.5, 0.3], [0.2, 0.6], [0.0, 0.0]])
    # Map 0: 0.1 beats 0.0 (1); each 0.5 ties 0.5 and beats 0.2 and 0.0 (2.5 each): 6 of 9 pairs.
    # Map 1: 0.9 beats all (3); 0.3 ties 0.3 and beats 0.0 (1.5); 0.2 beats 0.0 (1): 5.5 of 9.
    hand = (6 / 9 + 5.5 / 9) / 2
    result = improvement({"x": x, "y": y}, reps=200)
    p, low, high = result["x", "y"]
    assert list(result) == [("x", "y")] and p == pytest.approx(hand)
    assert low <= p <= high
    (p_yx, _, _), = improvement({"y": y, "x": x}, reps=200).values()
    assert p_yx == pytest.approx(1 - hand)
    # Over a baseline: every other method against it, and only that.
    assert list(improvement({"x": x, "y": y, "z": y + 0.1}, baseline="y", reps=50)) == [("x", "y"), ("z", "y")]


def test_intervals_contain_the_estimate_shrink_with_more_runs_and_repeat_with_the_seed():
    rng = np.random.default_rng(1)
    few, many = rng.uniform(size=(3, 2)), rng.uniform(size=(40, 2))
    estimates = interval_estimates({"few": few, "many": many}, iqm_and_mean, reps=500)
    for points, ci in estimates.values():
        assert ci.shape == (2, 2) and np.all(ci[0] <= points) and np.all(points <= ci[1])
    widths = {key: ci[1] - ci[0] for key, (_, ci) in estimates.items()}
    assert np.all(widths["many"] < widths["few"] / 2)
    again = interval_estimates({"few": few}, iqm_and_mean, reps=500)
    assert np.array_equal(again["few"][1], estimates["few"][1])  # each key is seeded alone: the same interval
    other = interval_estimates({"few": few}, iqm_and_mean, reps=500, seed=1)
    assert not np.array_equal(other["few"][1], estimates["few"][1])


def _row(env, method, seed, score, budget=200, curve=((0, 0.0), (100, 0.5), (210, 1.0))):
    return {"env": env, "method": method, "seed": seed, "score": score, "budget": budget,
            "curve": np.array(curve, dtype=float), "measure": "final test win rate"}


def test_group_keeps_the_same_runs_on_every_map_and_says_what_it_left_out():
    rows = ([_row("smax_3m", "liir", s, 0.5) for s in (2, 0, 1)] + [_row("smax_8m", "liir", s, 0.5) for s in range(5)]
            + [_row("smax_3m", "iac", s, 0.5) for s in range(3)]  # no 8m runs
            + [_row(env, "mappo", s, 0.5) for env in ("smax_3m", "smax_8m") for s in range(2)])  # 2 seeds
    tasks, kept, notes = group(rows)
    assert tasks == ["smax_3m", "smax_8m"] and list(kept) == ["liir"]
    assert [[r["seed"] for r in runs] for runs in kept["liir"]] == [[0, 1, 2], [0, 1, 2]]
    assert notes == ["LIIR on smax_8m: seeds 0, 1, 2 of its 5 runs (the same number of runs on every map).",
                     "IAC left out: no runs on smax_8m.", "MAPPO left out: 2 run(s) on a map, fewer than 3."]
    assert list(group(rows, min_runs=2)[1]) == ["liir", "mappo"]


def test_group_refuses_a_map_whose_runs_had_two_budgets():
    rows = [_row("smax_2s3z", "liir", s, 0.9, budget=3_000_000) for s in range(3)]
    rows.append(_row("smax_2s3z", "liir", 3, 0.99, budget=10_000_000))
    with pytest.raises(ValueError, match=r"smax_2s3z had different budgets \(3M, 10M steps\)"):
        group(rows)


def check_marl_eval(data: dict, metric: str) -> None:
    """marl-eval's raw-data layout: env → task → algorithm → run → steps (``step_count`` and the metric as a list)
    and ``absolute_metrics``; every run of a task with the same steps, every algorithm with as many runs."""
    assert json.loads(json.dumps(data)) == data
    for tasks in data.values():
        for algorithms in tasks.values():
            assert len({len(runs) for runs in algorithms.values()}) == 1
            steps = None
            for runs in algorithms.values():
                for name, run in runs.items():
                    assert name.startswith("run_") and set(run["absolute_metrics"]) == {metric}
                    assert all(isinstance(v, float) for v in run["absolute_metrics"][metric])
                    logged = {k: v for k, v in run.items() if k != "absolute_metrics"}
                    assert all(k.startswith("step_") for k in logged) and logged
                    for step in logged.values():
                        assert set(step) == {"step_count", metric} and isinstance(step["step_count"], int)
                        assert isinstance(step[metric], list) and len(step[metric]) == 1
                    counts = [step["step_count"] for step in logged.values()]
                    assert counts == sorted(counts) and (steps is None or counts == steps)
                    steps = counts


def test_marl_eval_json_has_its_layout_and_the_curves_and_scores():
    rows = [_row(env, method, s, 0.1 * s + (env == "smax_8m")) for env in ("smax_3m", "smax_8m")
            for method in ("liir", "liir_lambda0") for s in range(3)]
    tasks, kept, _ = group(rows)
    grid = frame_grid(kept, 5)
    assert grid.tolist() == [0, 50, 100, 150, 200]
    data = marl_eval(tasks, kept, grid, "test_win_rate")
    check_marl_eval(data, "win_rate")
    assert list(data) == ["smax"] and list(data["smax"]) == ["3m", "8m"]
    run = data["smax"]["8m"]["liir_lambda0"]["run_2"]
    assert list(run) == [f"step_{k}" for k in range(5)] + ["absolute_metrics"]
    assert run["step_1"] == {"step_count": 50, "win_rate": [0.25]}  # halfway from (0, 0.0) to (100, 0.5)
    assert run["step_4"] == {"step_count": 200, "win_rate": [pytest.approx(0.5 + 0.5 * 100 / 110)]}
    assert run["absolute_metrics"] == {"win_rate": [1.2]}
    with pytest.raises(AssertionError):  # the check can fail: a run with a step less
        del data["smax"]["3m"]["liir"]["run_0"]["step_4"]
        check_marl_eval(data, "win_rate")


@pytest.mark.slow
def test_script_on_the_archived_3m_runs(tmp_path, capsys):
    runs = sorted((ROOT / "results" / "smax_3m_3M" / "runs").glob("smax_3m_liir*_s[012]"))  # three seeds each
    runs = [r for r in runs if r.name.rsplit("_s", 1)[0] in ("smax_3m_liir", "smax_3m_liir_lambda0")]
    evaluation = ROOT / "results" / "smax_3m_3M" / "evaluation.json"
    out, figures = tmp_path / "README.md", tmp_path / "stats"
    out.write_text("# Notes\n\nkept\n")
    command = [sys.executable, str(ROOT / "scripts" / "aggregate_stats.py"), *map(str, runs), "--evaluation",
               str(evaluation), "--title", "3m", "--key", "k", "--reps", "200", "--points", "7", "--figures",
               str(figures), "--out", str(out)]
    done = run_in_process(command, capsys)
    assert done.returncode == 0, done.stderr
    greedy = {}
    for e in json.loads(evaluation.read_text()):
        if (e["method"] in ("liir_eta_adam", "liir_lambda0") and e["run"].rsplit("/", 1)[-1].startswith("smax_3m_liir")
                and e["train_seed"] < 3):
            greedy.setdefault(e["method"], {})[e["train_seed"]] = e["greedy"]["win_rate"]
    assert {m: sorted(s) for m, s in greedy.items()} == {"liir_eta_adam": [0, 1, 2], "liir_lambda0": [0, 1, 2]}
    text = out.read_text()
    assert text.startswith("# Notes\n\nkept\n\n<!-- results:k -->\n### 3m\n") and text.endswith("<!-- /results:k -->\n")
    for method, name in (("liir_eta_adam", "LIIR, η on Adam 1e-3"), ("liir_lambda0", "LIIR, λ = 0")):
        mean = sum(greedy[method].values()) / 3  # three runs on one map: the IQM is the mean too
        assert f"| {name} | 3 | {mean:.3f} [" in text and f"] | {mean:.3f} [" in text
    wins = sum((a > b) + 0.5 * (a == b) for a in greedy["liir_eta_adam"].values()
               for b in greedy["liir_lambda0"].values())
    assert f"| LIIR, η on Adam 1e-3 | LIIR, λ = 0 | {wins / 9:.3f} [" in text
    assert "smax_3m: greedy win rate, 500 fixed test episodes" in text and "200 resamples" in text
    assert "[performance profiles](stats/k_profiles.png)" in text
    assert text.split("<!-- results:k -->\n")[1].split("<!-- /results:k -->")[0] in done.stdout
    files = {name: figures / f"k_{name}" for name in ("profiles.png", "sample_efficiency.png", "marl_eval.json")}
    for name in ("profiles.png", "sample_efficiency.png"):
        assert files[name].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    data = json.loads(files["marl_eval.json"].read_text())
    check_marl_eval(data, "win_rate")
    assert list(data["smax"]["3m"]) == ["liir_eta_adam", "liir_lambda0"]
    liir = data["smax"]["3m"]["liir_eta_adam"]
    assert [liir[f"run_{s}"]["absolute_metrics"]["win_rate"] for s in range(3)] == \
        [[greedy["liir_eta_adam"][s]] for s in range(3)]
    assert [step["step_count"] for k, step in liir["run_0"].items() if k != "absolute_metrics"] == \
        [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000]
    # The same command writes the same bytes.
    before = {path: path.read_bytes() for path in (out, *files.values())}
    assert run_in_process(command, capsys).returncode == 0
    assert {path: path.read_bytes() for path in before} == before
    refused = run_in_process([*command[:-4], "--baseline", "iac"], capsys)
    assert refused.returncode == 1 and "the baseline 'iac' is not among the methods kept" in refused.stderr


def test_a_matrix_cell_is_the_iqm_of_its_runs_with_a_bootstrap_interval():
    # 8 runs sorted: 0 1 | 2 3 4 5 | 6 7: two cut from each end, IQM 3.5.
    cell = iqm_cell([7.0, 0.0, 5.0, 1.0, 3.0, 6.0, 2.0, 4.0], reps=500)
    point, interval = cell.split(" ", 1)
    assert point == "3.50"
    low, high = (float(x) for x in interval.strip("[]").split(", "))
    assert 0.0 <= low < 3.5 < high <= 7.0
    assert iqm_cell([0.42]) == "0.42"  # one run: its score, no interval
    assert iqm_cell([0.2, 0.2, 0.2]) == "0.20 [0.20, 0.20]"


def test_the_iqm_matrix_on_the_archived_runs(tmp_path, capsys):
    runs = sorted((ROOT / "results" / "smax_3m_3M" / "runs").glob("smax_3m_liir*_s[012]"))  # three seeds each
    runs = [r for r in runs if r.name.rsplit("_s", 1)[0] in ("smax_3m_liir", "smax_3m_liir_lambda0")]
    evaluation = ROOT / "results" / "smax_3m_3M" / "evaluation.json"
    out = tmp_path / "README.md"
    out.write_text("<!-- results:m -->\n<!-- /results:m -->\n")
    command = [sys.executable, str(ROOT / "scripts" / "aggregate_stats.py"), "--matrix", *map(str, runs),
               "--evaluation", str(evaluation), "--title", "IQM", "--key", "m", "--reps", "200", "--out", str(out)]
    done = run_in_process(command, capsys)
    assert done.returncode == 0, done.stderr
    greedy = {}
    for e in json.loads(evaluation.read_text()):
        if (e["method"] in ("liir_eta_adam", "liir_lambda0") and e["run"].rsplit("/", 1)[-1].startswith("smax_3m_liir")
                and e["train_seed"] < 3):
            greedy.setdefault(e["method"], []).append(e["greedy"]["win_rate"])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| smax_3m |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][2:]
    for cell, method in zip(cells, ("liir_eta_adam", "liir_lambda0")):
        assert cell.startswith(f"{sum(greedy[method]) / 3:.2f} [") and cell.endswith("(3 seeds), 3M of 3M")
    # --up-to-frames: each run's first 1M steps, its final test win rate there (the last 3 evaluations by hand).
    early = run_in_process([*command[:-2], "--up-to-frames", "1000000"], capsys)
    assert early.returncode == 0, early.stderr
    by_hand = {}
    for run in runs:
        with (run / "test.csv").open(newline="") as f:
            rates = [float(r["test_win_rate"]) for r in csv.DictReader(f) if int(r["frames"]) <= 1_000_000]
        by_hand.setdefault("lambda0" in run.name, []).append(sum(rates[-3:]) / 3)
    row = next(line for line in early.stdout.splitlines() if line.startswith("| smax_3m |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    assert cells[0] == "final test win rate"
    for cell, lambda0 in zip(cells[1:], (False, True)):
        assert cell.startswith(f"{sum(by_hand[lambda0]) / 3:.2f} [") and cell.endswith("(3 seeds), 1M of 1M")
