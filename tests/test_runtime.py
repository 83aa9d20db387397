"""Runtime settings: torch threads, JAX's persistent compilation cache."""
from __future__ import annotations

import pytest
import torch

from torchrl_liir.runtime import DEFAULT_JAX_CACHE, configure_jax, set_threads


def test_threads_are_set_and_checked():
    set_threads(1)
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads=0"):
        set_threads(0)


def test_jax_cache_goes_where_asked_and_turns_off(tmp_path):
    jax = pytest.importorskip("jax")
    try:
        configure_jax(tmp_path / "cache")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
        assert jax.config.jax_enable_compilation_cache
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        configure_jax(None)
        assert not jax.config.jax_enable_compilation_cache
    finally:
        configure_jax(DEFAULT_JAX_CACHE)
