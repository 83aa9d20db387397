"""Algorithms the trainer can run, by the name ``algo=`` selects (BenchMARL's algorithms): each owns its
networks, loss, optimiser groups, batch feed and config checks. :func:`register_algorithm` adds one of your own;
the checks and the pieces the package's algorithms are built from (:func:`actor_critic_checks`,
:func:`make_policy`, :func:`optimizer_group`, :func:`clip`) serve it too.

The registry and the checks import no torch; the recipe (:mod:`~torchrl_liir.algorithms.recipe`) and what it is
built from (:mod:`~torchrl_liir.algorithms.base`) are imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes
from torchrl_liir._registry import register, unregister
from torchrl_liir.algorithms.actor_critic import IAC, CentralV
from torchrl_liir.algorithms.algorithm import Algorithm, actor_critic_checks, network_checks
from torchrl_liir.algorithms.coma import COMA
from torchrl_liir.algorithms.liir import LIIR
from torchrl_liir.algorithms.mappo import MAPPO
from torchrl_liir.algorithms.q_learning import IQL, QMIX
from torchrl_liir.config_checks import ConfigError

if TYPE_CHECKING:
    from torchrl_liir.algorithms.base import clip, make_policy, optimizer_group
    from torchrl_liir.algorithms.recipe import EnvDims, Recipe
    from torchrl_liir.optimizer_steps import OptimizerGroup

#: The algorithm classes by the name ``algo.name`` selects.
ALGORITHMS: dict[str, type[Algorithm]] = {
    algorithm.name: algorithm for algorithm in (LIIR, IAC, CentralV, COMA, IQL, QMIX, MAPPO)
}


def get_algorithm(name: str) -> Algorithm:
    """The algorithm registered as ``name`` (a key of :data:`ALGORITHMS`), a new instance; ``ConfigError`` for
    another name.

    Examples:
        >>> from torchrl_liir.algorithms import ALGORITHMS, get_algorithm
        >>> sorted(ALGORITHMS)
        ['central_v', 'coma', 'iac', 'iql', 'liir', 'mappo', 'qmix']
        >>> get_algorithm("liir").name
        'liir'
        >>> from torchrl_liir.trainers import ConfigError
        >>> try:
        ...     get_algorithm("a2c")
        ... except ConfigError as err:
        ...     print(err)
        algo.name='a2c': must be one of liir, iac, central_v, coma, iql, qmix, mappo
    """
    if name not in ALGORITHMS:
        raise ConfigError(f"algo.name={name!r}: must be one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]()


def register_algorithm(cls: type[Algorithm]) -> type[Algorithm]:
    """Adds the algorithm class ``cls`` (a subclass of :class:`Algorithm`) to :data:`ALGORITHMS` under
    ``cls.name``, so that ``algo=<name>`` selects it; returns ``cls``, so it also works as a class decorator.

    If ``cls.defaults`` is a dict (the ``algo`` section's keys and values; ``name`` is filled in), it becomes the
    config ``algo/<name>`` in hydra's ConfigStore: ``algo=<name>`` then composes without a YAML file. Without
    defaults, a file ``algo/<name>.yaml`` on hydra's search path must hold them. Registering the same class again
    changes nothing; a name that another class holds raises ``ValueError`` (``TypeError`` for a class that is no
    :class:`Algorithm`). A registration lasts as long as the process: :func:`unregister_algorithm` undoes it.

    Examples:
        >>> from torchrl_liir.algorithms import ALGORITHMS, get_algorithm, register_algorithm, unregister_algorithm
        >>> from torchrl_liir.cli import compose_config
        >>> IAC = type(get_algorithm("iac"))
        >>> @register_algorithm
        ... class SlowIAC(IAC):
        ...     name = "slow_iac"
        ...     defaults = {**compose_config(["algo=iac"]).algo, "lr_policy": 0.0005}
        >>> cfg = compose_config(["algo=slow_iac", "algo.gamma=0.9"])
        >>> cfg.algo.name, cfg.algo.lr_policy, cfg.algo.gamma, type(get_algorithm(cfg.algo.name)).__name__
        ('slow_iac', 0.0005, 0.9, 'SlowIAC')
        >>> try:
        ...     register_algorithm(type("OtherIAC", (IAC,), {"name": "slow_iac"}))
        ... except ValueError as err:
        ...     print(err)
        algo='slow_iac': already the name of SlowIAC; unregister it first
        >>> unregister_algorithm("slow_iac") is SlowIAC
        True
        >>> sorted(ALGORITHMS)
        ['central_v', 'coma', 'iac', 'iql', 'liir', 'mappo', 'qmix']
    """
    return register(ALGORITHMS, Algorithm, "algo", cls)


def unregister_algorithm(name: str) -> type[Algorithm]:
    """Removes the algorithm registered as ``name`` from :data:`ALGORITHMS` (and its defaults from hydra's
    ConfigStore), undoing :func:`register_algorithm`; returns its class. ``ValueError`` for a name not registered.
    """
    return unregister(ALGORITHMS, "algo", name)


__getattr__, __dir__ = lazy_attributes(__name__, {"EnvDims": "torchrl_liir.algorithms.recipe",
                                                  "Recipe": "torchrl_liir.algorithms.recipe",
                                                  "OptimizerGroup": "torchrl_liir.optimizer_steps",
                                                  "clip": "torchrl_liir.algorithms.base",
                                                  "make_policy": "torchrl_liir.algorithms.base",
                                                  "optimizer_group": "torchrl_liir.algorithms.base"})

__all__ = ["ALGORITHMS", "Algorithm", "EnvDims", "OptimizerGroup", "Recipe", "actor_critic_checks", "clip",
           "get_algorithm", "make_policy", "network_checks", "optimizer_group", "register_algorithm",
           "unregister_algorithm"]
