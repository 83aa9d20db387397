"""Environment families the trainer can build, by the name ``task=`` selects (BenchMARL's tasks)."""
from torchrl_liir.config_checks import ConfigError
from torchrl_liir.tasks.base import Task
from torchrl_liir.tasks.pettingzoo import PettingZooTask
from torchrl_liir.tasks.pursuit import PursuitTask
from torchrl_liir.tasks.starcraft import SMACTask, SMACv2Task, SMAXTask
from torchrl_liir.tasks.vmas import VmasTask

#: The task classes by the name ``task.name`` selects.
TASKS: dict[str, type[Task]] = {
    task.name: task for task in (PursuitTask, SMAXTask, SMACTask, SMACv2Task, VmasTask, PettingZooTask)
}


def get_task(name: str) -> Task:
    """The task registered as ``name`` (a key of :data:`TASKS`), a new instance; ``ConfigError`` for another name.

    Examples:
        >>> from torchrl_liir.tasks import TASKS, get_task
        >>> sorted(TASKS)
        ['pettingzoo', 'pursuit', 'smac', 'smacv2', 'smax', 'vmas']
        >>> get_task("pursuit").name
        'pursuit'
        >>> from torchrl_liir.trainers import ConfigError
        >>> try:
        ...     get_task("chess")
        ... except ConfigError as err:
        ...     print(err)
        task.name='chess': must be one of pursuit, smax, smac, smacv2, vmas, pettingzoo
    """
    if name not in TASKS:
        raise ConfigError(f"task.name={name!r}: must be one of {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "Task", "get_task"]
