"""The docs' configuration reference (docs/guide/configuration.md) is the one the configs and their checks
generate, and it names every key."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from config_reference import BLOCK, reference  # noqa: E402


def test_the_documented_reference_is_what_the_code_generates():
    generated = reference()
    page = (ROOT / "docs" / "guide" / "configuration.md").read_text()
    assert BLOCK.search(page).group(0).split("\n", 1)[1].rsplit("\n", 1)[0] == generated


def test_every_key_has_a_default_allowed_values_and_a_meaning():
    rows = [line for line in reference().splitlines() if line.startswith("| `")]
    assert len(rows) > 60
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert all(cells), row
    for key in ("| `algo.lambda_in` |", "| `experiment.total_frames` |", "| `preset` |", "| `task.scenario` |"):
        assert any(key in row for row in rows), key


def test_a_key_that_means_different_things_per_algorithm_says_each():
    """COMA copies its target critic every N batches, IQL and QMIX every N optimiser steps (``steps_per_batch`` of
    them per batch): one algorithm's comment must not stand for the others'."""
    (row,) = [line for line in reference().splitlines() if line.startswith("| `algo.target_update_interval` |")]
    meaning = row.rstrip(" |").rsplit(" | ", 1)[1]
    assert meaning.startswith("coma: updates (one per collected batch) between hard copies of the target critic; ")
    assert "iql: optimiser steps between hard copies" in meaning and "qmix: optimiser steps between" in meaning
