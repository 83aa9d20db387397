"""Populations: many runs in one process (``seeds=N``, ``variants=...``), each member exactly its solo run, alone
when it diverges, resumed exactly after SIGKILL, refused in one line when misconfigured."""
from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from test_trainer import PURSUIT, QMIX, SMAX, checkpoints, cli, config, joblib_sweep, rows, run_cli, without_time

from torchrl_liir.trainers import ConfigError, check_config, load_run, train
from torchrl_liir.trainers.members import member_configs, population_label

LIIR_VARIANTS = "variants={liir:{},lambda0:{algo.lambda_in:0}}"
OTHER = ["task.num_envs=4", "task.episode_limit=10", "experiment.total_frames=200", "experiment.evaluation_episodes=4"]


def assert_same_run(member: Path, solo: Path) -> None:
    """Two run directories hold the same run: every metrics and test row (less wall time), the final test, and
    every trained parameter bit for bit."""
    for table in ("metrics.csv", "test.csv"):
        assert without_time(rows(member / table)) == without_time(rows(solo / table)), table
    summaries = [json.loads((d / "summary.json").read_text()) for d in (member, solo)]
    assert summaries[0]["status"] == summaries[1]["status"] == "finished"
    assert summaries[0]["test"] == summaries[1]["test"]
    a, b = load_run(member).recipe, load_run(solo).recipe
    params_a, params_b = a.loss.state_dict(), b.loss.state_dict()
    assert params_a.keys() == params_b.keys()
    for key in params_a:
        assert torch.equal(params_a[key], params_b[key]), key


# ---------------------------------------------------------------- members


def test_seeds_and_variants_name_every_member_with_its_own_solo_config():
    cfg = config("seed=3", "seeds=2", LIIR_VARIANTS)
    members = member_configs(cfg)
    assert [m.name for m in members] == ["liir_seed3", "liir_seed4", "lambda0_seed3", "lambda0_seed4"]
    assert [m.cfg.seed for m in members] == [3, 4, 3, 4]
    assert [m.cfg.algo.lambda_in for m in members] == [0.01, 0.01, 0, 0]
    assert all(m.cfg.seeds is None and m.cfg.variants is None for m in members)
    assert [m.name for m in member_configs(config("seeds=[7,0]"))] == ["seed7", "seed0"]
    assert member_configs(config())[0].name is None  # a solo run: its run directory is the run's own
    assert population_label(0, None) == "seed0"
    assert population_label(2, 10) == "seeds2-11"
    assert population_label(0, [0, 3, 7]) == "seeds0_3_7"


@pytest.mark.parametrize("override, message", [
    ("seeds=0", r"^seeds=0: must be null, a count N"),
    ("seeds=[1,1]", r"^seeds=\[1, 1\]: must be null, a count N"),
    ("variants={a:{task.map:8m}}", r"^variants\.a\.task\.map='8m': a variant changes algo\.\* and model\.\* keys only"),
    ("variants={a:{algo.name:iac}}", r"^variants\.a\.algo\.name='iac': a variant changes"),
    ("variants={a:{algo.no_such_key:1}}", r"^variants\.a\.algo\.no_such_key: unknown key"),
    ("variants={a:{algo.lambda_in:-1}}", r"^algo\.lambda_in=-1: .* \(in variant a\)$"),
])
def test_a_bad_population_fails_in_one_line_before_anything_is_built(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(config(override))
    cfg = config()
    cfg.variants = {"a b": {}}  # the command line's grammar has no such name; a config from Python may
    with pytest.raises(ConfigError, match=r"^variants='a b': variant names are letters"):
        check_config(cfg)


def test_a_bad_population_on_the_command_line_is_one_line_and_exit_code_2(tmp_path):
    out = run_cli("variants={a:{algo.lambda_in:-1}}", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("error: algo.lambda_in=-1:")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- exactness


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    pytest.param(PURSUIT, id="liir-mlp-pursuit"),
    pytest.param([*PURSUIT, "algo=central_v"], id="central_v-pursuit"),
    pytest.param([*PURSUIT, *QMIX], id="qmix-pursuit"),
    pytest.param([*SMAX, "model.policy=gru"], id="liir-gru-smax"),
    pytest.param([*SMAX, "experiment.member_rollout=together"], id="liir-smax-collected-together"),
    pytest.param([*SMAX, *QMIX], id="qmix-smax"),
    pytest.param([*OTHER, "task=vmas", "task.scenario=balance"], id="liir-vmas"),  # VMAS draws from torch's global RNG
    pytest.param([*OTHER, "task=pettingzoo"], id="liir-pettingzoo"),
])
def test_each_member_equals_its_solo_run(tmp_path, capfd, case):
    """Member seed 5 of a population, trained after member seed 4 in every round, is the solo run with seed 5:
    the same rows, tests and parameters, bit for bit (float32; the global random streams are the member's)."""
    for task, package in (("task=smax", "jaxmarl"), ("task=vmas", "vmas"), ("task=pettingzoo", "pettingzoo")):
        if task in case:
            pytest.importorskip(package)
    population = train(config(*case, "seed=4", "seeds=2"), tmp_path / "population")
    together = "collected together in one program" in capfd.readouterr().out
    assert together == ("experiment.member_rollout=together" in case)
    assert set(population["members"]) == {"seed4", "seed5"} and population["status"] == "finished"
    train(config(*case, "seed=5"), tmp_path / "solo")
    assert_same_run(tmp_path / "population" / "seed5", tmp_path / "solo")
    listed = json.loads((tmp_path / "population" / "population.json").read_text())
    assert listed["members"]["seed5"]["test"] == population["members"]["seed5"]["test"]


