"""The training layer: runs, exact resume after SIGKILL, signals, the NaN guard, run directories, config checks,
loggers and sweeps."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torchrl.modules import EGreedyModule

from torchrl_liir.algorithms import ALGORITHMS
from torchrl_liir.algorithms.feeds import ReplayFeed
from torchrl_liir.modules.exploration_floor import ExplorationFloor
from torchrl_liir.objectives import LIIRLoss
from torchrl_liir.tasks import TASKS
from torchrl_liir.trainers import (
    ConfigError,
    NonFiniteError,
    RunDirectoryError,
    check_config,
    load_run,
    make_trainer,
    train,
)
from torchrl_liir.trainers.run_directory import default_run_dir

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "scripts" / "train.py")
PURSUIT = ["experiment.total_frames=2400", "task.num_envs=8", "experiment.study_episodes=50",
           "experiment.evaluation_interval_episodes=40"]
SMAX = ["task=smax", "task.map=3m", "experiment.total_frames=1000", "task.num_envs=4",
        "experiment.evaluation_episodes=4",
        "experiment.evaluation_interval_episodes=8", "model.rnn_hidden=8", "model.num_cells=[16]"]
QMIX = ["algo=qmix", "algo.buffer_episodes=100", "algo.batch_episodes=2", "algo.steps_per_batch=2",
        "algo.target_update_interval=3", "algo.eps_anneal_frames=1000"]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["experiment.progress_bar=false", *overrides])


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def without_time(table: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in table]


def cli(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    return subprocess.Popen([sys.executable, TRAIN, *flags, "experiment.progress_bar=false", *overrides], cwd=cwd,
                            env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    process = cli(*args, cwd=cwd)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def checkpoints(run_dir: Path) -> list[Path]:
    directory = run_dir / "checkpoints"
    return sorted(directory.glob("checkpoint-*")) if directory.exists() else []


def wait_for_checkpoints(process: subprocess.Popen, run_dir: Path, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(checkpoints(run_dir)) < count:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)


# ---------------------------------------------------------------- runs


@pytest.mark.parametrize("algo, policy", [("liir", "mlp"), ("liir", "gru"), ("iac", "mlp"), ("central_v", "mlp")])
def test_short_run_writes_its_run_directory(tmp_path, algo, policy):
    summary = train(config(f"algo={algo}", f"model.policy={policy}", "experiment.total_frames=600", "task.num_envs=8",
                           "experiment.study_episodes=50"), tmp_path)
    assert summary["status"] == "finished" and summary["updates"] >= 1
    table = rows(tmp_path / "metrics.csv")
    assert len(table) == summary["updates"] and [int(r["update"]) for r in table] == list(range(1, len(table) + 1))
    assert {"episode_return", "loss_objective", "grad_norm_policy"} <= set(table[0])
    tests = rows(tmp_path / "test.csv")
    assert tests[0]["update"] == "0" and int(tests[-1]["frames"]) == summary["frames"]
    assert checkpoints(tmp_path) and (tmp_path / "config.yaml").exists()
    if algo == "liir":
        assert "loss_intrinsic" in table[0] and "grad_norm_intrinsic" in table[0]
        stats = json.loads((tmp_path / "fig2_intrinsic_reward.json").read_text())
        assert stats["episodes"] == 50 and stats["good"]["count"] > 0
        assert (tmp_path / "fig2_intrinsic_reward.png").stat().st_size > 0


def test_at_lambda_0_eta_s_optimiser_changes_nothing(tmp_path):
    """λ = 0 runs do not name η's optimiser (``method_of``): η's meta-gradient carries the factor λ (eq. 7), so η
    never moves and η on Adam at 1e-3 or on RMSprop at 5e-4 gives the same run, row for row."""
    lambda0 = [*PURSUIT, "algo.lambda_in=0", "experiment.total_frames=1200"]
    for name, optimiser in (("adam", ["algo.intrinsic_optimizer=adam", "algo.lr_intrinsic=1e-3"]), ("rmsprop", [])):
        assert train(config(*lambda0, *optimiser), tmp_path / name)["status"] == "finished"
    for table in ("metrics.csv", "test.csv"):
        assert without_time(rows(tmp_path / "adam" / table)) == without_time(rows(tmp_path / "rmsprop" / table))
    assert {float(row["grad_norm_intrinsic"]) for row in rows(tmp_path / "adam" / "metrics.csv")} == {0.0}


def test_losses_are_averaged_over_the_update_steps(tmp_path):
    """MAPPO's row holds the mean over its epochs × minibatches, not the last minibatch's values."""
    cfg = config("algo=mappo", "algo.ppo_epochs=2", "algo.minibatches=2", "experiment.total_frames=300",
                 "task.num_envs=8")
    trainer = make_trainer(cfg, tmp_path)
    seen: list[float] = []
    stepper_step = trainer.optimization_stepper.step

    def recording_step(owner, sub_batch):
        out = stepper_step(owner, sub_batch)
        seen.append(out["loss_critic"].item())
        return out

    trainer.optimization_stepper.step = recording_step
    trainer.train()
    trainer.close()
    first = rows(tmp_path / "metrics.csv")[0]
    assert len(seen) >= 4 * len(rows(tmp_path / "metrics.csv"))
    assert float(first["loss_critic"]) == pytest.approx(sum(seen[:4]) / 4, rel=1e-5)


def test_env_configs_set_their_budget_and_the_command_line_wins():
    assert config().experiment.total_frames == 120_000
    assert config("task=smax").experiment.total_frames == 1_000_000  # README: 1M steps of SMAX by default
    assert config("task=smac").experiment.total_frames == 3_000_000
    assert config("task=smax", "experiment.total_frames=5").experiment.total_frames == 5


def test_every_default_config_passes_its_checks():
    for algo in [*ALGORITHMS, "liir_authors"]:
        check_config(config(f"algo={algo}"))
        pytest.importorskip("jaxmarl")
        check_config(config(f"algo={algo}", "task=smax"))


@pytest.mark.parametrize("overrides, walls_cause_death", [
    ([], True),  # SMAX's rule
    (["task.walls_cause_death=false"], False),  # StarCraft II's
    (["~task.walls_cause_death"], True),  # a run saved before the key: as it was played then
])
def test_smax_envs_take_the_configs_walls_rule(overrides, walls_cause_death):
    pytest.importorskip("jaxmarl")
    cfg = config("task=smax", *overrides)
    check_config(cfg)
    env = TASKS["smax"]().make_env(cfg, torch.device("cpu"), 1, 0)
    assert env.walls_cause_death is walls_cause_death


@pytest.mark.parametrize("overrides, fused", [
    ([], True),  # SMAX with the library's GRU policy
    (["experiment.fused_rollout=false"], False),
    (["~experiment.fused_rollout"], False),  # a run saved before the key: as it was collected then
    (["algo=qmix"], True),  # the ε-greedy Q-network
    (["algo=iql", "model.policy=mlp"], True),
])
def test_smax_runs_collect_with_the_fused_rollout_where_it_applies_and_say_so(tmp_path, overrides, fused):
    pytest.importorskip("jaxmarl")
    from torchrl_liir.collectors import FusedSMAXCollector

    trainer = make_trainer(config(*SMAX, *overrides), tmp_path)
    try:
        assert isinstance(trainer.collector, FusedSMAXCollector) == fused
        # train.py prints it as "collector: <description>", its second line
        assert trainer.collector_description.startswith("fused" if fused else "step by step (")
    finally:
        trainer.collector.shutdown()


# ---------------------------------------------------------------- exact resume


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    pytest.param(PURSUIT, id="liir-pursuit"),
    pytest.param(SMAX, id="liir-smax"),
    pytest.param([*SMAX, *QMIX], id="qmix-smax"),  # the fused rollout's ε-greedy Q-actor
    pytest.param([*PURSUIT, *QMIX], id="qmix-pursuit"),
    pytest.param([*PURSUIT, "algo=liir_authors"], id="liir-authors-pursuit"),  # the exploration floor's ε
    pytest.param([*PURSUIT, "algo=coma", "algo.critic_updates=time_step"], id="coma-time-step-pursuit"),
    pytest.param(["task=vmas", "task.scenario=balance", "task.num_envs=4", "task.episode_limit=10",
                  "experiment.total_frames=400", "experiment.evaluation_interval_episodes=8"], id="liir-vmas"),
])
def test_sigkill_then_resume_ends_with_the_same_metrics_row_for_row(tmp_path, case):
    if "task=smax" in case:
        pytest.importorskip("jaxmarl")
    if "task=vmas" in case:
        pytest.importorskip("vmas")
    every = ["experiment.checkpoint_interval_updates=3"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # The uninterrupted run trains in this process, through the train() that train.py calls.
    assert train(config(*case, *every), whole)["status"] == "finished"

    process = cli(*case, *every, f"hydra.run.dir={killed}", cwd=tmp_path)
    wait_for_checkpoints(process, killed, 3)  # after updates 1, 3 and 6
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert len(rows(killed / "metrics.csv")) < len(rows(whole / "metrics.csv"))

    resumed = run_cli(f"resume={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for table in ("metrics.csv", "test.csv"):
        assert without_time(rows(killed / table)) == without_time(rows(whole / table)), table
    summaries = [json.loads((d / "summary.json").read_text()) for d in (whole, killed)]
    assert summaries[0]["test"] == summaries[1]["test"] and summaries[1]["status"] == "finished"


@pytest.mark.parametrize("overrides, anneal_frames", [
    (["algo=liir_authors"], 50_000),
    (["algo=coma", "algo.epsilon_floor_start=0.5", "algo.epsilon_floor_end=0.01"], 100_000),
])
def test_exploration_floor_follows_the_frames_and_is_checkpointed(tmp_path, overrides, anneal_frames):
    """ε of the exploration floor after training is the schedule's value at the frames collected."""
    summary = train(config(*PURSUIT, *overrides), tmp_path)
    frames = summary["frames"]
    expected = 0.5 + (0.01 - 0.5) * frames / anneal_frames
    recipe = load_run(tmp_path).recipe
    floors = [m for m in recipe.actor.modules() if isinstance(m, ExplorationFloor)]
    assert len(floors) == 1 and floors[0].epsilon.item() == pytest.approx(expected)


