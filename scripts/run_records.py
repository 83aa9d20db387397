"""Reading a run directory's metrics back, for plots and tables: ``metrics.csv`` and ``test.csv`` (or their
gzipped, thinned copies in ``results/``, see ``scripts/archive_runs.py``), or the ``metrics/scalars/<name>.csv``
files (rows ``step,value``) of runs written before those tables."""
from __future__ import annotations

import csv
import gzip
import math
import re
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from torchrl_liir.algorithms import get_algorithm
from torchrl_liir.algorithms.algorithm import has_exploration_floor
from torchrl_liir.config_checks import with_added_defaults
from torchrl_liir.trainers.config import load_saved_config

METHOD_ORDER = ("liir", "liir_lambda0", "liir_centred", "liir_rms", "liir_meta_entropy",
                "liir_eta_adam0.0005", "liir_eta_rmsprop0.001", "liir_rmsprop",
                "liir_lambda0.1", "liir_authors", "liir_authors_released", "liir_bound10", "liir_floor",
                "liir_proxy_obs", "iql", "iql_transitions", "iac", "central_v", "coma", "coma_floor", "coma_time_step",
                "coma_floor_time_step", "qmix", "qmix_transitions", "mappo")
METHOD_NAMES = {"liir": "LIIR", "liir_lambda0": "LIIR, λ = 0", "liir_centred": "LIIR, r_in centred under π",
                "liir_rms": "LIIR, unbounded r_in over its batch RMS",
                "liir_meta_entropy": "LIIR, η's objective with the policy's entropy",
                "liir_eta_adam0.0005": "LIIR, η on Adam 5e-4",
                "liir_eta_rmsprop0.001": "LIIR, η on RMSprop 1e-3",
                "liir_rmsprop": "LIIR, the paper's optimisers (η and critics on RMSprop 5e-4)",
                "liir_lambda0.1": "LIIR, λ = 0.1", "liir_authors": "LIIR, authors' code settings",
                "liir_authors_released": "LIIR, authors' code settings and meta-gradient",
                "liir_released": "LIIR, authors' code meta-gradient", "liir_bound10": "LIIR, r_in bound 10",
                "liir_floor": "LIIR, exploration floor", "liir_proxy_obs": "LIIR, proxy critic V(o_i)",
                "iql": "IQL", "iql_transitions": "IQL, transition replay", "iac": "IAC", "central_v": "Central-V",
                "coma": "COMA",
                "coma_floor": "COMA, exploration floor", "coma_time_step": "COMA, a critic step per time step",
                "coma_floor_time_step": "COMA, exploration floor and a critic step per time step",
                "qmix": "QMIX", "qmix_transitions": "QMIX, transition replay", "mappo": "MAPPO"}
_RANK = {method: float(i) for i, method in enumerate(METHOD_ORDER)}
# η on Adam at 1e-3, LIIR's default until 2026-12-06: the runs of that time carry it in their names.
_FORMER_ETA = re.compile(r"_eta_adam(?![0-9.])")


def method_label(method: str) -> str:
    """A method's name for people: ``METHOD_NAMES``'s, or its variant's with η on Adam 1e-3 after it."""
    if method in METHOD_NAMES or not _FORMER_ETA.search(method):
        return METHOD_NAMES.get(method, method)
    return f"{method_label(_FORMER_ETA.sub('', method))}, η on Adam 1e-3"


def method_sort_key(method: str) -> tuple[float, str]:
    """Order of methods in tables and plots: ``METHOD_ORDER``, each variant with η on Adam 1e-3 just after the
    variant itself, the methods it lacks last by name."""
    if method not in _RANK and _FORMER_ETA.search(method):
        return _RANK.get(_FORMER_ETA.sub("", method), len(_RANK)) + 0.5, method
    return _RANK.get(method, len(_RANK)), method


def env_of(cfg: DictConfig) -> str:
    """The env a run stands for in tables and plots: its task's run name (``smax_3m``), with ``_safe_walls`` where
    SMAX's rule that units touching the map's edge die was turned off (``task.walls_cause_death=false``), so that
    such runs never pool with those played by the rule (every run saved before the key was)."""
    name = cfg.task.get("run_name", cfg.task.name)
    return name if cfg.task.get("walls_cause_death", True) else f"{name}_safe_walls"


