"""Algorithms the trainer can run, by the name ``algo=`` selects (BenchMARL's algorithms): each owns its
networks, loss, optimiser groups, batch feed and config checks."""
from torchrl_liir.algorithms.actor_critic import IAC, CentralV
from torchrl_liir.algorithms.base import Algorithm, EnvDims, OptimizerGroup, Recipe
from torchrl_liir.algorithms.coma import COMA
from torchrl_liir.algorithms.liir import LIIR
from torchrl_liir.algorithms.mappo import MAPPO
from torchrl_liir.algorithms.q_learning import IQL, QMIX
from torchrl_liir.config_checks import ConfigError

ALGORITHMS: dict[str, type[Algorithm]] = {
    algorithm.name: algorithm for algorithm in (LIIR, IAC, CentralV, COMA, IQL, QMIX, MAPPO)
}


def get_algorithm(name: str) -> Algorithm:
    """The algorithm registered as ``name``."""
    if name not in ALGORITHMS:
        raise ConfigError(f"algo.name={name!r}: must be one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]()


__all__ = ["ALGORITHMS", "Algorithm", "EnvDims", "OptimizerGroup", "Recipe", "get_algorithm"]
