"""The project's speed in one command: end to end, update cost, collection rate, thread sensitivity.

    python scripts/benchmark.py --out runs/benchmark.md                # everything, 20-30 min on 2 CPU cores
    python scripts/benchmark.py --sections update collection --out runs/benchmark.md
    python scripts/benchmark.py --jaxmarl-cmd "bash run_jaxmarl_mappo.sh" --out runs/benchmark.md
    python scripts/benchmark.py --device cuda --out runs/benchmark_cuda.md

Sections (``--sections``):

- ``steady``: the steady training rate (frames between a run's first and last update) of LIIR with the fused
  rollout and step by step, and of MAPPO, on SMAX 3m at the paper's settings, each process pinned to one core;
  given ``--jaxmarl-baseline``, JaxMARL's own MAPPO SMAX baseline at steady state beside them
  (``jaxmarl_steady.py``).
- ``e2e``: ``scripts/train.py`` on SMAX 3m (``--e2e-map``) at the paper's settings (GRU-64, 32 battles) for
  LIIR, MAPPO and QMIX (its two replays), process start to exit, next to the fused-JAX ceiling (SMAX and a
  small policy in one jitted ``lax.scan``, ``benchmark_ceiling.py``) and, given ``--jaxmarl-cmd``, a command
  that runs JaxMARL's own MAPPO SMAX baseline at the same settings; also the first-batch latency with JAX's
  compilation cache cold, warm and off.
- ``update``: one update of LIIR (fast and reference meta-gradient), IAC and MAPPO on the same batch, with
  LIIR's peak memory (``benchmark_update.py``).
- ``collection``: the ``EpisodeCollector``'s rate against the number of battles, next to TorchRL's
  fixed-frame ``Collector`` it replaced and the fused-JAX ceiling.
- ``population``: several members' fused SMAX batches from one program call (``FusedSMAXPopulation``) against
  the members' collectors one after another.
- ``populations``: 10 seeds of LIIR (and of QMIX) on SMAX 3m trained as one population in one process
  (``seeds=10``), as two populations of 5 side by side, and as 10 solo runs two at a time, each process pinned
  to a core with one torch thread; wall time process start to exit, and the population's peak memory.
- ``threads``: a short training run alone and with a second one beside it, one torch thread or the default.
- ``startup``: ``import torchrl_liir``, the first import of ``LIIRLoss`` and a command line refused by its checks
  (``algo.lambda_in=-1``), process start to exit.

Timings are medians after warm-up, the device synchronised; the output records device, versions, load
average, sizes, date and commit. Each section is written between ``<!-- benchmark:NAME -->`` markers
of ``--out``, so the prose around them in an existing file is kept.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("steady", "e2e", "update", "collection", "population", "populations", "threads", "startup")
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def header(device: torch.device) -> str:
    from torchrl_liir.trainers.trainer import describe_machine

    machine = describe_machine(device)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return (f"{datetime.now(timezone.utc).isoformat(timespec='minutes')}, commit {commit()}, "
            f"{machine['device']}, {versions}, torch threads {torch.get_num_threads()}")


def timed_run(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of a command, process start to exit; its output is kept only if it fails."""
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds


def train_command(run_dir: Path, *overrides: str) -> list[str]:
    return [*TRAIN, "experiment.progress_bar=false", f"hydra.run.dir={run_dir}", *overrides]


# --- end to end ---------------------------------------------------------------------------------------------

FIRST_BATCH = """
import sys, time
start = time.perf_counter()
import torch
from torchrl.envs import Compose, InitTracker, TransformedEnv
from torchrl_liir import SMAXEnv, make_gru_policy, policy_primer
from torchrl_liir.collectors import make_episode_collector
from torchrl_liir.runtime import configure_runtime
configure_runtime(1, None if sys.argv[1] == "off" else sys.argv[1])
env = SMAXEnv("3m", 32, reward_scale=10.0, device=sys.argv[2])
policy = make_gru_policy(env.n_agents, env.obs_dim, env.n_actions, device=sys.argv[2],
                         action_mask_key=("agents", "action_mask"))
collector, _ = make_episode_collector(TransformedEnv(env, Compose(InitTracker(), policy_primer(policy))), policy)
built = time.perf_counter()
collector.rollout()
print(built - start, time.perf_counter() - built)
"""


