"""Process-wide runtime settings: CPU threads, JAX's persistent compilation cache, library log levels.

Call :func:`configure_runtime` once, at the start of a process, before the first
environment or network is built (``train.py``, the scripts and the tests do).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

DEFAULT_JAX_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torchrl_liir" / "jax"


def set_threads(threads: int) -> None:
    """``threads`` intra-op CPU threads for torch (and one inter-op thread when ``threads == 1``).

    On small per-step matmuls, PyTorch's default (one thread per core) spends its
    time in OpenMP barriers as soon as another process shares the cores: two runs
    on 2 cores took 9.8× longer each than alone, 1.02× with one thread per process.
    """
    import torch  # here: the JAX settings below are read before torch is needed (the config checks)

    if threads < 1:
        raise ValueError(f"experiment.threads={threads}: must be >= 1")
    torch.set_num_threads(threads)
    if threads == 1 and torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # inter-op threads are fixed once any parallel work has run
            pass


def quiet_jax_backend_discovery() -> None:
    """Keeps JAX's backend discovery from logging the platforms it tried and did not find.

    When its first array is made, JAX tries every platform it knows and logs each one that fails
    quietly at INFO (``Unable to initialize backend 'tpu'`` on every machine without a TPU); hydra
    prints INFO records, so the line would appear in every SMAX run. That INFO record is the only one
    this logger writes: its warnings (an NVIDIA GPU that JAX cannot use) still print, and asking for a
    platform that failed (``jax.devices("gpu")`` for ``device=cuda``) still raises JAX's error with the
    reason. Has to run before JAX's first array (JaxMARL makes some at import); ``JAX_LOGGING_LEVEL``,
    when set, is left to JAX.
    """
    if "JAX_LOGGING_LEVEL" not in os.environ:
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


def prepare_jax() -> None:
    """Settings JAX reads when its backends start: call before the first JAX array (JaxMARL's import).

    JAX would reserve 75 % of a GPU when its CUDA backend starts, next to torch's memory: it allocates on
    demand instead (``XLA_PYTHON_CLIENT_PREALLOCATE``, unless set already). And
    :func:`quiet_jax_backend_discovery`.
    """
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    quiet_jax_backend_discovery()


def quiet_torchrl_info() -> None:
    """TorchRL's warnings, not its INFO records (e.g. each replay buffer's storage as it is allocated),
    which its logger prints to stdout between a run's own lines. ``RL_LOGGING_LEVEL``, TorchRL's own
    setting, wins when set."""
    if "RL_LOGGING_LEVEL" not in os.environ:
        logging.getLogger("torchrl").setLevel(logging.WARNING)


def configure_jax(cache_dir: str | Path | None = DEFAULT_JAX_CACHE) -> None:
    """JAX's persistent compilation cache in ``cache_dir`` (``None``: off).

    With the cache, SMAX's kernels are compiled once per machine, map and battle count, and later processes load
    them from disk. JAX is not imported for this: until it is, the settings go into the ``JAX_*`` environment
    variables it reads at import (a run that never uses JAX, on pursuit, VMAS or MPE, saves the 0.8 s of JAX's
    import); once it is, into ``jax.config``.
    """
    prepare_jax()
    settings = {"jax_enable_compilation_cache": cache_dir is not None}
    if cache_dir is not None:
        cache_dir = Path(cache_dir).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Cache every kernel: SMAX's compile in about a second each, under JAX's default threshold.
        settings.update({"jax_compilation_cache_dir": str(cache_dir), "jax_persistent_cache_min_compile_time_secs": 0.0,
                         "jax_persistent_cache_min_entry_size_bytes": -1})
    jax = sys.modules.get("jax")
    for name, value in settings.items():
        if jax is not None:
            jax.config.update(name, value)
        else:
            os.environ[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)


def configure_runtime(threads: int = 1, jax_cache_dir: str | Path | None = DEFAULT_JAX_CACHE) -> None:
    """:func:`set_threads`, :func:`configure_jax` and :func:`quiet_torchrl_info` in one call."""
    set_threads(threads)
    configure_jax(jax_cache_dir)
    quiet_torchrl_info()
