"""Algorithms and tasks of one's own: registered (also as decorators) with their config defaults, composed by
``algo=`` / ``task=`` without a YAML file, trained, refused on a name another class holds, and unregistered."""
from __future__ import annotations

import pytest
from hydra.core.config_store import ConfigStore

from torchrl_liir.algorithms import (
    ALGORITHMS,
    IAC,
    Algorithm,
    get_algorithm,
    register_algorithm,
    unregister_algorithm,
)
from torchrl_liir.cli import UsageError, compose_config
from torchrl_liir.tasks import TASKS, get_task, register_task, unregister_task
from torchrl_liir.tasks.pursuit import PursuitTask
from torchrl_liir.trainers import ConfigError, check_config, train

IAC_DEFAULTS = {"policy_optimizer": "rmsprop", "lr_policy": 0.005, "lr_critic": 0.005, "max_grad_norm": 10.0,
                "entropy_coeff": 0.01, "critic_coeff": 1.0, "normalize_advantage": False, "gamma": 0.99, "lmbda": 0.8}


class SlowIAC(IAC):
    name = "slow_iac"
    defaults = {**IAC_DEFAULTS, "lr_policy": 0.0005}


class ShortPursuit(PursuitTask):
    name = "short_pursuit"
    defaults = {"run_name": "short_pursuit", "num_envs": 4, "episode_limit": 5, "max_value": 3}


@pytest.fixture(autouse=True)
def registries():
    """Each test leaves the registries and hydra's ConfigStore as it found them, whatever happens."""
    repo = ConfigStore.instance().repo
    before = dict(ALGORITHMS), dict(TASKS), {group: dict(repo.get(group, {})) for group in ("algo", "task")}
    yield
    after = dict(ALGORITHMS), dict(TASKS), {group: dict(repo.get(group, {})) for group in ("algo", "task")}
    ALGORITHMS.clear(), ALGORITHMS.update(before[0]), TASKS.clear(), TASKS.update(before[1])
    for group, options in before[2].items():
        repo.pop(group, None)
        if options:
            repo[group] = options
    assert after == before, "a test left a registration behind"


def test_a_registered_algorithm_composes_from_its_defaults_and_unregistering_undoes_it():
    names = list(ALGORITHMS)
    assert register_algorithm(SlowIAC) is SlowIAC
    assert ALGORITHMS["slow_iac"] is SlowIAC and isinstance(get_algorithm("slow_iac"), SlowIAC)
    cfg = compose_config(["algo=slow_iac", "algo.gamma=0.9"])
    assert dict(cfg.algo) == {"name": "slow_iac", **IAC_DEFAULTS, "lr_policy": 0.0005, "gamma": 0.9}
    check_config(cfg)
    assert register_algorithm(SlowIAC) is SlowIAC  # the same class again: nothing changes

    assert unregister_algorithm("slow_iac") is SlowIAC
    assert list(ALGORITHMS) == names
    with pytest.raises(UsageError, match=r"^algo='slow_iac': must be one of "):
        compose_config(["algo=slow_iac"])
    assert "slow_iac.yaml" not in ConfigStore.instance().repo.get("algo", {})
    with pytest.raises(ValueError, match=r"^algo='slow_iac': not registered$"):
        unregister_algorithm("slow_iac")


def test_a_name_another_class_holds_is_refused_in_one_line():
    register_algorithm(SlowIAC)
    try:
        other = type("OtherIAC", (IAC,), {"name": "slow_iac", "defaults": IAC_DEFAULTS})
        with pytest.raises(ValueError) as refused:
            register_algorithm(other)
        assert str(refused.value) == "algo='slow_iac': already the name of SlowIAC; unregister it first"
        assert ALGORITHMS["slow_iac"] is SlowIAC
        assert compose_config(["algo=slow_iac"]).algo.lr_policy == 0.0005  # its defaults stay too
    finally:
        unregister_algorithm("slow_iac")
    with pytest.raises(ValueError, match=r"^algo='liir': already the name of LIIR; unregister it first$"):
        register_algorithm(type("MyLIIR", (IAC,), {"name": "liir"}))
    with pytest.raises(ValueError, match=r"^task='pursuit': already the name of PursuitTask"):
        register_task(type("MyPursuit", (PursuitTask,), {"name": "pursuit"}))


def test_what_is_not_an_algorithm_or_task_with_a_name_is_refused():
    with pytest.raises(TypeError, match="not a subclass of Algorithm"):
        register_algorithm(ShortPursuit)
    with pytest.raises(TypeError, match="not a subclass of Task"):
        register_task(SlowIAC)
    with pytest.raises(ValueError, match=r"^Nameless\.name=None: must be a name"):
        register_algorithm(type("Nameless", (IAC,), {"name": None}))
    with pytest.raises(ValueError, match=r"^Spaced\.name='my algo': must be a name"):
        register_algorithm(type("Spaced", (Algorithm,), {"name": "my algo"}))


def test_decorated_classes_without_yaml_files_train_on_pursuit(tmp_path):
    @register_task
    class Pursuit(ShortPursuit):
        pass

    @register_algorithm
    class TinyIAC(SlowIAC):
        name = "tiny_iac"

    try:
        assert TASKS["short_pursuit"] is Pursuit and ALGORITHMS["tiny_iac"] is TinyIAC
        cfg = compose_config(["task=short_pursuit", "algo=tiny_iac", "model.num_cells=[8]", "experiment.study=null",
                              "experiment.total_frames=20", "experiment.evaluation_episodes=4",
                              "experiment.evaluation_interval_episodes=0", "experiment.progress_bar=false"])
        assert cfg.task.name == "short_pursuit" and cfg.algo.name == "tiny_iac" and cfg.algo.lr_policy == 0.0005
        assert get_task(cfg.task.name).episode_limit(cfg) == 5
        summary = train(cfg, tmp_path / "run")
        assert summary["status"] == "finished" and summary["updates"] >= 1 and summary["frames"] >= 20
        assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 1 + summary["updates"]
        with pytest.raises(ConfigError, match=r"^task\.max_value=0: must be an integer >= 1$"):
            check_config(compose_config(["task=short_pursuit", "algo=tiny_iac", "task.max_value=0"]))
    finally:
        unregister_algorithm("tiny_iac")
        unregister_task("short_pursuit")
    with pytest.raises(UsageError, match=r"^task='short_pursuit': must be one of "):
        compose_config(["task=short_pursuit"])
