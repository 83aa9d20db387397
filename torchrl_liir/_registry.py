"""Adding a class to one of the trainer's registries (:data:`~torchrl_liir.algorithms.ALGORITHMS`,
:data:`~torchrl_liir.tasks.TASKS`) and its config defaults to hydra's ConfigStore, and taking them out again."""
from __future__ import annotations

import re
from typing import Any


def register(registry: dict[str, type], base: type, group: str, cls: type) -> type:
    """Adds ``cls`` (a subclass of ``base``) to ``registry`` under ``cls.name``, and its ``defaults`` (if not
    ``None``) to hydra's ConfigStore as the option ``cls.name`` of the config group ``group``; returns ``cls``."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{cls!r}: not a subclass of {base.__name__}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not re.fullmatch(r"[\w-]+", name):
        raise ValueError(f"{cls.__qualname__}.name={name!r}: must be a name of letters, digits, _ and -")
    taken = registry.get(name, cls)
    if taken is not cls:
        raise ValueError(f"{group}={name!r}: already the name of {taken.__qualname__}; unregister it first")
    defaults: Any = getattr(cls, "defaults", None)
    if defaults is not None:
        from hydra.core.config_store import ConfigStore

        node = {"name": name, **{key: value for key, value in dict(defaults).items() if key != "name"}}
        ConfigStore.instance().store(name=name, node=node, group=group, package=group, provider="torchrl_liir")
    registry[name] = cls
    return cls


def unregister(registry: dict[str, type], group: str, name: str) -> type:
    """Removes the class registered as ``name`` from ``registry``, and its defaults from hydra's ConfigStore;
    returns the class."""
    if name not in registry:
        raise ValueError(f"{group}={name!r}: not registered")
    cls = registry.pop(name)
    if getattr(cls, "defaults", None) is not None:
        from hydra.core.config_store import ConfigStore

        options = ConfigStore.instance().repo.get(group, {})
        options.pop(f"{name}.yaml", None)
        if not options:
            ConfigStore.instance().repo.pop(group, None)
    return cls
