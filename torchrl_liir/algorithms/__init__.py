"""Algorithms the trainer can run, by the name ``algo=`` selects (BenchMARL's algorithms): each owns its
networks, loss, optimiser groups, batch feed and config checks.

The registry and the checks import no torch; the recipe (:mod:`~torchrl_liir.algorithms.recipe`) and what it is
built from (:mod:`~torchrl_liir.algorithms.base`) are imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes
from torchrl_liir.algorithms.actor_critic import IAC, CentralV
from torchrl_liir.algorithms.algorithm import Algorithm
from torchrl_liir.algorithms.coma import COMA
from torchrl_liir.algorithms.liir import LIIR
from torchrl_liir.algorithms.mappo import MAPPO
from torchrl_liir.algorithms.q_learning import IQL, QMIX
from torchrl_liir.config_checks import ConfigError

if TYPE_CHECKING:
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


__getattr__, __dir__ = lazy_attributes(__name__, {"EnvDims": "torchrl_liir.algorithms.recipe",
                                                  "Recipe": "torchrl_liir.algorithms.recipe",
                                                  "OptimizerGroup": "torchrl_liir.optimizer_steps"})

__all__ = ["ALGORITHMS", "Algorithm", "EnvDims", "OptimizerGroup", "Recipe", "get_algorithm"]
