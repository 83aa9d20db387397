"""Environment families the trainer can build, by the name ``task=`` selects (BenchMARL's tasks);
:func:`register_task` adds one of your own."""
from torchrl_liir._registry import register, unregister
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


def register_task(cls: type[Task]) -> type[Task]:
    """Adds the task class ``cls`` (a subclass of :class:`Task`) to :data:`TASKS` under ``cls.name``, so that
    ``task=<name>`` selects it; returns ``cls``, so it also works as a class decorator.

    If ``cls.defaults`` is a dict (the ``task`` section's keys and values; ``name`` is filled in), it becomes the
    config ``task/<name>`` in hydra's ConfigStore: ``task=<name>`` then composes without a YAML file. Without
    defaults (or to set keys outside the ``task`` section too), a file ``task/<name>.yaml`` on hydra's search path
    holds them. Registering the same class again changes nothing; a name that another class holds raises
    ``ValueError`` (``TypeError`` for a class that is no :class:`Task`). A registration lasts as long as the
    process: :func:`unregister_task` undoes it.

    Examples:
        >>> from torchrl_liir.cli import compose_config
        >>> from torchrl_liir.tasks import TASKS, get_task, register_task, unregister_task
        >>> PursuitTask = type(get_task("pursuit"))
        >>> @register_task
        ... class LongPursuit(PursuitTask):
        ...     name = "long_pursuit"
        ...     defaults = {"run_name": "long_pursuit", "num_envs": 8, "episode_limit": 40, "max_value": 10}
        >>> cfg = compose_config(["task=long_pursuit", "task.num_envs=4"])
        >>> task = get_task(cfg.task.name)
        >>> task.check(cfg)
        >>> type(task).__name__, task.episode_limit(cfg), cfg.task.num_envs
        ('LongPursuit', 40, 4)
        >>> try:
        ...     register_task(type("OtherPursuit", (PursuitTask,), {"name": "long_pursuit"}))
        ... except ValueError as err:
        ...     print(err)
        task='long_pursuit': already the name of LongPursuit; unregister it first
        >>> unregister_task("long_pursuit") is LongPursuit
        True
        >>> sorted(TASKS)
        ['pettingzoo', 'pursuit', 'smac', 'smacv2', 'smax', 'vmas']
    """
    return register(TASKS, Task, "task", cls)


def unregister_task(name: str) -> type[Task]:
    """Removes the task registered as ``name`` from :data:`TASKS` (and its defaults from hydra's ConfigStore),
    undoing :func:`register_task`; returns its class. ``ValueError`` for a name not registered."""
    return unregister(TASKS, "task", name)


__all__ = ["TASKS", "Task", "get_task", "register_task", "unregister_task"]
