"""Sweeps on a Ray cluster: hydra's Ray launcher (``hydra/launcher=ray_cluster``) against a local cluster on the
loopback address.

Hydra's Ray launcher needs cloudpickle < 3 and the joblib launcher of the test extra cloudpickle >= 3, so the test
builds an environment of its own on top of this one: a virtualenv whose ``.pth`` file adds this environment's
packages after its own, with ``hydra-ray-launcher`` and ``cloudpickle<3`` installed into it by pip.
"""
from __future__ import annotations

import json
import os
import site
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory) -> Path:
    """A virtualenv with hydra's Ray launcher, seeing this environment's packages (torch, the project, ...)."""
    venv = tmp_path_factory.mktemp("ray") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                         capture_output=True, text=True).stdout.strip()
    Path(own, "parent_environment.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "hydra-ray-launcher", "cloudpickle<3"],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    return venv / "bin"


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_cluster_gives_each_job_its_run(tmp_path, ray_env):
    env = {**os.environ, "PATH": f"{ray_env}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    head = subprocess.run(["ray", "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                           "--include-dashboard=false", "--disable-usage-stats"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert head.returncode == 0, head.stderr[-2000:]
    try:
        sweep = tmp_path / "sweep"
        result = subprocess.run(
            [ray_env / "python", str(ROOT / "scripts" / "train.py"), "-m", "seed=0,1", "hydra/launcher=ray_cluster",
             f"hydra.launcher.ray.init.address=127.0.0.1:{port}", "hydra.launcher.ray.remote.num_cpus=1",
             "experiment.total_frames=300", "task.num_envs=8", "experiment.study=null",
             "experiment.progress_bar=false", f"hydra.sweep.dir={sweep}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_pursuit_liir_seed0", "1_pursuit_liir_seed1"]
    for job in jobs:
        assert json.loads((sweep / job / "summary.json").read_text())["status"] == "finished"
