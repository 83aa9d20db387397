"""scripts/compare_effects.py: the change of one method's lead between two envs, against hand values."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import run_in_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from compare_effects import compare_leads, lead_per_seed  # noqa: E402


def _evaluation(env, method, seed, rate):
    return {"run": f"runs/{env}_{method}_{seed}", "env": env, "algo": "liir", "method": method, "train_seed": seed,
            "episodes": 100, "greedy": {"win_rate": rate}}


def test_leads_are_seed_for_seed_differences_over_the_seeds_both_ran():
    evaluations = ([_evaluation("lethal", "liir", s, r) for s, r in enumerate([0.9, 0.5, 0.7, 0.8])]
                   + [_evaluation("lethal", "liir_lambda0", s, r) for s, r in enumerate([0.6, 0.6, 0.2])])
    leads = lead_per_seed(evaluations, "liir", "liir_lambda0", "lethal")
    assert leads == pytest.approx({0: 0.3, 1: -0.1, 2: 0.5})  # seed 3: LIIR alone, left out
    with pytest.raises(ValueError, match="the test needs at least 2"):
        lead_per_seed(evaluations[:2] + evaluations[4:5], "liir", "liir_lambda0", "lethal")


def test_welch_on_the_leads_matches_hand_values():
    # Leads 0.1, 0.2, 0.3 against 0.4, 0.5, 0.6: means 0.2 and 0.5, variances 0.01 each, n = 3, so
    # t = −0.3/√(0.02/3) = −3.674 and df = (0.02/3)² / (2·(0.01/3)²/2) = 4; the interval is
    # −0.3 ± t(0.975, 4 df = 2.776)·√(0.02/3), and the two-sided p for |t| = 3.674 lies between the t table's
    # 0.02 (3.747) and 0.05 (2.776).
    result = compare_leads({0: 0.1, 1: 0.2, 2: 0.3}, {0: 0.4, 1: 0.5, 2: 0.6})
    assert result["change"] == pytest.approx(-0.3)
    assert result["welch_t"] == pytest.approx(-0.3 / math.sqrt(0.02 / 3))
    assert result["welch_df"] == pytest.approx(4.0)
    assert 0.02 < result["welch_p"] < 0.05
    half = 2.7764451 * math.sqrt(0.02 / 3)
    assert result["change_95"] == pytest.approx((-0.3 - half, -0.3 + half), rel=1e-6)


def test_script_writes_its_block_and_refuses_an_env_without_pairs(tmp_path, capsys):
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(
        [_evaluation("lethal", "liir", s, r) for s, r in enumerate([0.9, 0.8, 0.7])]
        + [_evaluation("lethal", "liir_lambda0", s, r) for s, r in enumerate([0.8, 0.6, 0.4])]
        + [_evaluation("harmless", "liir", s, r) for s, r in enumerate([0.5, 0.5, 0.5])]
        + [_evaluation("harmless", "liir_lambda0", s, r) for s, r in enumerate([0.1, 0.0, -0.1])]))
    out = tmp_path / "README.md"
    script = [sys.executable, str(ROOT / "scripts" / "compare_effects.py"), str(path), "--a", "liir",
              "--b", "liir_lambda0", "--env", "lethal"]
    done = run_in_process([*script, "--against", "harmless", "--out", str(out), "--key", "lead"], capsys)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    # Leads +0.1, +0.2, +0.3 (lethal) against +0.4, +0.5, +0.6 (harmless): the hand values above.
    assert "| mean over seeds | +0.200 | +0.500 |" in text and "t = -3.67, df = 4.0" in text
    assert "<!-- results:lead -->" in text and "do not differ" not in text
    refused = run_in_process([*script, "--against", "nowhere"], capsys)
    assert refused.returncode == 1 and refused.stderr.strip().startswith("error: method 'liir' on nowhere")
    assert len(refused.stderr.strip().splitlines()) == 1