@pytest.mark.parametrize("algo", ["iql", "qmix"])
def test_load_run_restores_the_epsilon_greedy_schedule(tmp_path, algo):
    """A loaded IQL or QMIX run explores with the ε it reached (linear 1 → 0.05 over 1000 frames), not ε = 1."""
    summary = train(config(*QMIX, f"algo={algo}", "experiment.total_frames=600", "task.num_envs=8"), tmp_path)
    expected = 1.0 + (0.05 - 1.0) * summary["frames"] / 1000
    recipe = load_run(tmp_path).recipe
    explorers = [m for m in recipe.actor.modules() if isinstance(m, EGreedyModule)]
    # ε falls in float32 steps, one per batch: their rounding adds up to about 1e-5.
    assert len(explorers) == 1 and explorers[0].eps.item() == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_a_run_saved_before_a_key_was_added_loads_and_resumes(tmp_path):
    """Runs saved before ``algo.epsilon_floor_*`` existed read the behaviour they had: no floor. They were saved
    before the experiment and task sections too."""
    run_dir = tmp_path / "run"
    assert train(config(*PURSUIT, "experiment.total_frames=800"), run_dir)["status"] == "finished"
    config_file = run_dir / "config.yaml"
    saved = OmegaConf.load(config_file)
    experiment, task = saved.pop("experiment"), saved.pop("task")
    former = {**saved, "map": "3m", "device": experiment.device, "threads": experiment.threads,
              "jax_cache_dir": experiment.jax_cache_dir, "progress_bar": experiment.progress_bar,
              "collector": {"total_frames": experiment.total_frames},
              "eval": {"interval_episodes": experiment.evaluation_interval_episodes,
                       "episodes": experiment.evaluation_episodes},
              "checkpoint": {"every_updates": experiment.checkpoint_interval_updates,
                             "every_minutes": experiment.checkpoint_interval_minutes},
              "logger": {"backend": "csv", "project": "torchrl_liir", "wandb_mode": "offline"},
              "study": {"name": experiment.study, "episodes": experiment.study_episodes},
              "env": {**{k: v for k, v in task.items() if k != "episode_limit"}, "max_steps": task.episode_limit}}
    old = [line for line in OmegaConf.to_yaml(former).splitlines() if "epsilon_floor" not in line]
    config_file.write_text("\n".join(old) + "\n")
    recipe = load_run(run_dir).recipe
    assert not any(isinstance(m, ExplorationFloor) for m in recipe.actor.modules())
    resumed = run_cli(f"resume={run_dir}", "experiment.total_frames=1600", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["frames"] >= 1600


@pytest.mark.parametrize("algo", ["iql", "qmix"])
def test_a_q_learning_run_saved_before_replay_was_a_key_resumes_replaying_transitions(tmp_path, algo):
    """IQL and QMIX runs saved before ``algo.replay`` existed replayed transitions; they load and resume so."""
    train(config(*QMIX, f"algo={algo}", "algo.replay=transitions", "experiment.total_frames=600", "task.num_envs=8"),
          tmp_path)
    config_file = tmp_path / "config.yaml"
    old = [line for line in config_file.read_text().splitlines() if line.strip() != "replay: transitions"]
    assert len(old) == len(config_file.read_text().splitlines()) - 1
    config_file.write_text("\n".join(old) + "\n")
    recipe = load_run(tmp_path).recipe
    assert type(recipe.feed) is ReplayFeed
    cfg = OmegaConf.load(config_file)
    cfg.experiment.total_frames = 1200
    assert train(cfg, tmp_path, resume=True)["frames"] >= 1200


@pytest.mark.slow
def test_resume_may_extend_the_budget_but_not_change_the_run(tmp_path):
    run_dir = tmp_path / "run"
    first = train(config("experiment.total_frames=600", "task.num_envs=8", "experiment.study_episodes=20"), run_dir)
    assert first["status"] == "finished"
    refused = run_cli(f"resume={run_dir}", "algo.lambda_in=0.5", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: algo.lambda_in: cannot be changed when resuming (allowed: experiment.total_frames, experiment.device, "
        "experiment.progress_bar, experiment.threads, experiment.jax_cache_dir, resume)"]
    extended = run_cli(f"resume={run_dir}", "experiment.total_frames=1200", cwd=tmp_path)
    assert extended.returncode == 0, extended.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["frames"] >= 1200 and len(rows(run_dir / "metrics.csv")) == summary["updates"]


# ---------------------------------------------------------------- signals


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_marks_the_summary_and_says_how_to_resume(tmp_path, signum):
    run_dir = tmp_path / "run"
    process = cli("experiment.total_frames=200000", "task.num_envs=8", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for_checkpoints(process, run_dir, 1)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"stopped by {signal.Signals(signum).name} at update ")
    assert last.endswith(f"resume with: python scripts/train.py resume={run_dir}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    frames = [int(p.name.split("-")[1]) for p in checkpoints(run_dir)]
    assert max(frames) == summary["frames"]  # the stop itself was checkpointed


# ---------------------------------------------------------------- NaN guard


def test_nan_loss_stops_naming_term_and_update_keeping_the_good_checkpoint(tmp_path, monkeypatch):
    cfg = config("experiment.total_frames=3000", "task.num_envs=8", "experiment.checkpoint_interval_updates=1")
    forward = LIIRLoss.forward
    calls = {"n": 0}

    def poisoned(self, tensordict):
        out = forward(self, tensordict)
        calls["n"] += 1
        if calls["n"] == 3:
            out["loss_proxy_value"] = out["loss_proxy_value"] * float("nan")
        return out

    monkeypatch.setattr(LIIRLoss, "forward", poisoned)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"^loss_proxy_value=nan at update 3; the last good checkpoint is kept"):
        train(cfg, run_dir)
    good = checkpoints(run_dir)
    assert [int(p.name.split("-")[1]) for p in good] == sorted(int(p.name.split("-")[1]) for p in good)
    latest_rows = rows(run_dir / "metrics.csv")
    assert len(latest_rows) == 2  # updates 1 and 2 trained and logged, update 3 not
    assert (run_dir / "checkpoints" / "nonfinite-update-000003").is_dir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "non_finite"
    # The last good checkpoint is update 2's, with finite parameters.
    recipe = load_run(run_dir).recipe
    assert all(torch.isfinite(p).all() for p in recipe.loss.parameters())


def test_exploding_parameters_stop_after_the_step(tmp_path):
    with pytest.raises(NonFiniteError, match=r"^policy parameters became (inf|nan) in the step of update 1"):
        train(config("algo=iac", "algo.lr_policy=1e38", "experiment.total_frames=3000", "task.num_envs=8"), tmp_path)


# ---------------------------------------------------------------- run directories


def test_run_directories_never_collide(tmp_path):
    assert default_run_dir("pursuit", "liir", 0) != default_run_dir("pursuit", "liir", 0)
    train(config("experiment.total_frames=300", "task.num_envs=8", "experiment.study_episodes=10"), tmp_path)
    with pytest.raises(RunDirectoryError, match="not empty; resume it with resume="):
        train(config("experiment.total_frames=300", "task.num_envs=8"), tmp_path)


@pytest.mark.slow
def test_same_command_twice_at_once_gets_two_run_directories(tmp_path):
    args = ("experiment.total_frames=300", "task.num_envs=8", "experiment.study_episodes=10")
    first, second = cli(*args, cwd=tmp_path), cli(*args, cwd=tmp_path)
    for process in (first, second):
        _, err = process.communicate(timeout=300)  # reads and closes the pipes
        assert process.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(len(rows(r / "metrics.csv")) >= 1 for r in runs)


# ---------------------------------------------------------------- bad input


BAD_VALUES = [
    ("task.map=99m", "task.map='99m': must be one of 3m, 2s3z, "),
    ("experiment.device=mps", "experiment.device='mps': must be cpu, cuda or cuda:N"),
    ("seed=abc", "seed='abc': must be an integer in [0, 4294967295]"),
    ("seed=-1", "seed=-1: must be an integer in [0, 4294967295]"),
    ("algo.lr_policy=nan", "algo.lr_policy=nan: must be a finite number > 0"),
    ("algo.lr_policy=inf", "algo.lr_policy=inf: must be a finite number > 0"),
    ("task.num_envs=2.5", "task.num_envs=2.5: must be an integer >= 1"),
    ("model.rnn_hidden=0", "model.rnn_hidden=0: must be an integer >= 1"),
    ("experiment.checkpoint_interval_updates=abc",
     "experiment.checkpoint_interval_updates='abc': must be an integer >= 0"),
    ("experiment.study_episodes=-5", "experiment.study_episodes=-5: must be an integer >= 1"),
    ("+algo.lamda_in=0.1", "algo.lamda_in=0.1: unknown key (did you mean algo.lambda_in?)"),
    ("+sead=1", "sead=1: unknown key (did you mean seed?)"),
    ("task.name=smacc", "task.name='smacc': must be one of pursuit, smax, smac, smacv2"),
    ("algo.lambda_in=-0.5", "algo.lambda_in=-0.5: must be a number >= 0"),
    ("algo.gamma=1.5", "algo.gamma=1.5: must be a number >= 0 and <= 1"),
    ("model.policy=transformer", "model.policy='transformer': must be one of mlp, gru"),
    ("model.num_cells=[]", "model.num_cells=[]: must be a list of layer sizes"),
    ("algo.agent_id=maybe", "algo.agent_id='maybe': must be true or false"),
    ("task.map=3m task.walls_cause_death=0", "task.walls_cause_death=0: must be true or false"),
    ("experiment.threads=0", "experiment.threads=0: must be an integer >= 1"),
    ("experiment.jax_cache_dir=3", "experiment.jax_cache_dir=3: must be a directory path, or null"),
    ("experiment.evaluation_episodes=0", "experiment.evaluation_episodes=0: must be an integer >= 1"),
    ("experiment.logger=mlflow", "experiment.logger='mlflow': must be one of csv, tensorboard, wandb"),
    ("algo=qmix algo.eps_end=0.9 algo.eps_start=0.5", "algo.eps_end=0.9: must be <= algo.eps_start=0.5"),
    ("algo=liir algo.policy_optimizer=adamw", "algo.policy_optimizer='adamw': must be one of sgd, rmsprop, adam"),
]


@pytest.mark.parametrize("overrides, message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_value_fails_in_one_line_before_any_env_is_built(tmp_path, monkeypatch, overrides, message):
    if "task.map=" in overrides:
        pytest.importorskip("jaxmarl")
        overrides = f"task=smax {overrides}"
    for task in TASKS.values():
        monkeypatch.setattr(task, "make_env", lambda *a, **k: pytest.fail("an env was built"))
    with pytest.raises(ConfigError) as err:
        train(config(*overrides.split()), tmp_path / "run")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [
    ("algo.lambda_in=-1", "error: algo.lambda_in=-1: must be a number >= 0"),
    ("+algo.lamda_in=0.1", "error: algo.lamda_in=0.1: unknown key (did you mean algo.lambda_in?)"),
    ("seed=abc", "error: seed='abc': must be an integer in [0, 4294967295]"),
])
def test_bad_value_on_the_command_line_is_one_line_and_exit_code_2(tmp_path, override, message):
    result = run_cli(override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]]
    assert result.stderr.strip().startswith(message)


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [("task=smac", "oxwhirl's SMAC"), ("task=smacv2", "smacv2 package")])
def test_missing_starcraft_ii_is_one_line(tmp_path, override, message):
    pytest.importorskip("jaxmarl", reason="the StarCraft configs import the SMAX-backed envs")
    if override == "task=smac":
        try:
            import smac.env  # noqa: F401
            pytest.skip("oxwhirl's SMAC is installed")
        except ImportError:
            pass
    result = run_cli(override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.slow
# ---------------------------------------------------------------- Python, loggers, sweeps


def test_the_trainer_builds_and_runs_from_python(tmp_path):
    trainer = make_trainer(config("algo=central_v", "experiment.total_frames=400", "task.num_envs=8"), tmp_path)
    trainer.train()
    trainer.close()
    assert trainer.progress.updates == len(rows(tmp_path / "metrics.csv")) >= 2
    assert trainer.collected_frames >= 400


@pytest.mark.parametrize("backend, produced", [("tensorboard", "events.out.tfevents"), ("wandb", "offline-run")])
def test_tensorboard_and_offline_wandb_log_beside_the_csv_tables(tmp_path, monkeypatch, backend, produced):
    pytest.importorskip(backend)
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(config(f"experiment.logger={backend}", "experiment.total_frames=300", "task.num_envs=8",
                 "experiment.study_episodes=10"),
          tmp_path)
    assert any(produced in str(path) for path in (tmp_path / backend).rglob("*"))
    assert rows(tmp_path / "metrics.csv")


def joblib_sweep(tmp_path: Path, *overrides: str) -> list[Path]:
    """The job directories of a two-at-a-time joblib sweep of ``overrides`` (300-frame pursuit runs)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    result = run_cli("-m", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
                     "experiment.total_frames=300", "task.num_envs=8", "experiment.study_episodes=10", cwd=tmp_path,
                     timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return sorted(p for p in sweep.iterdir() if p.is_dir())


@pytest.mark.slow
def test_sweep_with_the_joblib_launcher_gives_each_member_its_own_run(tmp_path):
    members = joblib_sweep(tmp_path, "seed=0,1", "algo=liir,central_v")
    assert [m.name for m in members] == ["0_pursuit_liir_seed0", "1_pursuit_central_v_seed0",
                                         "2_pursuit_liir_seed1", "3_pursuit_central_v_seed1"]
    for member in members:
        assert json.loads((member / "summary.json").read_text())["status"] == "finished"
    resumed = run_cli(f"resume={members[0]}", "experiment.total_frames=600", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
