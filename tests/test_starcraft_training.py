"""Training on StarCraft-style battles end to end: test episodes, the case study, the plot scripts."""
from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_in_process
from hydra import compose, initialize_config_dir
from tensordict import TensorDict

from torchrl_liir.collectors import first_episodes
from torchrl_liir.studies.starcraft_case_study import attack_health_statistic
from torchrl_liir.trainers import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["experiment.progress_bar=false", "experiment.total_frames=400", "task.num_envs=4",
        "experiment.evaluation_episodes=4", "experiment.evaluation_interval_episodes=4", "model.rnn_hidden=8",
        "model.num_cells=[16]"]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


def table(run_dir: Path, name: str) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` or ``test.csv``."""
    with (run_dir / f"{name}.csv").open(newline="") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def test_first_episodes_by_hand():
    done = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.bool).unsqueeze(-1)
    reward = torch.tensor([[1.0, 2.0, 4.0, 8.0], [0.5, 0.5, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]]).unsqueeze(-1)
    won = torch.tensor([[False, True, False, False], [False, False, False, False], [False] * 4])
    rollout = TensorDict({"next": {"done": done, "reward": reward, "info": {"battle_won": won}}}, [3, 4])
    out = first_episodes(rollout)
    # The third env never finished: left out.
    assert out["return"].tolist() == [3.0, 2.0]
    assert out["length"].tolist() == [2.0, 4.0]
    assert out["won"].tolist() == [True, False]


def test_attack_health_statistic_by_hand():
    # One episode, 2 agents, 4 steps, 5 actions of which the last 2 are attacks (2 enemies).
    health = torch.tensor([[0.9, 0.4], [0.3, 0.4], [0.2, 0.1], [0.1, 0.0]]).reshape(1, 4, 2, 1)
    action = torch.tensor([[3, 4], [4, 3], [3, 0], [4, 0]]).reshape(1, 4, 2)
    alive = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0]], dtype=torch.bool).reshape(1, 4, 2, 1)
    r_in = torch.tensor([[5.0, 1.0], [2.0, -1.0], [3.0, 7.0], [1.0, 9.0]]).reshape(1, 4, 2, 1)
    rollout = TensorDict({
        "agents": {"health": health, "action": action, "alive": alive, "intrinsic_reward": r_in,
                   "action_mask": torch.ones(1, 4, 2, 5, dtype=torch.bool)},
        "first_episode": torch.tensor([[True, True, True, False]]),
    }, [1, 4])
    stats = attack_health_statistic(rollout, n_enemies=2)
    # Attacks below 50 % health, alive, within the first episode: (t0,a1) (t1,a0) (t1,a1) (t2,a0).
    h, r = [0.4, 0.3, 0.4, 0.2], [1.0, 2.0, -1.0, 3.0]
    expected = sum(a * b for a, b in zip(h, r)) / math.sqrt(sum(a * a for a in h) * sum(b * b for b in r))
    assert stats["samples"] == 4 and stats["episodes_with_samples"] == 1
    assert stats["mean_cosine_per_episode"] == pytest.approx(expected)
    assert stats["pooled_cosine"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def smax_runs(tmp_path_factory):
    pytest.importorskip("jaxmarl", reason="SMAX needs the [smax] extra (jaxmarl)")
    runs = {}
    for algo in ("liir", "iac"):
        run_dir = tmp_path_factory.mktemp(f"smax_{algo}")
        runs[algo] = (run_dir, train(config("task=smax", "task.map=3m", f"algo={algo}"), run_dir))
    return runs


def test_smax_run_reports_test_win_rate(smax_runs):
    run_dir, summary = smax_runs["liir"]
    assert summary["updates"] >= 2 and summary["crashed_episodes"] == 0
    assert 0.0 <= summary["test"]["test_win_rate"] <= 1.0
    tests = table(run_dir, "test")
    # Before training, after each 4 training episodes, and the final one.
    assert len(tests) >= 3 and tests[0]["frames"] == 0.0 and tests[0]["episodes"] == 0.0
    assert all(0.0 <= row["test_win_rate"] <= 1.0 for row in tests)
    episodes = [row["episodes"] for row in tests]
    assert episodes == sorted(set(episodes))  # each test at the episode count it was taken at
    wins = [row["win_rate"] for row in table(run_dir, "metrics")]
    assert all(value in {0.0, 0.25, 0.5, 0.75, 1.0} for value in wins)  # 4 episodes a batch
    config_text = (run_dir / "config.yaml").read_text()
    assert "policy: gru" in config_text and "lr_policy: 0.0005" in config_text


@pytest.mark.parametrize("algo", ["central_v", "coma", "qmix", "iql", "mappo"])
def test_every_baseline_trains_on_smax_battles(tmp_path, algo):
    pytest.importorskip("jaxmarl", reason="SMAX needs the [smax] extra (jaxmarl)")
    summary = train(config("task=smax", "task.map=3m", f"algo={algo}", "model.policy=mlp"), tmp_path)
    assert summary["updates"] >= 2 and 0.0 <= summary["test"]["test_win_rate"] <= 1.0
    losses = {k: v for k, v in table(tmp_path, "metrics")[-1].items() if k.startswith("loss_")}
    assert losses and all(math.isfinite(v) for v in losses.values())


def test_smac_code_path_trains_on_smax_battles(tmp_path):
    pytest.importorskip("jaxmarl", reason="SMAX needs the [smax] extra (jaxmarl)")
    summary = train(config("task=smac", "task.backend=smax", "task.map=3m", "task.num_envs=2",
                           "experiment.evaluation_episodes=2"), tmp_path)
    assert summary["updates"] >= 1 and "test_win_rate" in summary["test"]


@pytest.mark.slow
def test_plot_intrinsic_writes_the_case_study(smax_runs, tmp_path):
    run_dir, _ = smax_runs["liir"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_intrinsic.py"), str(run_dir),
                             "--episodes", "4", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "intrinsic_reward_statistic.json").read_text())
    assert stats["episodes"] == 4 and 0 <= stats["plotted_episode"] < 4
    assert 0.0 <= stats["test_win_rate"] <= 1.0
    assert (tmp_path / "intrinsic_reward_episode.png").stat().st_size > 10_000


@pytest.mark.slow
def test_plot_intrinsic_refuses_a_baseline_run(smax_runs):
    run_dir, _ = smax_runs["iac"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_intrinsic.py"), str(run_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "is not a LIIR run" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_plot_curves_one_line_per_method(smax_runs, tmp_path):
    out = tmp_path / "curves.png"
    dirs = [str(run_dir) for run_dir, _ in smax_runs.values()]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_curves.py"), *dirs, "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
    with out.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {row["method"] for row in rows} == {"liir", "iac"}
    liir_final = table(smax_runs["liir"][0], "test")[-1]["test_win_rate"]
    last = [row for row in rows if row["method"] == "liir"][-1]
    assert float(last["mean"]) == pytest.approx(liir_final, abs=1e-6) and float(last["std"]) == 0.0


@pytest.mark.slow
def test_plot_curves_names_a_missing_metric(smax_runs, tmp_path):
    run_dir, _ = smax_runs["liir"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_curves.py"), str(run_dir),
                             "--metric", "nope", "--out", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "metrics.csv has no column 'nope'" in result.stderr


@pytest.mark.slow
def test_results_table_fills_its_block_and_keeps_the_rest(smax_runs, tmp_path, capsys):
    out = tmp_path / "README.md"
    out.write_text("# Results\n\nnotes before\n")
    dirs = [str(run_dir) for run_dir, _ in smax_runs.values()]
    script = [sys.executable, str(ROOT / "scripts" / "results_table.py"), *dirs, "--out", str(out), "--title",
              "SMAX 3m", "--last", "1"]
    # The second run replaces the block instead of appending another.
    for result in (subprocess.run(script, capture_output=True, text=True, timeout=120), run_in_process(script, capsys)):
        assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("# Results\n\nnotes before\n") and text.count("<!-- results:smax_3m -->") == 1
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| smax_3m |")}
    assert set(rows) == {"LIIR", "IAC"}
    final = table(smax_runs["liir"][0], "test")[-1]["test_win_rate"]
    assert f"| {final:.2f} |" in rows["LIIR"] and "| 0 |" in rows["LIIR"]  # final test win rate, seed 0


@pytest.mark.slow
def test_results_table_adds_the_final_evaluation(smax_runs, tmp_path, capsys):
    dirs = [run_dir for run_dir, _ in smax_runs.values()]
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps([
        {"run": str(d), "episodes": 500, "greedy": {"win_rate": 0.25 + i / 2}, "stochastic": {"win_rate": 0.125}}
        for i, d in enumerate(dirs)]))
    out = tmp_path / "README.md"
    script = [sys.executable, str(ROOT / "scripts" / "results_table.py"), *map(str, dirs), "--out", str(out)]
    result = subprocess.run([*script, "--evaluation", str(evaluation)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "greedy win rate, 500 fixed test episodes" in text
    rows = [line for line in text.splitlines() if line.startswith("| smax_3m |")]
    assert [row.split(" | ")[8:10] for row in rows] == [["0.25", "0.12"], ["0.75", "0.12"]]
    archived = tmp_path / "archive"
    for d in dirs:
        shutil.copytree(d, archived / d.name)
    by_name = [*script[:2], *(str(archived / d.name) for d in dirs), "--out", str(tmp_path / "by_name.md")]
    result = run_in_process([*by_name, "--evaluation", str(evaluation)], capsys)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "by_name.md").read_text().split("\n", 1)[1] == text.split("\n", 1)[1]
    evaluation.write_text("[]")
    missing = run_in_process([*script, "--evaluation", str(evaluation)], capsys)
    assert missing.returncode == 1 and "is not in the evaluation file" in missing.stderr


@pytest.mark.slow
def test_results_table_at_a_common_budget_and_for_unfinished_runs(smax_runs, tmp_path, capsys):
    run_dir = smax_runs["liir"][0]
    tests = table(run_dir, "test")
    budget = int(tests[2]["frames"])  # the third evaluation's step: the first three count
    expected = sum(t["test_win_rate"] for t in tests[1:3]) / 2
    out = tmp_path / "README.md"
    script = [sys.executable, str(ROOT / "scripts" / "results_table.py"), str(run_dir), "--out", str(out),
              "--last", "2"]
    result = subprocess.run([*script, "--up-to-frames", str(budget)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row = next(line for line in out.read_text().splitlines() if line.startswith("| smax_3m |")).split(" | ")
    assert int(row[4].replace(",", "")) <= budget and row[5] == f"{expected:.2f}"
    too_far = run_in_process([*script, "--up-to-frames", "10000000"], capsys)
    assert too_far.returncode == 1 and "fewer than --up-to-frames" in too_far.stderr

    stopped = tmp_path / "stopped"
    shutil.copytree(run_dir, stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    script[2] = str(stopped)
    refused = run_in_process(script, capsys)
    assert refused.returncode == 1 and "--unfinished" in refused.stderr
    assert run_in_process([*script, "--unfinished"], capsys).returncode == 0


@pytest.mark.slow
def test_archived_runs_give_the_same_table(smax_runs, tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from run_records import read_metric

    run_dir = smax_runs["liir"][0]
    archive = [sys.executable, str(ROOT / "scripts" / "archive_runs.py"), str(run_dir), "--out", str(tmp_path / "a"),
               "--every", "3"]
    assert subprocess.run(archive, capture_output=True, text=True, timeout=120).returncode == 0
    archived = tmp_path / "a" / run_dir.name
    assert not (archived / "metrics.csv").exists() and not (archived / "checkpoints").exists()
    full, thin = read_metric(run_dir, "win_rate"), read_metric(archived, "win_rate")
    kept = sorted({0, *range(2, len(full), 3), *range(max(len(full) - 10, 0), len(full))})
    assert (thin == full[kept]).all()
    tables = []
    for name, d in (("full", run_dir), ("archived", archived)):
        out = tmp_path / f"{name}.md"
        script = [sys.executable, str(ROOT / "scripts" / "results_table.py"), str(d), "--out", str(out)]
        done = run_in_process(script, capsys)
        assert done.returncode == 0, done.stderr
        tables.append(out.read_text())
    assert tables[0] == tables[1]
    again = run_in_process(archive, capsys)
    assert again.returncode == 1 and "exists" in again.stderr


def test_wilson_interval_matches_hand_values():
    from torchrl_liir.trainers.evaluation import wilson_interval

    # By hand: centre (0.45 + 3.8416/200) / 1.038416 = 0.451850, half 1.96/1.038416 · √(0.2475/100 + 3.8416/40000)
    # = 0.095706.
    low, high = wilson_interval(45, 100)
    assert (round(low, 4), round(high, 4)) == (0.3561, 0.5476)
    assert wilson_interval(0, 20)[0] == 0.0 and round(wilson_interval(0, 20)[1], 4) == 0.1611


@pytest.mark.slow
def test_evaluate_runs_plays_the_same_seeded_episodes_for_every_run(smax_runs, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from evaluate_runs import evaluate_run, main

    run_dir, summary = smax_runs["liir"]
    first, again = (evaluate_run(run_dir, 12, seed=7, device="cpu") for _ in range(2))
    assert first == again  # fixed seeds: the same battles and, for the stochastic policy, the same samples
    assert first["checkpoint_frames"] == summary["frames"]  # the final checkpoint, taken at the run's last step
    for policy in ("greedy", "stochastic"):
        rate, (low, high) = first[policy]["win_rate"], first[policy]["win_rate_95"]
        assert rate * 12 == round(rate * 12) and low <= rate <= high
    out = tmp_path / "evaluation.json"
    main([*(str(d) for d, _ in smax_runs.values()), "--episodes", "12", "--seed", "7", "--out", str(out)])
    written = json.loads(out.read_text())
    assert [r["algo"] for r in written] == ["liir", "iac"] and written[0] == json.loads(json.dumps(first))
    with pytest.raises(SystemExit, match="exists"):
        main([str(run_dir), "--episodes", "12", "--out", str(out)])
