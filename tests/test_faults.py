"""Faults injected into runs: damaged checkpoints, a second writer, cut or edited tables, leftovers of killed
writes, signals at start-up, a divergence before the first checkpoint. Each run either ends identical to the run
left alone or stops with one line; nothing is lost silently."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_trainer import (
    PURSUIT,
    TRAIN,
    checkpoints,
    cli,
    config,
    rows,
    run_cli,
    wait_for_checkpoints,
    without_time,
)

from torchrl_liir.trainers import load_run, train

EVERY = ["experiment.checkpoint_interval_updates=2"]


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {"zeros": bytes(len(data)), "empty": b"", "half": data[:len(data) // 2],
               "random": os.urandom(len(data))}[how]
    path.write_bytes(damaged)


def largest_payload(checkpoint: Path) -> Path:
    files = [p for p in (checkpoint / "components").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def killed_before_its_end(tmp_path: Path) -> tuple[Path, Path]:
    """A run trained to its end (``whole``), and the same run as a kill before its final checkpoint leaves it
    (``run``: trained alike, its final checkpoint and summary removed)."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    train(config(*PURSUIT, *EVERY), whole)
    train(config(*PURSUIT, *EVERY), run)
    shutil.rmtree(checkpoints(run)[-1])
    (run / "summary.json").unlink()
    return whole, run


