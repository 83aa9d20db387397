"""The examples a researcher copies run as written (tiny budgets)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vmas")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("extra", [[], ["--continuous", "--scenario", "navigation"]], ids=["discrete", "continuous"])
def test_liir_in_a_vmas_pipeline_trains(extra):
    command = [sys.executable, "examples/liir_in_a_vmas_pipeline.py", "--envs", "4", "--max-steps", "10",
               "--frames", "120", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("last batch: mean team reward per step ")
    assert math.isfinite(float(last.rsplit(" ", 1)[1]))
