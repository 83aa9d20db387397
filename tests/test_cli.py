"""The trainer's command line: bad command lines end in one line and exit code 2 before any run directory exists
(and before torch or JAX is imported); an install of the package (no checkout, no network) trains from an
empty directory with its own configs."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose as compose_config
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from torchrl_liir.cli import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "scripts" / "train.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = ["experiment.progress_bar=false", "experiment.evaluation_interval_episodes=0"]


def train_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def saved_run(tmp_path) -> Path:
    """A run directory as the trainer leaves it, as far as resuming reads it: its config and a checkpoint's
    manifest (764 frames played, of a 640-frame budget)."""
    run_dir = tmp_path / "saved_run"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose_config(config_name="config", overrides=["experiment.total_frames=640", "task.num_envs=8"])
    (run_dir / "checkpoints" / "checkpoint-000000000764").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    manifest = {"format": "torchrl.checkpoint", "metadata": {"collected_frames": 764, "update": 5}}
    (run_dir / "checkpoints" / "checkpoint-000000000764" / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


PROBES = [
    (["algo.lamda_in=0.1"], "error: algo.lamda_in=0.1: unknown key (did you mean algo.lambda_in?)"),
    (["+algo.lamda_in=0.1"], "error: algo.lamda_in=0.1: unknown key (did you mean algo.lambda_in?)"),
    (["experiment.total_frame=5"],
     "error: experiment.total_frame=5: unknown key (did you mean experiment.total_frames?)"),
    (["task=nosuchenv"], "error: task='nosuchenv': must be one of pettingzoo, pursuit, smac, smacv2, smax, vmas"),
    # keys of the layout before the experiment and task sections: their path of today
    (["collector.total_frames=5"], "error: collector.total_frames: moved to experiment.total_frames "
                                   "(experiment.total_frames=5)"),
    (["env=smax", "map=8m"], "error: env: moved to task (task=smax)"),
    (["map=8m"], "error: map: moved to task.map (task.map=8m)"),
    (["+env.max_steps=3"], "error: env.max_steps: moved to task.episode_limit (task.episode_limit=3)"),
    (["task.max_steps=3"], "error: task.max_steps=3: moved: task.episode_limit"),
    (["algo="], "error: algo='': must be one of central_v, coma, iac, iql, liir, liir_authors, liir_centred, "
                "liir_large_lambda, liir_meta_entropy, liir_paper, liir_rms, mappo, qmix"),
    (["=5"], "error: '=5': not an override of the form key=value"),
    (["seed"], "error: 'seed': not an override of the form key=value"),
    (["resume={file}"], "error: resume={file}: a file, not a run directory"),
    (["resume={missing}"], "error: resume={missing}: no such run directory"),
    (["algo=mappo", "algo.minibatches=1000"], "error: algo.minibatches=1000: must be <= 640"),
    (["algo=qmix", "algo.buffer_episodes=4", "algo.batch_episodes=32"],
     "error: algo.buffer_episodes=4: must be >= algo.batch_episodes=32"),
    (["task.num_envs=100000"], "error: task.num_envs=100000: one batch of 100000 episodes of up to 20 steps "
                              "(2000000 frames) is more than experiment.total_frames=120000"),
    (["resume={saved}", "experiment.total_frames=700"],
     "error: experiment.total_frames=700: the run in {saved} has already played 764 frames"),
    (["resume={saved}"], "error: experiment.total_frames=640: the run in {saved} has already played 764 frames"),
    (["resume={saved}", "algo.lambda_in=0"], "error: algo.lambda_in: cannot be changed when resuming"),
    (["-m", "seed=0,1", "algo=liir,mappo", "algo.minibatches=1000"], "error: algo.minibatches=1000: unknown key"),
    (["-m", "seed=0,1", "task.num_envs=100000"], "error: task.num_envs=100000: one batch of 100000 episodes"),
    (["seed=0,1"], "error: Ambiguous value for argument 'seed=0,1'"),
    (["task=vmas", "task.continuous_actions=true", "algo=qmix"],
     "error: algo=qmix needs discrete actions; task=vmas's actions are continuous here (use liir, iac, central_v or "
     "mappo)"),
    (["task=pettingzoo", "task.continuous_actions=true", "algo=liir_authors"],
     "error: algo=liir: the exploration floor mixes categorical policies"),
    (["preset=nosuch"], "error: preset='nosuch': must be one of none, smac_paper"),
    (["algo.policy=gru"], "error: algo.policy='gru': the agents' networks are the model section's now: model.policy"),
    (["task=smax", "algo=qmix", "algo.normalize_advantage=true"], "error: algo.normalize_advantage=True: unknown key"),
    (["task=smax", "task.map=99m"], "error: task.map='99m': must be one of 3m, " if importlib.util.find_spec("jaxmarl")
     else "error: task=smax needs JaxMARL"),
]


@pytest.mark.parametrize("args, message", PROBES, ids=[" ".join(p[0]) for p in PROBES])
def test_bad_command_line_is_one_line_exit_2_and_no_run_directory(tmp_path, saved_run, args, message):
    names = {"file": tmp_path / "a_file", "missing": tmp_path / "missing", "saved": saved_run}
    names["file"].write_text("not a run")
    config_before = (saved_run / "config.yaml").read_bytes()
    before = sorted(tmp_path.rglob("*"))
    result = train_cli(*(a.format(**names) for a in args), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(message.format(**names))
    assert ("(in the sweep's run seed=0 " in lines[0]) == ("-m" in args)
    assert sorted(tmp_path.rglob("*")) == before  # no run directory, nothing written
    assert (saved_run / "config.yaml").read_bytes() == config_before


def test_command_line_checks_import_neither_torch_nor_jax(tmp_path):
    probe = (
        "import sys\n"
        "from torchrl_liir.cli import check_command_line\n"
        "for args in (['algo=mappo', 'algo.minibatches=1000'], ['task.num_envs=100000'], ['algo.lamda_in=0.1'],\n"
        "             ['algo=qmix', 'task.num_envs=4'], ['algo=coma', 'seed=3'], ['task=smax', 'task.map=99m'],\n"
        "             ['task=smax', 'task.map=3m', 'task.num_envs=2']):\n"
        "    try:\n"
        "        check_command_line(args)\n"
        "    except Exception:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'torchrl', 'tensordict', 'jax', 'jaxmarl') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_hydra_flags_pass_through_unchecked(tmp_path):
    shown = train_cli("--cfg", "job", "task.num_envs=100000", cwd=tmp_path)
    assert shown.returncode == 0 and "num_envs: 100000" in shown.stdout
    helped = train_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "torchrl-liir-train" in helped.stdout
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A non-editable install of the package (built from a copy of its sources, without the network)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "torchrl_liir", source / "torchrl_liir", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                          "--quiet", "--target", str(site), str(source)], env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert (site / "torchrl_liir" / "conf" / "config.yaml").is_file()
    assert (site / "torchrl_liir" / "conf" / "task" / "smax.yaml").is_file()
    assert (site / "torchrl_liir" / "conf" / "hydra" / "launcher" / "slurm.yaml").is_file()
    return site


def run_installed(site: Path, *overrides: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, Path]:
    """The installed ``torchrl-liir-train`` in a new empty directory (its configs from the install alone)."""
    cwd = site.parent / f"empty_{len(list(site.parent.glob('empty_*')))}"
    cwd.mkdir()
    env = {**ENV, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import torchrl_liir.cli as c; print(c.__file__)"], cwd=cwd,
                           env=env, capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr
    script = site / "bin" / "torchrl-liir-train"
    command = [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "torchrl_liir.cli"]
    result = subprocess.run([*command, *overrides], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result, cwd


@pytest.mark.slow
def test_installed_entry_point_trains_pursuit_from_an_empty_directory(installed):
    result, cwd = run_installed(installed, *TINY, "task.num_envs=4", "experiment.evaluation_episodes=4",
                                "experiment.total_frames=80",
                                "experiment.study_episodes=10")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((cwd / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.split("_")[2:4] == ["pursuit", "liir"]
    assert json.loads((runs[0] / "summary.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_installed_entry_point_trains_smax_from_an_empty_directory(installed):
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("jaxmarl") is None:
        pytest.skip("SMAX needs jax and jaxmarl")
    result, cwd = run_installed(installed, *TINY, "task=smax", "task.map=3m", "task.num_envs=2",
                                "experiment.evaluation_episodes=2",
                                "experiment.total_frames=120", "model.rnn_hidden=8", "model.num_cells=[16]")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((cwd / "runs").iterdir())
    assert len(runs) == 1 and "_smax_3m_liir_" in runs[0].name
    assert json.loads((runs[0] / "summary.json").read_text())["status"] == "finished"


def test_smax_map_names_read_from_jaxmarl_source_are_its_scenario_table():
    pytest.importorskip("jaxmarl")
    from torchrl_liir.envs.jaxmarl_import import import_smax
    from torchrl_liir.tasks.starcraft import _scenario_names

    table = import_smax().smax_env.MAP_NAME_TO_SCENARIO
    assert _scenario_names(importlib.util.find_spec("jaxmarl")) == tuple(table)


def compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose_config(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("algo", ["liir", "iac", "central_v", "coma", "qmix", "iql", "mappo"])
def test_the_smac_preset_sets_what_each_algorithm_reads(algo):
    """The paper's SMAC settings (§5.2): GRU-64 agents, learning rates 5e-4, the advantage standardised where
    the algorithm has the choice; nothing the algorithm does not read."""
    cfg = compose("task=smax", f"algo={algo}")
    assert cfg.preset == "smac_paper"
    assert (cfg.model.policy, cfg.model.rnn_hidden, cfg.algo.lr_policy) == ("gru", 64, 5e-4)
    assert cfg.algo.get("lr_critic", 5e-4) == 5e-4
    assert ("normalize_advantage" in cfg.algo) == (algo in ("liir", "iac", "central_v"))
    assert cfg.algo.get("normalize_advantage", True) is True
    own = compose("task=smax", f"algo={algo}", "preset=none")
    assert own.algo == compose(f"algo={algo}").algo


@pytest.mark.parametrize("run", ["smax_3m_qmix_s0", "smax_3m_mappo_s0", "smax_3m_liir_s0"])
def test_a_committed_run_of_the_former_layout_loads(run):
    """Committed runs were saved when the StarCraft envs wrote lr_critic and normalize_advantage into every
    algorithm, the agents' networks were the algo section's, QMIX's steps per batch were named updates_per_batch,
    and the experiment's keys sat at the top level and in collector/eval/checkpoint/logger/study sections."""
    from torchrl_liir.config_checks import ConfigError
    from torchrl_liir.trainers.config import check_config, load_saved_config

    path = ROOT / "results" / "smax_3m_3M" / "runs" / run / "config.yaml"
    raw = OmegaConf.load(path)
    assert {"env", "map", "collector", "eval", "algo"} <= set(raw) and "policy" in raw.algo  # the former layout
    with pytest.raises(ConfigError):
        check_config(raw)
    saved = load_saved_config(path)
    check_config(saved)
    assert set(saved) == {"seed", "resume", "experiment", "task", "algo", "model"}
    assert saved.experiment.total_frames == raw.collector.total_frames == 3_000_000
    assert saved.experiment.evaluation_episodes == raw.eval.episodes
    assert saved.experiment.checkpoint_interval_minutes == raw.checkpoint.every_minutes
    assert (saved.experiment.device, saved.experiment.logger, saved.experiment.study) == ("cpu", "csv", None)
    assert (saved.task.name, saved.task.map, saved.task.num_envs) == ("smax", "3m", raw.env.num_envs)
    assert "normalize_advantage" not in saved.algo or run != "smax_3m_qmix_s0"
    assert run != "smax_3m_qmix_s0" or saved.algo.steps_per_batch == raw.algo.updates_per_batch == 32
    assert (saved.model.policy, saved.model.rnn_hidden) == ("gru", 64) and "policy" not in saved.algo


def test_a_former_pettingzoo_config_loads(tmp_path):
    """``env.task`` and ``env.max_steps`` became ``task.scenario`` and ``task.episode_limit``; the ``map`` every
    former config held stays only where the task has maps."""
    from torchrl_liir.trainers.config import load_saved_config

    former = compose("task=pettingzoo")
    OmegaConf.set_struct(former, False)
    layout = {"seed": 4, "map": "3m", "device": "cpu", "collector": {"total_frames": 900}, "algo": former.algo,
              "model": former.model}
    (tmp_path / "pz.yaml").write_text(OmegaConf.to_yaml({**layout, "env": {
        "name": "pettingzoo", "run_name": "pz_simple_reference_v3", "task": "simple_reference_v3", "num_envs": 4,
        "max_steps": 25, "n_agents": None, "continuous_actions": False}}))
    pz = load_saved_config(tmp_path / "pz.yaml")
    assert (pz.task.scenario, pz.task.episode_limit, pz.seed) == ("simple_reference_v3", 25, 4)
    assert "task" not in pz.task and "max_steps" not in pz.task and "map" not in pz.task and "map" not in pz
    assert (pz.experiment.total_frames, pz.experiment.device) == (900, "cpu") and "collector" not in pz