@pytest.mark.slow
@pytest.mark.parametrize("how", ["zeros", "empty", "half", "random"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_resumes_identically(tmp_path, how):
    whole, run = killed_before_its_end(tmp_path)
    newest = checkpoints(run)[-1]
    payload = largest_payload(newest)
    damage(payload, how)
    result = run_cli(f"resume={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning == [f"warning: {newest}: damaged ({payload.relative_to(newest)} does not match its checksum); "
                       "trying the previous checkpoint"]
    for table in ("metrics.csv", "test.csv"):
        assert without_time(rows(run / table)) == without_time(rows(whole / table)), table


@pytest.mark.slow
def test_no_intact_checkpoint_is_one_line(tmp_path):
    run = tmp_path / "run"
    train(config(*PURSUIT, *EVERY), run)
    for checkpoint in checkpoints(run):
        damage(largest_payload(checkpoint), "zeros")
    result = run_cli(f"resume={run}", "experiment.total_frames=4800", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert errors == [f"error: {run / 'checkpoints'}: no intact checkpoint to resume from "
                      f"({len(checkpoints(run))} damaged: {', '.join(p.name for p in reversed(checkpoints(run)))})"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cut", "deleted", "edited"])
def test_a_table_cut_deleted_or_edited_since_the_checkpoint_is_refused_in_one_line(tmp_path, how):
    run = tmp_path / "run"
    train(config(*PURSUIT, *EVERY), run)
    table = run / "metrics.csv"
    lines = table.read_text().splitlines(keepends=True)
    if how == "cut":
        table.write_text("".join(lines[:3]))
    elif how == "deleted":
        table.unlink()
    else:
        table.write_text("".join([lines[0], lines[1].replace(",", ",9", 1), *lines[2:]]))
    result = run_cli(f"resume={run}", "experiment.total_frames=4800", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    reason = {"cut": "2 rows where the checkpoint recorded", "deleted": "no file rows where the checkpoint recorded",
              "edited": "differ from those the checkpoint recorded (edited)"}[how]
    assert result.stderr.startswith(f"error: {table}: ") and reason in result.stderr


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_first_and_a_killed_one_never_blocks(tmp_path):
    run = tmp_path / "run"
    first = cli(*PURSUIT, "experiment.total_frames=400000", f"hydra.run.dir={run}", cwd=tmp_path)
    try:
        wait_for_checkpoints(first, run, 1)
        second = run_cli(f"resume={run}", cwd=tmp_path)
        assert second.returncode == 2
        assert second.stderr.strip() == (f"error: {run}: another process (PID {first.pid}) is training this run; "
                                         "wait for it to end or stop it first")
    finally:
        first.kill()
        first.communicate()
    rows_before = len(rows(run / "metrics.csv"))
    resumed = cli(f"resume={run}", cwd=tmp_path)  # the kill left the lock file: the kernel dropped the lock
    wait_for_checkpoints(resumed, run, len(checkpoints(run)) + 1)
    resumed.send_signal(signal.SIGTERM)
    resumed.communicate(timeout=120)
    assert resumed.returncode == 128 + signal.SIGTERM
    assert len(rows(run / "metrics.csv")) > rows_before


@pytest.mark.slow
def test_a_population_member_cannot_be_resumed_while_its_population_trains(tmp_path):
    run = tmp_path / "population"
    population = cli(*PURSUIT, "seeds=2", "experiment.total_frames=400000", f"hydra.run.dir={run}", cwd=tmp_path)
    try:
        wait_for_checkpoints(population, run / "seed1", 1)
        member = run_cli(f"resume={run / 'seed1'}", cwd=tmp_path)
        assert member.returncode == 2
        assert f"another process (PID {population.pid}) is training this run" in member.stderr
    finally:
        population.kill()
        population.communicate()


@pytest.mark.slow
def test_leftovers_of_killed_checkpoint_writes_are_cleaned_on_resume(tmp_path):
    run = tmp_path / "run"
    train(config(*PURSUIT, *EVERY), run)
    stage = run / "checkpoints" / ".checkpoint-000000009999.stage-0123abcd"
    (stage / "components").mkdir(parents=True)
    result = run_cli(f"resume={run}", "experiment.total_frames=4800", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not stage.exists()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5, 3.0])
def test_sigterm_at_start_up_stops_the_run_and_says_whether_there_is_anything_to_resume(tmp_path, delay):
    run = tmp_path / "run"
    process = cli("task=smax", "task.map=3m", "experiment.total_frames=200000", f"hydra.run.dir={run}", cwd=tmp_path)
    while not (run / "config.yaml").exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    last = err.strip().splitlines()[-1]
    if checkpoints(run):
        assert last.endswith(f"resume with: python scripts/train.py resume={run}")
        assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    else:
        assert last == "stopped by SIGTERM before training began; nothing to resume"


def test_a_divergence_before_the_first_checkpoint_says_there_is_none_and_saves_both_sides_of_the_step(tmp_path):
    from torchrl_liir.trainers import NonFiniteError

    with pytest.raises(NonFiniteError) as stopped:
        train(config("algo=iac", "algo.lr_policy=1e38", "experiment.total_frames=3000", "task.num_envs=8"), tmp_path)
    after, before = tmp_path / "checkpoints" / "nonfinite-update-000001", tmp_path / "checkpoints" / \
        "nonfinite-update-000001-before"
    assert str(stopped.value) == (f"policy parameters became inf in the step of update 1; no checkpoint was written "
                                  f"before it, the bad state is in {after} (after the step; before it: {before})")
    states = {}
    for name, path in (("after", after), ("before", before)):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        shutil.copytree(path, tmp_path / name / "checkpoints" / "checkpoint-000000000001")
        shutil.copy(tmp_path / "config.yaml", tmp_path / name)
        states[name] = dict(load_run(tmp_path / name).recipe.actor.state_dict())
    assert not all(torch.isfinite(v).all() for v in states["after"].values())
    assert all(torch.isfinite(v).all() for v in states["before"].values())


@pytest.mark.slow
def test_a_full_disk_mid_checkpoint_loses_nothing_and_the_run_resumes_identically(tmp_path, monkeypatch):
    """ENOSPC injected into the third checkpoint write (this machine has no small tmpfs to fill)."""
    from torchrl_liir.trainers.checkpoints import VerifiedCheckpoint

    whole, run = tmp_path / "whole", tmp_path / "run"
    train(config(*PURSUIT, *EVERY), whole)
    publish, calls = VerifiedCheckpoint._publish_path, {"n": 0}

    def full_disk(source: Path, destination: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device", str(destination))
        publish(source, destination)

    with monkeypatch.context() as patch:
        patch.setattr(VerifiedCheckpoint, "_publish_path", staticmethod(full_disk))
        with pytest.raises(OSError, match="No space left on device"):
            train(config(*PURSUIT, *EVERY), run)
    assert json.loads((run / "summary.json").read_text())["status"] == "crashed"
    assert len(checkpoints(run)) == 2 and not list((run / "checkpoints").glob(".*"))
    train(config(*PURSUIT, *EVERY), run, resume=True)
    for table in ("metrics.csv", "test.csv"):
        assert without_time(rows(run / table)) == without_time(rows(whole / table)), table


def test_random_bytes_in_a_saved_config_are_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(b"\xe5\x00\xff" * 100)
    result = run_cli(f"resume={run}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {run / 'config.yaml'}: unreadable (UnicodeDecodeError")


def test_a_nan_reward_from_the_env_stops_the_run_naming_the_key_and_the_step(tmp_path, monkeypatch):
    from torchrl_liir.trainers import NonFiniteError, hooks

    drop, calls = hooks.drop_crashed_episodes, {"n": 0}

    def poisoned(batch):
        batch, dropped = drop(batch)
        calls["n"] += 1
        if calls["n"] == 2:
            batch.get(("next", "reward"))[2, 5] = float("nan")
        return batch, dropped

    monkeypatch.setattr(hooks, "drop_crashed_episodes", poisoned)
    with pytest.raises(NonFiniteError, match=r"^\('next', 'reward'\)=nan at \[episode, step, \.\.\.\] = \[2, 5, 0\] "
                                             r"in the batch of update 2: the env gave it; the last good checkpoint"):
        train(config(*PURSUIT), tmp_path / "run")


@pytest.mark.parametrize("env, kwargs, message", [
    ("PursuitEnv", {"reward_scale": float("nan")}, "reward_scale=nan must be a finite number > 0"),
    ("SMAXEnv", {"map_name": "3m", "reward_scale": float("inf")}, "reward_scale=inf must be a finite number > 0"),
    ("SMAXEnv", {"map_name": "3m", "episode_limit": 0}, "episode_limit=0 must be >= 1"),
])
def test_env_constructors_refuse_values_that_would_corrupt_every_step(env, kwargs, message):
    import torchrl_liir

    if env == "SMAXEnv":
        pytest.importorskip("jaxmarl")
    with pytest.raises(ValueError, match=f"^{message}"):
        getattr(torchrl_liir, env)(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_during_the_study_stops_it_and_says_the_run_is_finished(tmp_path, signals):
    run = tmp_path / "run"
    process = cli("experiment.total_frames=1200", "task.num_envs=8", "experiment.study_episodes=400000",
                  f"hydra.run.dir={run}", cwd=tmp_path)
    while not any(int(p.name.split("-")[1]) >= 1200 for p in checkpoints(run)):  # the final one: the study is next
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.01)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    if signals == 2:  # the impatient operator's second, once the first is handled (the kernel merges two at once)
        time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert err.strip().splitlines()[-1] == ("stopped by SIGTERM after training (the run is finished; its study was "
                                            "not written); nothing to resume")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["study"].startswith("interrupted")
    assert not (run / "fig2_intrinsic_reward.json").exists()


@pytest.mark.slow
def test_every_manifest_unreadable_is_named_not_called_no_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(config(*PURSUIT, *EVERY), run)
    for checkpoint in checkpoints(run):
        (checkpoint / "manifest.json").write_text("{not json")
    result = run_cli(f"resume={run}", "experiment.total_frames=4800", cwd=tmp_path)
    assert result.returncode == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(checkpoints(run))
    assert all(line.endswith("damaged (manifest.json does not match its checksum); trying the previous checkpoint")
               for line in warnings)
    assert result.stderr.splitlines()[-1].startswith(f"error: {run / 'checkpoints'}: no intact checkpoint to resume")


def test_a_read_only_run_directory_is_one_line_and_left_as_it_was(tmp_path):
    """The run directory bind-mounted read-only in a user namespace (root writes through file modes)."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine allows no user namespace to mount a directory read-only in")
    run = tmp_path / "run"
    train(config(*PURSUIT, *EVERY), run)
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    read_only = (f"mount --bind {run} {run} && mount -o remount,bind,ro {run} && exec {sys.executable} {TRAIN} "
                 f"experiment.progress_bar=false resume={run} experiment.total_frames=4800")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", read_only], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: {run / '.lock'}: Read-only file system; the run's checkpoints before it are intact"]
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
