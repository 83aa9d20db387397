"""Import JaxMARL's SMAX without importing JaxMARL's other environments."""
from __future__ import annotations

import importlib.util
import sys
import types
from importlib.machinery import ModuleSpec
from typing import Any

from torchrl_liir.runtime import prepare_jax


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first attribute asked of it (its submodules import without it)."""

    def __getattr__(self, name: str) -> Any:
        spec: ModuleSpec | None = self.__dict__.pop("_pending_spec", None)
        if spec is None or name.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        spec.loader.exec_module(self)
        return getattr(self, name)


def _lazy_package(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ImportError(f"No module named {name!r}")
    module = _LazyPackage(name)
    module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
    module.__path__, module.__package__ = list(spec.submodule_search_locations), name
    module._pending_spec = spec
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def import_smax() -> types.ModuleType:
    """``jaxmarl.environments.smax``, importing JaxMARL's other environments only if ``jaxmarl`` is used.

    ``import jaxmarl`` imports every JaxMARL environment: about 2.5 s of a process's start here (STORM
    alone builds JAX arrays at import). Until then, ``jaxmarl`` and ``jaxmarl.environments`` stand in
    ``sys.modules`` as packages whose own ``__init__`` runs on first use, so ``import jaxmarl;
    jaxmarl.make(...)`` works as before, with the same SMAX classes.

    SMAX builds JAX arrays at import, which starts JAX's backends: :func:`~torchrl_liir.runtime.prepare_jax`
    comes first.
    """
    prepare_jax()
    if "jaxmarl" not in sys.modules:
        _lazy_package("jaxmarl")
    if "jaxmarl.environments" not in sys.modules:
        _lazy_package("jaxmarl.environments")
    import jaxmarl.environments.smax as smax

    return smax