def first_batch_latency(device: torch.device) -> list[dict]:
    """Seconds from process start to the first batch of 32 SMAX 3m battles (the trainer's collector: the fused
    rollout): JAX's cache cold, warm, off."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name, where in (("cold (empty cache)", cache), ("warm (cache filled)", cache), ("off", "off")):
            out = subprocess.run([sys.executable, "-c", FIRST_BATCH, where, str(device)], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            setup, batch = (float(x) for x in out.stdout.split()[-2:])
            rows.append({"cache": name, "setup_s": setup, "first_batch_s": batch})
    return rows


# Each method's overrides: QMIX with pymarl's replay of whole episodes (the default) and of a fixed number of
# transitions (the runs before the default changed).
E2E_METHODS = {"liir": ["algo=liir"], "mappo": ["algo=mappo"], "qmix": ["algo=qmix"],
               "qmix, `algo.replay=transitions`": ["algo=qmix", "algo.replay=transitions"]}


def end_to_end(device: torch.device, map_name: str, frames: int, repeats: int, jaxmarl_cmd: str | None) -> str:
    from benchmark_ceiling import fused_jax_ceiling

    from torchrl_liir.envs.smac_maps import default_episode_limit

    algos = tuple(E2E_METHODS)
    seconds: dict[str, list[float]] = {name: [] for name in (*algos, *(["jaxmarl"] if jaxmarl_cmd else []))}
    frames_done: dict[str, int] = {}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        # A first LIIR run fills JAX's compilation cache, as any earlier run on the machine would have.
        timed_run(train_command(Path(tmp) / "fill", "task=smax", f"task.map={map_name}", "experiment.total_frames=2000",
                                f"experiment.device={device}"))
        for i in range(repeats):  # interleaved, so a change in machine load touches every method alike
            for name in seconds:
                loads.append(os.getloadavg()[0])
                if name == "jaxmarl":
                    seconds[name].append(timed_run(["bash", "-c", jaxmarl_cmd]))
                    continue
                run_dir = Path(tmp) / f"{algos.index(name)}_{i}"
                seconds[name].append(timed_run(train_command(
                    run_dir, "task=smax", f"task.map={map_name}", *E2E_METHODS[name],
                    f"experiment.total_frames={frames}", "seed=0", f"experiment.device={device}")))
                frames_done[name] = json.loads((run_dir / "summary.json").read_text())["frames"]
    limit = default_episode_limit(map_name)
    ceilings = {p: fused_jax_ceiling(map_name, 32, limit, p) for p in ("mlp", "gru")}
    median = {k: statistics.median(v) for k, v in seconds.items()}
    lines = [
        f"SMAX {map_name}, 32 battles, GRU-64 agents, `experiment.total_frames={frames}` (frames of played episodes), "
        f"seed 0, `device={device}`, process start to exit, median of {repeats} interleaved runs (load average "
        f"{min(loads):.2f}–{max(loads):.2f} at their starts); JAX's compilation cache warm.",
        "",
        "| method | wall (s) | frames | frames/s | vs JaxMARL MAPPO |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in algos:
        ratio = f"{median['jaxmarl'] / median[name]:.2f}×" if "jaxmarl" in median else "—"
        lines.append(f"| {name} | {median[name]:.1f} | {frames_done[name]:,} | {frames_done[name] / median[name]:,.0f} "
                     f"| {ratio} |")
    if "jaxmarl" in median:
        lines.append(f"| JaxMARL MAPPO (`--jaxmarl-cmd`) | {median['jaxmarl']:.1f} | {frames:,} | "
                     f"{frames / median['jaxmarl']:,.0f} | 1.00× |")
    lines += ["", "Fused-JAX ceiling (collection only: SMAX and a plain-JAX policy in one jitted `lax.scan`, "
              f"{limit} steps × 32 battles per call):", "",
              "| policy | battle-steps/s | compile (s) |", "|---|---:|---:|"]
    lines += [f"| {p} | {c['battle_steps_per_s']:,.0f} | {c['compile_s']:.1f} |" for p, c in ceilings.items()]
    lines += ["", "First batch (process start → 32 SMAX 3m battles built → first batch collected by the fused rollout, "
              "GRU policy):", "",
              "| JAX compilation cache | imports and set-up (s) | first batch (s) |", "|---|---:|---:|"]
    lines += [f"| {r['cache']} | {r['setup_s']:.1f} | {r['first_batch_s']:.2f} |" for r in first_batch_latency(device)]
    return "\n".join(lines)


# --- steady training rate ------------------------------------------------------------------------------------

STEADY_METHODS = {"LIIR, fused rollout": ["algo=liir"],
                  "LIIR, step by step": ["algo=liir", "experiment.fused_rollout=false"],
                  "MAPPO, fused rollout": ["algo=mappo"]}


def steady_rate(run_dir: Path) -> tuple[float, int]:
    """Frames per second between a run's first and last update (``metrics.csv``), and those frames."""
    with (run_dir / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    frames = int(rows[-1]["frames"]) - int(rows[0]["frames"])
    return frames / (float(rows[-1]["wall_seconds"]) - float(rows[0]["wall_seconds"])), frames


def steady(device: torch.device, map_name: str, frames: int, repeats: int, baseline: Path | None,
           baseline_steps: int) -> str:
    """LIIR (fused and step by step) and MAPPO at steady state, each pinned to one core, beside JaxMARL's MAPPO
    (``jaxmarl_steady.py``: its compiled program's second call), interleaved."""
    pinned = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    names = [*STEADY_METHODS, *(["JaxMARL MAPPO"] if baseline else [])]
    rates: dict[str, list[float]] = {name: [] for name in names}
    loads, jaxmarl = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        timed_run(train_command(Path(tmp) / "fill", "task=smax", f"task.map={map_name}",
                                "experiment.total_frames=2000", f"experiment.device={device}"))  # JAX's cache
        for i in range(repeats):
            for name in names:
                loads.append(os.getloadavg()[0])
                if name == "JaxMARL MAPPO":
                    out = subprocess.run([*pinned, sys.executable, str(ROOT / "scripts" / "jaxmarl_steady.py"),
                                          "--baseline", str(baseline), "--map", map_name,
                                          "--timesteps", str(baseline_steps)],
                                         cwd=ROOT, capture_output=True, text=True, check=True)
                    jaxmarl = json.loads(out.stdout.strip().splitlines()[-1])
                    rates[name].append(jaxmarl["steady_env_steps_per_s"])
                    continue
                run_dir = Path(tmp) / f"{names.index(name)}_{i}"
                timed_run([*pinned, *train_command(run_dir, "task=smax", f"task.map={map_name}",
                                                   *STEADY_METHODS[name], f"experiment.total_frames={frames}",
                                                   "seed=0", f"experiment.device={device}")])
                rates[name].append(steady_rate(run_dir)[0])
    median = {k: statistics.median(v) for k, v in rates.items()}
    lines = [
        f"SMAX {map_name}, 32 battles, GRU-64 agents, the paper's settings, `experiment.total_frames={frames}`, "
        f"seed 0, `experiment.device={device}`; frames per second between a run's first and last update "
        f"(`metrics.csv`: frames and wall seconds; its greedy tests every 320 episodes included), each process "
        f"pinned to one core (`taskset -c 0`), median of {repeats} interleaved rounds (load average "
        f"{min(loads):.2f}–{max(loads):.2f} at their starts).",
    ]
    if jaxmarl:
        lines.append(
            f"JaxMARL MAPPO: `scripts/jaxmarl_steady.py` on JaxMARL's `baselines/MAPPO/mappo_rnn_smax.py` "
            f"({jaxmarl['envs']} envs × {jaxmarl['steps']} steps, GRU and FC {jaxmarl['gru']}, "
            f"{jaxmarl['epochs']} epochs × {jaxmarl['minibatches']} minibatches, {jaxmarl['env_steps']:,} env "
            f"steps), the compiled program's second call (the first, compiling, took {jaxmarl['first_call_s']} s); "
            "no test episodes.")
    lines += ["", "| method | steady frames/s | rounds | vs JaxMARL MAPPO |", "|---|---:|---|---:|"]
    for name in names:
        ratio = f"{median[name] / median['JaxMARL MAPPO']:.2f}×" if baseline else "—"
        lines.append(f"| {name} | {median[name]:,.0f} | {', '.join(f'{r:,.0f}' for r in rates[name])} | {ratio} |")
    return "\n".join(lines)


# --- update cost --------------------------------------------------------------------------------------------

def update_cost(device: torch.device, repeats: int) -> str:
    from benchmark_update import update_cost_rows

    load = load_average()
    rows = update_cost_rows(str(device), repeats)
    lines = [
        f"One update (loss forward, backward of all terms, policy clip 10, optimiser steps) on one random batch, "
        f"median of {repeats} interleaved rounds after warm-up; load average {load}. Peak memory: "
        "the process's peak resident memory above its level before the update (CPU), or "
        "`torch.cuda.max_memory_allocated` (GPU), measured in a separate process per configuration.",
        "",
        "| batch | episodes×steps×agents | policy | LIIR fast (s) | LIIR reference (s) | IAC (s) | MAPPO (s) "
        "| LIIR / IAC | fast / reference | peak MiB fast | peak MiB reference |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['size']} | {r['shape']} | {r['policy']} | {r['liir_fast_s']:.4f} | {r['liir_reference_s']:.4f} "
              f"| {r['iac_s']:.4f} | {r['mappo_s']:.4f} | {r['liir_over_iac']:.2f}× | {r['fast_over_reference']:.2f} "
              f"| {r['liir_fast_peak_mib']:.0f} | {r['liir_reference_peak_mib']:.0f} |" for r in rows]
    return "\n".join(lines)


# --- collection ---------------------------------------------------------------------------------------------

COLLECTORS = {"fixed": "TorchRL `Collector`, fixed frames (before)", "episode": "`EpisodeCollector`",
              "fused": "`FusedSMAXCollector`"}


def smax_3m_with_gru_policy(device: torch.device, battles: int, seed: int = 0):
    """``battles`` SMAX 3m battles as the trainer transforms them, and a GRU-64 policy seeded with ``seed``."""
    from torchrl.envs import Compose, InitTracker, TransformedEnv

    from torchrl_liir import SMAXEnv, make_gru_policy, policy_primer

    torch.manual_seed(seed)
    base = SMAXEnv("3m", battles, seed=seed, reward_scale=10.0, device=device)
    policy = make_gru_policy(base.n_agents, base.obs_dim, base.n_actions, device=device,
                             action_mask_key=("agents", "action_mask"))
    return TransformedEnv(base, Compose(InitTracker(), policy_primer(policy))), policy


def collection_rate(device: torch.device, battles: int, batches: int, kind: str = "episode") -> dict:
    """Steady rate of collecting batches of whole SMAX 3m episodes with the paper's GRU-64 policy (``kind``: a key
    of :data:`COLLECTORS`)."""
    from torchrl.collectors import Collector

    from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector, FusedSMAXCollector, one_episode_per_env

    env, policy = smax_3m_with_gru_policy(device, battles)
    base = env.base_env
    fixed_frames = kind == "fixed"
    if fixed_frames:
        collector = Collector(env, policy, frames_per_batch=battles * base.episode_limit, total_frames=-1,
                              reset_at_each_iter=True)
    else:
        collector = (FusedSMAXCollector if kind == "fused" else EpisodeCollector)(env, policy)
    batches_iter = iter(collector)
    for _ in range(2):
        next(batches_iter)
    kept = stepped = 0
    _sync(device)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(batches_iter)
        stepped += batch.shape[-1] * battles
        if fixed_frames:
            batch = one_episode_per_env(batch)
        kept += int(batch.get(PADDING_MASK).sum())
    _sync(device)
    seconds = time.perf_counter() - start
    collector.shutdown()
    return {"battles": battles, "kept_per_s": kept / seconds, "stepped_per_s": stepped / seconds,
            "kept_fraction": kept / stepped, "ms_per_step": 1000 * seconds / (stepped / battles)}


def collection(device: torch.device, battle_counts: list[int]) -> str:
    from benchmark_ceiling import fused_jax_ceiling

    load = load_average()
    old = collection_rate(device, 32, 5, "fixed")
    lines = [
        f"SMAX 3m, the paper's GRU-64 policy (sampling), one episode per battle and batch; kept = steps of "
        f"played episodes, stepped = battle-steps simulated; 5–10 batches after 2 warm-up ones (the fused "
        f"collector: 20–40); load average {load}. Ceiling: SMAX and a GRU-64 policy in one jitted `lax.scan` "
        "(auto-reset, every step kept).",
        "",
        "| battles | collector | kept steps/s | stepped/s | kept / stepped | ms per step | ceiling steps/s "
        "| kept / ceiling |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    ceiling32 = fused_jax_ceiling("3m", 32, 60, "gru")["battle_steps_per_s"]
    lines.append(f"| 32 | TorchRL `Collector`, fixed frames (before) | {old['kept_per_s']:,.0f} | "
                 f"{old['stepped_per_s']:,.0f} | {old['kept_fraction']:.2f} | {old['ms_per_step']:.2f} | "
                 f"{ceiling32:,.0f} | {old['kept_per_s'] / ceiling32:.2f} |")
    for battles in battle_counts:
        ceiling = ceiling32 if battles == 32 else fused_jax_ceiling("3m", battles, 60, "gru")["battle_steps_per_s"]
        for kind in ("episode", "fused"):
            batches = (10 if battles <= 256 else 5) * (4 if kind == "fused" else 1)
            new = collection_rate(device, battles, batches, kind)
            lines.append(f"| {battles} | {COLLECTORS[kind]} | {new['kept_per_s']:,.0f} | "
                         f"{new['stepped_per_s']:,.0f} | {new['kept_fraction']:.2f} | {new['ms_per_step']:.2f} | "
                         f"{ceiling:,.0f} | {new['kept_per_s'] / ceiling:.2f} |")
    return "\n".join(lines)


def population_collection(device: torch.device, member_counts: list[int], batches: int = 10) -> str:
    """Kept steps per second of ``M`` members' SMAX 3m batches (32 battles, GRU-64 policies of their own) from
    one fused program call (``FusedSMAXPopulation``) against the members' collectors one after another."""
    from torchrl_liir.collectors import PADDING_MASK, FusedSMAXCollector, FusedSMAXPopulation

    def member(seed: int) -> FusedSMAXCollector:
        return FusedSMAXCollector(*smax_3m_with_gru_policy(device, 32, seed))

    def rate(collect) -> float:
        for _ in range(2):
            collect()
        _sync(device)
        start, kept = time.perf_counter(), 0
        for _ in range(batches):
            kept += sum(int(batch.get(PADDING_MASK).sum()) for batch in collect())
        _sync(device)
        return kept / (time.perf_counter() - start)

    load = load_average()
    lines = [f"SMAX 3m, 32 battles and a GRU-64 policy per member, each member its own seed and weights; kept steps "
             f"per second over {batches} batches after 2 warm-up ones; load average {load}.", "",
             "| members | one by one (kept steps/s) | one program (kept steps/s) | together / one by one |",
             "|---:|---:|---:|---:|"]
    for m in member_counts:
        alone = [member(s) for s in range(m)]
        population = FusedSMAXPopulation([member(s) for s in range(m)])
        one_by_one = rate(lambda: [c.rollout() for c in alone])
        together = rate(population.rollout)
        lines.append(f"| {m} | {one_by_one:,.0f} | {together:,.0f} | {together / one_by_one:.2f}× |")
    return "\n".join(lines)


# --- populations --------------------------------------------------------------------------------------------

def run_pinned(commands: list[list[str]], cores: int) -> tuple[float, int]:
    """Wall seconds to run ``commands`` at most ``cores`` at a time, each pinned to a core of its own, and the
    largest peak resident set size of one of them (bytes, from ``wait4``)."""
    start, running, peak, waiting = time.perf_counter(), {}, 0, list(commands)
    with tempfile.TemporaryDirectory() as logs:
        while waiting or running:
            while waiting and len(running) < cores:
                core = min(set(range(cores)) - set(running.values()))
                log = open(Path(logs) / f"{len(waiting)}.log", "w")
                process = subprocess.Popen(["taskset", "-c", str(core), *waiting.pop(0)], cwd=ROOT, stdout=log,
                                           stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
                running[(process.pid, log)] = core
            pid, status, usage = os.wait4(-1, 0)
            (key,) = [k for k in running if k[0] == pid]
            running.pop(key)
            key[1].close()
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"a run failed:\n{Path(key[1].name).read_text()[-3000:]}")
            peak = max(peak, usage.ru_maxrss * 1024)
    return time.perf_counter() - start, peak


def populations(frames: dict[str, int], seeds: int = 10) -> str:
    """Wall time of ``seeds`` runs of each algorithm on SMAX 3m (paper settings): solo two at a time, one
    population, two populations side by side; the 2-core machine's answer to "one process or many"."""
    load = load_average()
    lines = [f"SMAX 3m, the paper's settings (GRU-64, 32 battles), {seeds} seeds per algorithm; process start to exit, "
             "each process pinned to one core with one torch thread; peak memory from the kernel's accounting of "
             f"the process (`wait4`); load average {load} before.", "",
             "| algorithm | frames per run | 10 solo runs, 2 at a time | one population of 10 (1 core) | "
             "two populations of 5 side by side | best population / solo | peak memory, population of 10 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for algo, budget in frames.items():
            common = ["task=smax", "task.map=3m", f"algo={algo}", f"experiment.total_frames={budget}"]
            solo = [train_command(Path(tmp) / f"{algo}_solo_{s}", *common, f"seed={s}") for s in range(seeds)]
            one = [train_command(Path(tmp) / f"{algo}_one", *common, f"seeds={seeds}")]
            half = seeds // 2
            two = [train_command(Path(tmp) / f"{algo}_two_{i}", *common, f"seed={i * half}", f"seeds={half}")
                   for i in range(2)]
            solo_s, _ = run_pinned(solo, 2)
            one_s, peak = run_pinned(one, 1)
            two_s, _ = run_pinned(two, 2)
            best = min(one_s, two_s)
            lines.append(f"| {algo} | {budget:,} | {solo_s:.0f} s | {one_s:.0f} s | {two_s:.0f} s | "
                         f"{solo_s / best:.2f}× faster | {peak / 2**30:.2f} GiB |")
    return "\n".join(lines)


# --- threads ------------------------------------------------------------------------------------------------

def thread_sensitivity(frames: int) -> str:
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, cores):
            overrides = [f"experiment.threads={threads}", f"experiment.total_frames={frames}",
                         "experiment.study_episodes=100"]
            lone = timed_run(train_command(Path(tmp) / f"lone{threads}", *overrides))
            procs, start = [], time.perf_counter()
            for k in range(2):
                command = train_command(Path(tmp) / f"pair{threads}_{k}", *overrides)
                procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            walls = []
            for proc in procs:
                _, err = proc.communicate()  # drains stderr: a full pipe would block the run
                if proc.returncode != 0:
                    raise RuntimeError(err.decode()[-2000:])
                walls.append(time.perf_counter() - start)
            rows.append((threads, lone, max(walls)))
    lines = [
        f"`scripts/train.py` (pursuit, LIIR, `experiment.total_frames={frames}`, `experiment.study_episodes=100`), "
        f"alone and as two runs started together on this machine's {cores} cores; wall seconds, process start to exit.",
        "",
        "| torch threads per run | alone (s) | two together (s, the slower) | slow-down |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {t} | {lone:.1f} | {pair:.1f} | {pair / lone:.2f}× |" for t, lone, pair in rows]
    return "\n".join(lines)


# --- start-up -----------------------------------------------------------------------------------------------

def startup(repeats: int) -> str:
    """Process start to exit of an import, a first use and a refused command line, in a directory of its own."""
    cases = {
        "`python -c \"import torchrl_liir\"`": [sys.executable, "-c", "import torchrl_liir"],
        "`python -c \"from torchrl_liir import LIIRLoss\"` (imports torch and TorchRL)":
            [sys.executable, "-c", "from torchrl_liir import LIIRLoss"],
        "`scripts/train.py algo.lambda_in=-1` (one error line, exit 2)": [*TRAIN, "algo.lambda_in=-1"],
    }
    seconds = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):  # interleaved, so a change of load falls on every case alike
            for name, command in cases.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=tmp, capture_output=True)
                seconds[name].append(time.perf_counter() - start)
    lines = [f"Wall seconds, process start to exit, {repeats} interleaved repeats; load average before: "
             f"{load_average()}.", "", "| command | best (s) | median (s) |", "|---|---:|---:|"]
    lines += [f"| {name} | {min(v):.2f} | {statistics.median(v):.2f} |" for name, v in seconds.items()]
    return "\n".join(lines)


