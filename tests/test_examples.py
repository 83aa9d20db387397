"""The examples a researcher copies run as written (tiny budgets); the MAPPO example in TorchRL's multi-agent style
and its LIIR twin differ only where LIIR must."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPO, LIIR = ROOT / "examples" / "mappo_vmas.py", ROOT / "examples" / "liir_vmas.py"
REGION = re.compile(r"^ *# <<< differs from the twin: ([^\n]*)\n(.*?)^ *# >>>\n", re.S | re.M)


def split(path: Path) -> tuple[list[str], list[str], list[str]]:
    """The script's text outside the marked regions, the regions' titles and their bodies."""
    text = path.read_text()
    regions = REGION.findall(text)
    return REGION.split(text)[::3], [title for title, _ in regions], [body for _, body in regions]


def test_the_twins_differ_only_in_the_marked_regions():
    mappo_rest, mappo_titles, _ = split(MAPPO)
    liir_rest, liir_titles, liir_bodies = split(LIIR)
    assert len(liir_titles) == 5 and mappo_titles == liir_titles
    assert mappo_rest == liir_rest  # everything outside the regions is the same text
    assert "ClipPPOLoss" not in "".join(liir_rest) and "LIIRLoss" not in "".join(mappo_rest)
    # LIIR's own code: the imports, the loss with its optimiser and one step per batch.
    code = [line for body in liir_bodies for line in body.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and not body.lstrip().startswith('"""')]
    assert len(code) <= 18, code


def last_reward(script: Path, *args: str, prefix: str) -> float:
    """Runs ``script`` with ``args``; its last line starts with ``prefix`` and ends with a finite reward."""
    done = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(prefix)
    reward = float(last.rsplit(" ", 1)[1])
    assert math.isfinite(reward)
    return reward


@pytest.mark.slow
@pytest.mark.parametrize("script", [MAPPO, LIIR], ids=["mappo", "liir"])
def test_the_twins_train(script):
    pytest.importorskip("vmas")
    epochs = ["--minibatch-size", "20", "--epochs", "1"] if script == MAPPO else []
    last_reward(script, "--max-steps", "10", "--frames-per-batch", "40", "--frames", "80", *epochs,
                prefix="last batch: mean episode reward ")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--continuous", "--scenario", "navigation"]], ids=["discrete", "continuous"])
def test_liir_in_a_vmas_pipeline_trains(extra):
    pytest.importorskip("vmas")
    last_reward(ROOT / "examples" / "liir_in_a_vmas_pipeline.py", "--envs", "4", "--max-steps", "10", "--frames",
                "120", *extra, prefix="last batch: mean team reward per step ")
