"""
Populations: many seeds and a λ = 0 ablation in one process
===========================================================

Whether LIIR's intrinsic reward helps is a question about many runs: the same algorithm with and without r_in
(λ = 0), over several seeds each. The trainer trains such a set, a *population*, in one process: ``seeds=N``
trains seeds ``seed`` .. ``seed+N-1``, and ``variants`` names sets of ``algo.*`` / ``model.*`` keys, each trained
on every seed. Every member is exactly the solo run of its seed and variant, bit for bit, and writes the same
files into its own subdirectory.

This tutorial trains LIIR and its λ = 0 ablation on 3 seeds each of 1D Pursuit through the Python ``train()``
API, then plots the members' curves from their ``metrics.csv`` tables.

.. note::

   The budget here is tiny (about 25 updates of 32 episodes per member, an eighth of the default run), so
   that the page builds in seconds. It shows how populations work and how to read them, **not a result**:
   nothing below says whether r_in helps on Pursuit. The README's results come from full-length runs.
"""

# %%
# The configuration
# -----------------
#
# The trainer's configuration is hydra's; from Python, ``compose`` builds it from the same overrides the command
# line takes. On the command line this population is::
#
#     python scripts/train.py seeds=3 'variants={liir:{},lambda0:{algo.lambda_in:0}}' experiment.total_frames=16000
#
# Besides the budget, the overrides turn off what a tutorial does not need: the progress bar, the Fig. 2 study
# that Pursuit runs draw after training, and test episodes between the first and the last.

import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from torchrl_liir.cli import CONFIG_DIR
from torchrl_liir.trainers import train

overrides = [
    "task=pursuit",
    "seeds=3",
    "variants={liir:{},lambda0:{algo.lambda_in:0}}",
    "experiment.total_frames=16000",
    "experiment.progress_bar=false",
    "experiment.study=null",
    "experiment.evaluation_interval_episodes=0",
]
with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
    cfg = compose(config_name="config", overrides=overrides)
print(f"seed {cfg.seed}, seeds {cfg.seeds}, variants {dict(cfg.variants)}")

# %%
# Training
# --------
#
# ``train(cfg, run_dir)`` checks the whole configuration first (every variant's), then trains the members in
# turn, one collected batch and one update each per round, each with its own networks, optimisers, envs and
# random streams. It returns a summary of how each member ended; the same summary is in ``population.json``.
# The run directory here is a temporary one.

run_dir = Path(tempfile.mkdtemp(prefix="liir_population_"))
summary = train(cfg, run_dir)
print("population:", summary["status"])
for name, member in summary["members"].items():
    print(f"{name:15s} {member['status']}, {member['frames']} frames, {member['updates']} updates, "
          f"test return {member['test']['test_return']:+.4f}")

# %%
# What the population wrote
# -------------------------
#
# One subdirectory per member, named ``<variant>_seed<N>``, holding what a solo run writes: its resolved
# ``config.yaml``, ``metrics.csv`` (one row per update), ``test.csv``, ``summary.json`` and ``checkpoints/``. Any
# script that reads a run reads a member unchanged. The population's own ``config.yaml`` and
# ``population.json`` sit beside them.

def listing(directory):
    return sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir() if not p.name.startswith("."))


print("the population's directory:", listing(run_dir))
member = run_dir / "lambda0_seed0"
print("lambda0_seed0/:", listing(member))
member_cfg = OmegaConf.load(member / "config.yaml")
print(f"lambda0_seed0's config: seed={member_cfg.seed}, seeds={member_cfg.seeds}, "
      f"algo.lambda_in={member_cfg.algo.lambda_in}")

# %%
# The members' curves
# -------------------
#
# Each ``metrics.csv`` row is one update: the frames played so far, the training episodes' mean return, every
# loss term and gradient norm. Left: the training return of each member against frames. Right: the norm of η's
# gradient. With λ = 0, r_in has no way to change the policy's step, so its meta-gradient is exactly zero and η
# never moves; in the LIIR members it is not. That difference is mechanical, and shows at any budget; the
# left panel, at this budget, is noise.


def read_metrics(path):
    with path.open(newline="") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
colours = {"liir": "tab:blue", "lambda0": "tab:orange"}
for variant, colour in colours.items():
    for seed in range(3):
        rows = read_metrics(run_dir / f"{variant}_seed{seed}" / "metrics.csv")
        frames = [row["frames"] for row in rows]
        label = ("LIIR, λ = 0.01" if variant == "liir" else "λ = 0") if seed == 0 else None
        left.plot(frames, [row["episode_return"] for row in rows], color=colour, alpha=0.7, label=label)
        right.plot(frames, [row["grad_norm_intrinsic"] for row in rows], color=colour, alpha=0.7, label=label)
left.set_xlabel("frames")
left.set_ylabel("training episode return")
left.set_title("return per update, 3 seeds each (tiny budget)")
left.legend()
right.set_xlabel("frames")
right.set_ylabel("‖∇η‖ per update")
right.set_title("η's meta-gradient: zero when λ = 0")
right.legend()
fig.tight_layout()
plt.show()

for variant in colours:
    largest = max(row["grad_norm_intrinsic"] for seed in range(3)
                  for row in read_metrics(run_dir / f"{variant}_seed{seed}" / "metrics.csv"))
    print(f"{variant}: largest ‖∇η‖ over every update of its 3 members: {largest:.3g}")

# %%
# From here, a real comparison is the same command with the default budget (``experiment.total_frames``
# 120,000 on Pursuit) and more seeds, then the package's scripts over the member directories:
# ``scripts/plot_curves.py`` for the curves with mean and spread, ``scripts/evaluate_runs.py`` to play each final
# policy on the same test episodes, and ``scripts/compare_methods.py --a liir --b liir_lambda0`` for a paired test
# across seeds. A population stopped by a signal or a crash resumes with ``resume=<population directory>``.