# --- output -------------------------------------------------------------------------------------------------

def write_sections(path: Path, sections: dict[str, str], head: str) -> None:
    """Replaces each ``<!-- benchmark:NAME -->`` … ``<!-- /benchmark:NAME -->`` block (appends missing ones)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    for name, body in sections.items():
        block = f"<!-- benchmark:{name} -->\n_{head}_\n\n{body}\n<!-- /benchmark:{name} -->"
        pattern = re.compile(rf"<!-- benchmark:{name} -->.*?<!-- /benchmark:{name} -->", re.DOTALL)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text.rstrip()}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark.md"),
                        help="Markdown file whose benchmark sections are (re)written (default: runs/benchmark.md)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    parser.add_argument("--repeats", type=int, default=10, help="update-cost rounds")
    parser.add_argument("--e2e-frames", type=int, default=50_000)
    parser.add_argument("--e2e-repeats", type=int, default=2)
    parser.add_argument("--e2e-map", default="3m",
                        help="SMAX map of the e2e section; another than 3m writes the section e2e_MAP")
    parser.add_argument("--jaxmarl-cmd", default=None,
                        help="shell command running JaxMARL's MAPPO SMAX baseline at the same settings (timed)")
    parser.add_argument("--jaxmarl-baseline", type=Path, default=None,
                        help="JaxMARL's baselines/MAPPO/mappo_rnn_smax.py: the steady section measures it beside ours")
    parser.add_argument("--jaxmarl-steps", type=int, default=96_000, help="its env steps (steady section)")
    parser.add_argument("--steady-frames", type=int, default=150_000)
    parser.add_argument("--steady-repeats", type=int, default=3)
    parser.add_argument("--battles", type=int, nargs="+", default=[32, 256, 1024, 4096])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 10], help="population section")
    parser.add_argument("--population-frames", type=int, default=200_000, help="populations section: LIIR")
    parser.add_argument("--population-qmix-frames", type=int, default=20_000, help="populations section: QMIX")
    parser.add_argument("--thread-frames", type=int, default=30_000)
    parser.add_argument("--startup-repeats", type=int, default=5)
    args = parser.parse_args()

    from torchrl_liir.runtime import configure_runtime

    configure_runtime(args.threads)
    device = torch.device(args.device)
    head = header(device)
    print(head)
    for name in args.sections:
        start = time.perf_counter()
        if name == "steady":
            body = steady(device, args.e2e_map, args.steady_frames, args.steady_repeats, args.jaxmarl_baseline,
                          args.jaxmarl_steps)
        elif name == "e2e":
            body = end_to_end(device, args.e2e_map, args.e2e_frames, args.e2e_repeats, args.jaxmarl_cmd)
            name = "e2e" if args.e2e_map == "3m" else f"e2e_{args.e2e_map}"
        elif name == "update":
            body = update_cost(device, args.repeats)
        elif name == "collection":
            body = collection(device, args.battles)
        elif name == "population":
            body = population_collection(device, args.members)
        elif name == "populations":
            body = populations({"liir": args.population_frames, "qmix": args.population_qmix_frames})
        elif name == "startup":
            body = startup(args.startup_repeats)
        else:
            body = thread_sensitivity(args.thread_frames)
        print(f"\n## {name} ({time.perf_counter() - start:.0f} s)\n\n{body}", flush=True)
        write_sections(args.out, {name: body}, head)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