@pytest.mark.slow
def test_paired_variants_train_side_by_side_each_as_alone(tmp_path):
    train(config(*PURSUIT, "seeds=1", LIIR_VARIANTS), tmp_path / "population")
    train(config(*PURSUIT, "algo.lambda_in=0"), tmp_path / "solo")
    assert_same_run(tmp_path / "population" / "lambda0_seed0", tmp_path / "solo")
    saved = (tmp_path / "population" / "lambda0_seed0" / "config.yaml").read_text()
    assert "lambda_in: 0\n" in saved and "seeds: null" in saved and "variants: null" in saved


# ---------------------------------------------------------------- a diverged member


@pytest.mark.slow
def test_a_diverged_member_stops_alone_and_the_others_go_on(tmp_path):
    out = run_cli(*PURSUIT, "algo=iac", "variants={ok:{},bad:{algo.lr_policy:1e38}}",
                  f"hydra.run.dir={tmp_path / 'population'}", cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[1] == "collector: step by step (the env is a PursuitEnv, not a SMAXEnv) (2 members, one by one)"
    assert [line.split(":")[0] for line in lines[-2:]] == ["ok_seed0", "bad_seed0"]
    assert lines[-1].endswith("(non_finite)")
    assert "error: bad_seed0: policy parameters became" in out.stderr
    assert "update 1; no checkpoint was written before it, the bad state is in" in out.stderr
    bad = json.loads((tmp_path / "population" / "bad_seed0" / "summary.json").read_text())
    assert bad["status"] == "non_finite" and bad["updates"] == 0
    listed = json.loads((tmp_path / "population" / "population.json").read_text())
    assert listed["status"] == "mixed" and listed["members"]["ok_seed0"]["status"] == "finished"
    train(config(*PURSUIT, "algo=iac"), tmp_path / "solo")
    assert_same_run(tmp_path / "population" / "ok_seed0", tmp_path / "solo")


# ---------------------------------------------------------------- resume


def wait_for_population_checkpoints(process, population: Path, members: list[str], count: int) -> None:
    deadline = time.monotonic() + 240
    while not all(len(checkpoints(population / m)) >= count for m in members):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoints in time"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    pytest.param(PURSUIT, id="liir-pursuit"),
    pytest.param([*SMAX, *QMIX], id="qmix-smax"),
])
def test_sigkill_at_a_random_moment_then_resume_gives_every_member_its_uninterrupted_run(tmp_path, case):
    if "task=smax" in case:
        pytest.importorskip("jaxmarl")
    every = ["experiment.checkpoint_interval_updates=2", "seeds=2"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train(config(*case, *every), whole)

    process = cli(*case, *every, f"hydra.run.dir={killed}", cwd=tmp_path)
    wait_for_population_checkpoints(process, killed, ["seed0", "seed1"], 1)
    time.sleep(random.uniform(0.0, 1.0))  # members may stand at different checkpoints when killed
    process.kill()
    process.communicate()
    if process.returncode == 0:
        pytest.skip("the population finished before the kill")  # not seen with these budgets
    assert process.returncode == -signal.SIGKILL

    resumed = run_cli(f"resume={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for member in ("seed0", "seed1"):
        for table in ("metrics.csv", "test.csv"):
            assert without_time(rows(killed / member / table)) == without_time(rows(whole / member / table))
    assert json.loads((killed / "population.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_sigterm_checkpoints_every_member_and_resume_finishes_them(tmp_path):
    run_dir = tmp_path / "population"
    process = cli(*PURSUIT, "seeds=2", "experiment.total_frames=200000", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for_population_checkpoints(process, run_dir, ["seed0", "seed1"], 1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "with 2 of 2 members unfinished; checkpoint saved; resume with:" in err
    for member in ("seed0", "seed1"):
        summary = json.loads((run_dir / member / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert max(int(p.name.split("-")[1]) for p in checkpoints(run_dir / member)) == summary["frames"]


@pytest.mark.slow
def test_a_sweep_of_populations_with_the_joblib_launcher(tmp_path):
    jobs = joblib_sweep(tmp_path, "algo=liir,central_v", "seeds=2")
    assert [job.name for job in jobs] == ["0_pursuit_liir_seeds0-1", "1_pursuit_central_v_seeds0-1"]
    for job in jobs:
        for member in ("seed0", "seed1"):
            assert json.loads((job / member / "summary.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_resuming_a_finished_population_trains_nothing_and_a_larger_budget_extends_every_member(tmp_path):
    run_dir = tmp_path / "population"
    train(config(*PURSUIT, "seeds=2"), run_dir)
    before = {m: rows(run_dir / m / "metrics.csv") for m in ("seed0", "seed1")}
    again = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {m: rows(run_dir / m / "metrics.csv") for m in before} == before
    longer = run_cli(f"resume={run_dir}", "experiment.total_frames=4800", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-2000:]
    for member, table in before.items():
        after = rows(run_dir / member / "metrics.csv")
        assert after[:len(table)] == table and int(after[-1]["frames"]) >= 4800
        assert json.loads((run_dir / member / "summary.json").read_text())["status"] == "finished"