def method_of(cfg: DictConfig) -> str:
    """The method a run stands for in tables and plots: its algorithm, and for LIIR the variant its settings make
    (``liir_authors``: r_in bound 10 with the exploration floor, or either alone: ``liir_bound10``,
    ``liir_floor``; ``_proxy_obs``: the proxy critic reads the observation, not the state; ``_released``: the
    code's meta-gradient; the remedies ``_centred`` (r_in centred under the policy), ``_rms`` (unbounded r_in
    over its batch RMS), ``_meta_entropy`` (η's objective with the policy's entropy bonus; ``_meta_entropy<β>``:
    another weight than the policy's); ``_eta_adam``: η on Adam at 1e-3, the default until 2026-12-06 (η on
    RMSprop at 5e-4 since), ``_eta_adam<rate>``, ``_eta_rmsprop<rate>``: η at another rate; ``_rmsprop``: the
    critics on RMSprop too (``algo=liir_paper``); ``_lambda<λ>``: another λ than 0.01 (``_lambda0``: r_in off);
    COMA's ``_floor``: the exploration floor, ``_time_step``: a critic step per time step; IQL's and QMIX's
    ``_transitions``: samples of a fixed number of transitions replayed, not whole episodes)."""
    name = cfg.algo.name
    algo = with_added_defaults(cfg.algo, get_algorithm(name).config_checks())  # runs saved before a key was added
    if name == "coma":
        return "_".join(["coma"] + (["floor"] if has_exploration_floor(algo) else [])
                        + (["time_step"] if algo.critic_updates == "time_step" else []))
    if name in ("iql", "qmix"):
        return f"{name}_transitions" if algo.replay == "transitions" else name
    if name != "liir":
        return name
    parts = ["liir"]
    floor, bound = has_exploration_floor(algo), algo.intrinsic_bound
    if floor and bound == 10:
        parts.append("authors")
    else:
        parts += ([f"bound{bound:g}"] if bound != 1 else []) + (["floor"] if floor else [])
    if algo.proxy_critic == "obs":
        parts.append("proxy_obs")
    if algo.variant == "released_code":
        parts.append("released")
    if algo.intrinsic_centring == "policy":
        parts.append("centred")
    if algo.intrinsic_scale == "batch_rms":
        parts.append("rms")
    if algo.meta_entropy_coeff:
        parts.append("meta_entropy" if algo.meta_entropy_coeff == algo.entropy_coeff
                     else f"meta_entropy{algo.meta_entropy_coeff:g}")
    # η's optimiser and rate where they differ from the default (RMSprop 5e-4; Adam 1e-3 until 2026-12-06, named
    # ``_eta_adam``); not at λ = 0, where η does not reach the policy and both optimisers give the same run.
    if algo.lambda_in != 0:
        if algo.intrinsic_optimizer == "adam":
            parts.append("eta_adam" + ("" if math.isclose(algo.lr_intrinsic, 1e-3) else f"{algo.lr_intrinsic:g}"))
        elif not math.isclose(algo.lr_intrinsic, 5e-4):
            parts.append(f"eta_rmsprop{algo.lr_intrinsic:g}")
    if algo.critic_optimizer == "rmsprop":
        parts.append("rmsprop")
    if algo.lambda_in != 0.01:
        parts.append(f"lambda{algo.lambda_in:g}")
    return "_".join(parts)


def refuse_repeated_runs(run_dirs: list[Path]) -> None:
    """ValueError when two of ``run_dirs`` are one run: the same directory twice, or two copies of one run (the same
    env, method, policy, seed and budget, such as a run under runs/ and its archive in results/), which every table
    and statistic would count as two seeds."""
    seen: dict[tuple, Path] = {}
    for run_dir in run_dirs:
        config = Path(run_dir) / "config.yaml"
        if not config.is_file():
            continue  # each script names a directory that is not a run in its own words
        cfg = load_saved_config(config)
        key = (env_of(cfg), method_of(cfg), cfg.model.get("policy"), cfg.seed, cfg.experiment.total_frames)
        if key in seen:
            raise ValueError(f"{seen[key]} and {run_dir} are one run ({method_label(key[1])}, seed {key[3]} on "
                             f"{key[0]}, {key[4]:,} steps): pass each run once")
        seen[key] = run_dir


def read_metric(run_dir: str | Path, name: str) -> np.ndarray:
    """``[n, 2]`` array of (frames, value) of one metric: ``test_*`` from ``test.csv``, the others from
    ``metrics.csv`` (empty cells skipped); an older run's ``metrics/scalars/<name>.csv`` where those are absent."""
    run_dir = Path(run_dir)
    table = run_dir / ("test.csv" if name.startswith("test_") else "metrics.csv")
    if not table.exists() and table.with_suffix(".csv.gz").exists():
        table = table.with_suffix(".csv.gz")
    legacy = run_dir / "metrics" / "scalars"
    if table.exists():
        path = table
        with (gzip.open(table, "rt", newline="") if table.suffix == ".gz" else table.open(newline="")) as f:
            reader = csv.DictReader(f)
            if name not in (reader.fieldnames or []):
                raise ValueError(f"{table} has no column {name!r} (has this run logged it?)")
            rows = [(float(row["frames"]), float(row[name])) for row in reader if row[name] != ""]
    elif legacy.is_dir():
        path = legacy / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (has this run logged {name!r}?)")
        with path.open(newline="") as f:
            rows = [(float(step), float(value)) for step, value in csv.reader(f)]
    else:
        raise FileNotFoundError(f"{table} is missing: is {run_dir} a training run directory?")
    if not rows:
        raise ValueError(f"{path} holds no value of {name!r}")
    return np.asarray(rows, dtype=float)
