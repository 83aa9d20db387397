"""Runtime settings: torch threads, JAX's persistent compilation cache."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from torchrl_liir.runtime import DEFAULT_JAX_CACHE, configure_jax, set_threads


def test_threads_are_set_and_checked():
    set_threads(1)
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="experiment.threads=0"):
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


def test_jax_settings_reach_a_jax_imported_later_and_jax_is_not_imported_for_them(tmp_path):
    pytest.importorskip("jax")
    code = f"""
import sys
from torchrl_liir.runtime import configure_jax
configure_jax({str(tmp_path / "later")!r})
assert "jax" not in sys.modules
import jax
print(jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache,
      jax.config.jax_persistent_cache_min_compile_time_secs, jax.config.jax_persistent_cache_min_entry_size_bytes)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(tmp_path / "later"), "True", "0.0", "-1"]
