"""scripts/compare_methods.py (the across-seed and pooled-battle tests against hand values) and the method names
runs are grouped by."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import run_in_process
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from compare_methods import compare  # noqa: E402
from run_records import env_of, method_label, method_of, method_sort_key  # noqa: E402


# Every seed's difference (the paired t-test) or rate (Fisher's tables) is the same in these hand-made tables: scipy
# warns that their variance is zero. Only Welch's test and Fisher's are checked here.
@pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation:RuntimeWarning:scipy")
def test_welch_and_fisher_match_hand_values():
    # Welch by hand: means 0.2 and 0.5, variances 0.01 and 0.01, n = 3: t = −0.3/√(0.02/3) = −3.674,
    # df = (0.02/3)² / (2·(0.01/3)²/2) = 4. Two-sided p for |t| = 3.674 with 4 df lies between the t table's
    # 0.02 (3.747) and 0.05 (2.776).
    a = {0: (0.1, 10), 1: (0.2, 10), 2: (0.3, 10)}
    b = {0: (0.4, 10), 1: (0.5, 10), 2: (0.6, 10)}
    result = compare(a, b)
    assert result["welch_t"] == pytest.approx(-0.3 / math.sqrt(0.02 / 3))
    assert result["welch_df"] == pytest.approx(4.0)
    assert 0.02 < result["welch_p"] < 0.05
    # The interval is −0.3 ± t(0.975, 4 df = 2.776) · √(0.02/3).
    half = 2.7764451 * math.sqrt(0.02 / 3)
    assert result["difference_95"] == pytest.approx((-0.3 - half, -0.3 + half), rel=1e-6)
    # Fisher by hand (the tea-tasting table [[3, 1], [1, 3]]): tables as or more extreme than 3 hits of 4,
    # (C(4,3)² + C(4,4)²) · 2 / C(8,4) = 34 / 70.
    tea = compare({0: (0.75, 4), 1: (0.75, 4)}, {0: (0.25, 4), 1: (0.25, 4)})
    assert tea["pooled"] == (6, 8, 2, 8)
    tea_single = compare({0: (0.75, 4), 1: (0.75, 0)}, {0: (0.25, 4), 1: (0.25, 0)})
    assert tea_single["fisher_p"] == pytest.approx(34 / 70)


def test_paired_test_matches_hand_values_and_needs_the_same_seeds():
    # Differences 0.05, 0.04, 0.04: mean 0.04333, sd √(((0.00667)² + 2·(0.00333)²)/2) = 0.005774, se 0.003333,
    # t = 13.0 with 2 df. For 2 df the t distribution has closed forms: two-sided p = 1 − t/√(t² + 2) and the
    # 0.975 quantile 0.95·√(2/(1 − 0.95²)) = 4.3027.
    a = {0: (0.80, 100), 1: (0.70, 100), 2: (0.90, 100)}
    b = {0: (0.75, 100), 1: (0.66, 100), 2: (0.86, 100)}
    result = compare(a, b)
    assert result["paired_t"] == pytest.approx(13.0, rel=1e-6)
    assert result["paired_p"] == pytest.approx(1 - 13 / math.sqrt(171), rel=1e-6)
    half = 0.95 * math.sqrt(2 / (1 - 0.95 ** 2)) * 0.01 / 3
    assert result["paired_95"] == pytest.approx((0.13 / 3 - half, 0.13 / 3 + half), rel=1e-6)
    other_seeds = compare(a, {1: (0.66, 100), 2: (0.86, 100), 3: (0.75, 100)})
    assert other_seeds["paired_t"] is None and other_seeds["paired_p"] is None
    assert compare(a, b, paired=False)["paired_t"] is None


def _evaluation(method, seed, rate, episodes=100, algo="liir"):
    return {"run": f"runs/{method}_{seed}", "env": "smax_3m", "algo": algo, "method": method, "train_seed": seed,
            "episodes": episodes, "greedy": {"win_rate": rate}, "stochastic": {"win_rate": rate / 2}}


@pytest.mark.slow
def test_script_writes_its_block_and_refuses_one_seed(tmp_path, capsys):
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps([_evaluation("liir", s, r) for s, r in enumerate([0.7, 0.8, 0.75])]
                               + [_evaluation("liir_lambda0", s, r) for s, r in enumerate([0.72, 0.74, 0.76])]
                               + [_evaluation("iac", s, r, algo="iac") for s, r in enumerate([0.5, 0.6, 0.9])]))
    out = tmp_path / "README.md"
    script = [sys.executable, str(ROOT / "scripts" / "compare_methods.py"), str(path)]
    done = subprocess.run([*script, "--a", "liir", "--b", "liir_lambda0", "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "| mean over seeds | 0.750 | 0.740 |" in text and "225 / 300" in text and "do not differ" in text
    assert "Seed for seed (paired t-test)" in text
    # Different algorithms share only the seed numbers: Welch's test alone.
    unpaired = run_in_process([*script, "--a", "iac", "--b", "liir"], capsys)
    assert unpaired.returncode == 0, unpaired.stderr
    assert "Welch's t-test" in unpaired.stdout and "paired t-test" not in unpaired.stdout
    refused = run_in_process([*script, "--a", "liir", "--b", "qmix"], capsys)
    assert refused.returncode == 1 and refused.stderr.strip().startswith("error: method 'qmix'")
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("overrides, method", [
    (["algo=liir"], "liir"),
    (["algo=liir", "algo.lambda_in=0"], "liir_lambda0"),
    (["algo=liir_authors"], "liir_authors"),
    (["algo=liir_authors", "algo.variant=released_code"], "liir_authors_released"),
    (["algo=liir", "algo.variant=released_code"], "liir_released"),
    (["algo=liir", "algo.intrinsic_bound=10"], "liir_bound10"),
    (["algo=liir_authors", "algo.intrinsic_bound=1"], "liir_floor"),
    (["algo=liir", "algo.proxy_critic=obs"], "liir_proxy_obs"),
    (["algo=liir_centred"], "liir_centred"),
    (["algo=liir_rms"], "liir_rms"),
    (["algo=liir", "algo.lr_intrinsic=1e-3"], "liir_eta_rmsprop0.001"),
    (["algo=liir", "algo.intrinsic_optimizer=adam", "algo.lr_intrinsic=1e-3"], "liir_eta_adam"),  # the former default
    (["algo=liir", "algo.intrinsic_optimizer=adam"], "liir_eta_adam0.0005"),
    (["algo=liir_authors", "algo.intrinsic_optimizer=adam", "algo.lr_intrinsic=1e-3"], "liir_authors_eta_adam"),
    (["algo=liir", "algo.lambda_in=0", "algo.intrinsic_optimizer=adam", "algo.lr_intrinsic=1e-3"], "liir_lambda0"),
    (["algo=liir", "algo.critic_optimizer=rmsprop"], "liir_rmsprop"),
    (["algo=liir_paper"], "liir_rmsprop"),
    (["algo=liir_large_lambda"], "liir_lambda0.1"),
    (["algo=liir_meta_entropy"], "liir_meta_entropy"),
    (["algo=liir_meta_entropy", "algo.meta_entropy_coeff=0.05"], "liir_meta_entropy0.05"),
    (["algo=liir_centred", "algo.lambda_in=0"], "liir_centred_lambda0"),
    (["algo=central_v"], "central_v"),
    (["algo=coma"], "coma"),
    (["algo=coma", "algo.epsilon_floor_start=0.5", "algo.epsilon_floor_end=0.01"], "coma_floor"),
    (["algo=coma", "algo.critic_updates=time_step"], "coma_time_step"),
    (["algo=coma", "algo.epsilon_floor_start=0.5", "algo.critic_updates=time_step"], "coma_floor_time_step"),
    (["algo=qmix"], "qmix"),
    (["algo=qmix", "algo.replay=transitions"], "qmix_transitions"),
    (["algo=iql", "algo.replay=transitions"], "iql_transitions"),
])
def test_method_of_names_liir_variants(overrides, method):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        assert method_of(compose(config_name="config", overrides=overrides)) == method


@pytest.mark.parametrize("overrides, env", [
    (["task=smax", "task.map=8m"], "smax_8m"),
    (["task=smax", "task.map=8m", "task.walls_cause_death=false"], "smax_8m_safe_walls"),
    (["task=smax", "task.map=8m", "~task.walls_cause_death"], "smax_8m"),  # a run saved before the key
    (["task=pursuit"], "pursuit"),
])
def test_env_of_keeps_runs_with_safe_walls_apart(overrides, env):
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        assert env_of(compose(config_name="config", overrides=overrides)) == env


def test_method_of_a_qmix_run_saved_before_replay_was_a_key_is_transition_replay():
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["algo=qmix", "~algo.replay"])
    assert method_of(OmegaConf.create(OmegaConf.to_yaml(cfg))) == "qmix_transitions"  # as a run's config.yaml


def test_method_of_a_liir_run_saved_before_the_optimiser_was_a_key_is_the_former_default():
    with initialize_config_dir(config_dir=str(ROOT / "torchrl_liir" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config",
                      overrides=["algo=liir", "~algo.intrinsic_optimizer", "algo.lr_intrinsic=1e-3"])
    assert method_of(OmegaConf.create(OmegaConf.to_yaml(cfg))) == "liir_eta_adam"  # Adam at 1e-3, as those runs


@pytest.mark.parametrize("method, label", [
    ("liir", "LIIR"),
    ("liir_eta_adam", "LIIR, η on Adam 1e-3"),
    ("liir_centred_eta_adam", "LIIR, r_in centred under π, η on Adam 1e-3"),
    ("liir_eta_adam_lambda0.1", "LIIR, λ = 0.1, η on Adam 1e-3"),
    ("liir_eta_adam0.0005", "LIIR, η on Adam 5e-4"),  # another rate: a name of its own, no suffix
    ("some_new_method", "some_new_method"),
])
def test_method_label_names_the_former_default_after_its_variant(method, label):
    assert method_label(method) == label


def test_method_sort_key_puts_each_former_default_run_after_its_variant_and_unknown_methods_last():
    methods = ["mappo", "zz_new", "liir_lambda0", "liir_centred_eta_adam", "liir_eta_adam", "liir", "liir_centred"]
    assert sorted(methods, key=method_sort_key) == ["liir", "liir_eta_adam", "liir_lambda0", "liir_centred",
                                                     "liir_centred_eta_adam", "mappo", "zz_new"]


def test_every_archived_evaluation_names_the_method_its_run_config_makes():
    """Each entry of results/**/*evaluation*.json carries ``method``; it must be what ``method_of`` makes of the
    archived run's config.yaml (a renamed default re-derives them). An entry names its run's archived path, or its
    path under runs/, whose directory name is then that of the archived runs beside the file not claimed by another
    entry's path (seeds 0 and 1 of 2s3z ran at 3M steps under the names of a 10M run and a short run)."""
    files = sorted((ROOT / "results").rglob("*evaluation*.json"))
    every = [entry for path in files for entry in json.loads(path.read_text())]
    archived = {e["run"] for e in every if e["run"].startswith("results/")}
    claimed = {(ROOT / run).resolve() for run in archived}
    checked = 0
    for evaluation in files:
        entries = json.loads(evaluation.read_text())
        configs = defaultdict(list)
        for config in evaluation.parent.rglob("config.yaml"):
            configs[config.parent.name].append(config)
        for entry in entries:
            run = ROOT / entry["run"]
            candidates = ([run / "config.yaml"] if entry["run"] in archived else
                          [c for c in configs[run.name] if c.parent.resolve() not in claimed])
            assert candidates, (evaluation, entry["run"])
            for config in candidates:  # a name shared by runs of one method (2s3z's runs/ and short_runs/)
                assert method_of(OmegaConf.load(config)) == entry["method"], (evaluation, entry["run"], config)
            checked += 1
    assert checked >= 176  # the evaluations archived when this test was written


def test_seeds_restricts_both_methods_so_that_unequal_seed_sets_pair(tmp_path, capsys):
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps([_evaluation("liir", s, r) for s, r in enumerate([0.7, 0.8, 0.75])]
                               + [_evaluation("liir_lambda0", s, r) for s, r in enumerate([0.72, 0.74, 0.76, 0.9])]))
    script = [sys.executable, str(ROOT / "scripts" / "compare_methods.py"), str(path), "--a", "liir",
              "--b", "liir_lambda0"]
    unequal = run_in_process(script, capsys)
    assert unequal.returncode == 0 and "paired t-test" not in unequal.stdout  # seeds 0–2 against 0–3: Welch only
    paired = run_in_process([*script, "--seeds", "0", "1", "2"], capsys)
    assert paired.returncode == 0, paired.stderr
    # By hand: differences −0.02, +0.06, −0.01, mean 0.01, sd √(0.0038/2) = 0.04359, t = 0.01/(0.04359/√3) = 0.40.
    assert "| mean over seeds | 0.750 | 0.740 |" in paired.stdout
    assert "Seed for seed (paired t-test)" in paired.stdout and "t = 0.40," in paired.stdout
