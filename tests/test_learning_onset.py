"""scripts/learning_onset.py: the onset of winning and its rank correlation with the final win rate, against
values counted by hand."""
from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from learning_onset import main, onset, paired_onsets, rank_correlation  # noqa: E402

FRAMES = np.arange(10_000, 300_001, 10_000)


def _curve(first_win_frame: float, rate: float) -> np.ndarray:
    """Training win rate 0 up to ``first_win_frame``, ``rate`` after: one row per 10k steps."""
    return np.stack([FRAMES, np.where(FRAMES > first_win_frame, rate, 0.0)], axis=1)


def test_onset_matches_a_hand_count():
    # 0.5 from 160k on: the window (f − 100k, f] holds 10 rows, and 4 of them at 0.5 make 0.2, first at 190k.
    assert onset(_curve(150_000, 0.5)) == 190_000
    # 1.0 from 260k on: 2 rows of 10 suffice, first at 270k.
    assert onset(_curve(250_000, 1.0)) == 270_000
    # Winning from the start counts only once a whole window lies behind: at 100k.
    assert onset(_curve(0, 0.5)) == 100_000
    assert onset(_curve(0, 0.5), window=30_000) == 30_000
    assert math.isinf(onset(_curve(0, 0.1)))  # never reaches 0.2


def test_rank_correlation_ranks_never_last():
    # Onset ranks 1, 2, 4 (never), 3 against win-rate ranks 2, 3, 1, 4: Σd² = 1 + 1 + 9 + 1 = 12, and
    # ρ = 1 − 6·12 / (4·(4² − 1)) = −0.2. Exact p over the 24 pairings: Σd² takes 0, 2, 4, …, 20 on 1, 3, 1, 4, 2,
    # 2, 2, 4, 1, 3, 1 of them, and |ρ| ≥ 0.2 where Σd² ≤ 8 or ≥ 12: 22 of 24.
    rho, p = rank_correlation([1.0, 2.0, math.inf, 3.0], [0.5, 0.9, 0.0, 0.95])
    assert rho == pytest.approx(-0.2) and p == pytest.approx(22 / 24)


def test_paired_onsets_sign_test_matches_a_hand_count():
    # Seeds 0–9: b first on 9, a first on seed 9; seed 10 neither got there (a tie); seed 11 has no b run.
    rows = [{"method": "a", "seed": s, "onset": 2e6 + s} for s in range(9)] + \
           [{"method": "b", "seed": s, "onset": 1e6} for s in range(9)] + \
           [{"method": "a", "seed": 9, "onset": 1e6}, {"method": "b", "seed": 9, "onset": math.inf},
            {"method": "a", "seed": 10, "onset": math.inf}, {"method": "b", "seed": 10, "onset": math.inf},
            {"method": "a", "seed": 11, "onset": 5e5}]
    # Two-sided: P(at most 1 of 10 fair coins one way) doubled = 2·(1 + 10) / 2¹⁰ = 22/1024.
    assert paired_onsets(rows, "a", "b") == (1, 9, 1, pytest.approx(22 / 1024))
    assert paired_onsets(rows, "b", "a") == (9, 1, 1, pytest.approx(22 / 1024))
    with pytest.raises(ValueError, match="no runs of 'c': the runs are of a, b"):
        paired_onsets(rows, "a", "c")
    with pytest.raises(ValueError, match="a sign test needs one"):
        paired_onsets(rows[-3:-1], "a", "b")


def _run(path: Path, overrides: list[str], curve: np.ndarray) -> Path:
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    path.mkdir(parents=True)
    OmegaConf.save(cfg, path / "config.yaml")
    with (path / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frames", "win_rate"])
        writer.writerows(curve.tolist())
    return path


def test_script_sorts_by_onset_correlates_and_draws(tmp_path, capsys):
    runs = {
        "liir_s0": (["algo=liir", "seed=0"], _curve(0, 0.5), 0.5),
        "liir_s1": (["algo=liir", "seed=1"], _curve(150_000, 0.5), 0.9),
        "iac_s0": (["algo=iac", "seed=0"], _curve(0, 0.0), 0.0),
        "iac_s1": (["algo=iac", "seed=1"], _curve(250_000, 1.0), 0.95),
    }
    dirs = [_run(tmp_path / name, overrides, curve) for name, (overrides, curve, _) in runs.items()]
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps([{"run": str(d), "episodes": 500, "greedy": {"win_rate": greedy},
                                       "stochastic": {"win_rate": greedy / 2}}
                                      for d, (_, _, greedy) in zip(dirs, runs.values())]))
    args = [*map(str, dirs), "--evaluation", str(evaluation)]
    main(args)
    printed = capsys.readouterr().out
    rows = [line.split(" | ")[0].lstrip("| ") for line in printed.splitlines() if line.startswith("| ")][1:]
    assert rows == ["liir_s0", "liir_s1", "iac_s1", "iac_s0"]
    assert "| iac_s0 | IAC | 0 | never | 0.000 |" in printed
    assert "over 4 runs: ρ = -0.20" in printed
    # LIIR first on seed 0 (100k, IAC never) and seed 1 (190k against 270k): p = 2·(1/2)² = 0.5.
    main([*args, "--pair", "liir", "iac"])
    assert ("Seed for seed, LIIR got there first on 2 of 2 pairs, IAC on 0, 0 tied (the same step, or neither); "
            "sign test, two-sided p = 0.5.") in capsys.readouterr().out
    # Without the run that never started, onset and win rate rank alike.
    out = tmp_path / "onset.png"
    main([*args, "--onset-before", "1000000", "--out", str(out)])
    assert "the 3 of 4 runs whose onset came before 1,000,000 steps: ρ = +1.00" in capsys.readouterr().out
    assert out.stat().st_size > 10_000
    with out.with_suffix(".csv").open() as f:
        assert {row["run"]: float(row["onset"]) for row in csv.DictReader(f)}["liir_s1"] == 190_000
    with pytest.raises(SystemExit) as too_few:
        main([*args, "--onset-before", "150000"])
    assert str(too_few.value.code).startswith("error: only 1 of 4 runs started winning before 150,000 steps")
