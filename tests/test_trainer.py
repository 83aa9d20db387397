"""The trainer end to end (short runs) and its bad-input errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from torchrl_liir.trainers import ConfigError, NonFiniteLossError, train
from torchrl_liir.trainers import trainer as trainer_module

ROOT = Path(__file__).resolve().parents[1]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["progress_bar=false", *overrides])


@pytest.mark.parametrize("algo, policy", [("liir", "mlp"), ("liir", "gru"), ("iac", "mlp"), ("central_v", "mlp")])
def test_short_run_writes_its_run_directory(tmp_path, algo, policy):
    cfg = config(f"algo={algo}", f"algo.policy={policy}", "collector.total_frames=600",
                 "env.num_envs=8", "study.episodes=50")
    summary = train(cfg, tmp_path)
    assert summary["updates"] >= 1
    assert (tmp_path / "config.yaml").exists()
    assert (tmp_path / "checkpoints" / "last.pt").exists()
    scalars = tmp_path / "metrics" / "scalars"
    assert (scalars / "episode_return.csv").exists() and (scalars / "loss_objective.csv").exists()
    if algo == "liir":
        stats = json.loads((tmp_path / "fig2_intrinsic_reward.json").read_text())
        assert stats["episodes"] == 50 and stats["good"]["count"] > 0
        assert (tmp_path / "fig2_intrinsic_reward.png").stat().st_size > 0
        assert (scalars / "loss_intrinsic.csv").exists()


def test_env_configs_set_their_budget_and_the_command_line_wins():
    assert config().collector.total_frames == 120_000
    assert config("env=smax").collector.total_frames == 1_000_000  # README: 1M steps of SMAX by default
    assert config("env=smac").collector.total_frames == 3_000_000
    assert config("env=smax", "collector.total_frames=5").collector.total_frames == 5


@pytest.mark.parametrize("override, message", [
    ("env.name=smacc", "env.name='smacc'"),
    ("algo.lambda_in=-0.5", "algo.lambda_in=-0.5"),
    ("algo.lr_policy=0", "algo.lr_policy=0"),
    ("algo.lr_intrinsic=-1e-3", "algo.lr_intrinsic=-0.001"),
    ("algo.policy=transformer", "algo.policy='transformer'"),
    ("algo.gamma=1.5", "algo.gamma=1.5"),
    ("threads=0", "threads=0: must be an integer >= 1"),
    ("jax_cache_dir=3", "jax_cache_dir=3: must be a directory path"),
])
def test_bad_config_value_fails_at_once(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        train(config(override), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_bad_config_from_the_command_line_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "algo.lambda_in=-1", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: algo.lambda_in=-1: must be >= 0"


@pytest.mark.parametrize("override, message", [
    ("env=smac", "oxwhirl's SMAC"),
    ("env=smacv2", "smacv2 package"),
])
def test_missing_starcraft_ii_is_one_line(tmp_path, override, message):
    pytest.importorskip("jaxmarl", reason="the StarCraft configs import the SMAX-backed envs")
    if override == "env=smac":
        try:
            import smac.env  # noqa: F401
            pytest.skip("oxwhirl's SMAC is installed")
        except ImportError:
            pass
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), override, f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last


def test_nan_loss_stops_with_step_and_term_keeping_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = config("collector.total_frames=3000", "env.num_envs=8",
                 "checkpoint_every=1")
    real_step = trainer_module._step
    calls = {"n": 0}

    def poisoned_step(components, losses, update, checkpoint, frames):
        calls["n"] += 1
        if update == 2:
            losses["loss_proxy_value"] = torch.tensor(float("nan"))
        return real_step(components, losses, update, checkpoint, frames)

    monkeypatch.setattr(trainer_module, "_step", poisoned_step)
    with pytest.raises(NonFiniteLossError, match=r"loss_proxy_value=nan at update 2"):
        train(cfg, tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["update"] == 2
    params = [v for v in state["loss"].values() if torch.is_floating_point(v)]
    assert all(torch.isfinite(p).all() for p in params)
