"""JaxMARL's own MAPPO SMAX baseline at steady state: its compiled training program timed on a second call.

    python scripts/jaxmarl_steady.py --baseline path/to/JaxMARL/baselines/MAPPO/mappo_rnn_smax.py
    python scripts/jaxmarl_steady.py --baseline ... --map 3m --envs 32 --steps 60 --timesteps 96000
    python scripts/jaxmarl_steady.py --baseline ... --timesteps 50000 --once   # end to end: one call, compiling

The baseline file (JaxMARL's repository, not part of this project; it needs ``distrax``) is imported as a
module and its ``make_train(config)`` jitted, with its own defaults
(``baselines/MAPPO/config/mappo_homogenous_rnn_smax.yaml`` beside it) and the sizes given here. The first call
compiles and runs; the second, timed, runs the same program again: env steps (summed over envs) per second
with compilation excluded, the number to set beside a training run's frames between its first and last update.
Its two hard-coded GRU carry widths (128) follow ``--gru`` instead, through its ``ScannedRNN.initialize_carry``
(it fails with another width otherwise). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path


def load_baseline(path: Path):
    spec = importlib.util.spec_from_file_location("jaxmarl_mappo_rnn_smax", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="JaxMARL's baselines/MAPPO/mappo_rnn_smax.py")
    parser.add_argument("--map", default="3m")
    parser.add_argument("--envs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60, help="NUM_STEPS: steps per env between updates")
    parser.add_argument("--gru", type=int, default=64, help="FC_DIM_SIZE and GRU_HIDDEN_DIM")
    parser.add_argument("--timesteps", type=int, default=96_000, help="TOTAL_TIMESTEPS, summed over envs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--once", action="store_true", help="one call only (compilation included): an end-to-end run")
    args = parser.parse_args(argv)

    os.environ.setdefault("WANDB_MODE", "disabled")
    import jax
    import wandb
    import yaml

    baseline = load_baseline(args.baseline)
    config_file = args.baseline.parent / "config" / "mappo_homogenous_rnn_smax.yaml"
    config = yaml.safe_load(config_file.read_text())
    config.update(MAP_NAME=args.map, NUM_ENVS=args.envs, NUM_STEPS=args.steps, FC_DIM_SIZE=args.gru,
                  GRU_HIDDEN_DIM=args.gru, TOTAL_TIMESTEPS=args.timesteps, SEED=args.seed)
    initialize_carry = baseline.ScannedRNN.initialize_carry
    baseline.ScannedRNN.initialize_carry = staticmethod(lambda batch, _width: initialize_carry(batch, args.gru))
    wandb.init(mode="disabled")  # the program logs through wandb.log in a callback

    train = jax.jit(baseline.make_train(config))
    start = time.perf_counter()
    jax.block_until_ready(train(jax.random.PRNGKey(args.seed)))
    first = time.perf_counter() - start
    if args.once:
        print(json.dumps({"map": args.map, "first_call_s": round(first, 2)}))
        return
    start = time.perf_counter()
    jax.block_until_ready(train(jax.random.PRNGKey(args.seed + 1)))
    steady = time.perf_counter() - start
    steps = config["NUM_UPDATES"] * config["NUM_STEPS"] * config["NUM_ENVS"]
    print(json.dumps({"map": args.map, "envs": args.envs, "steps": args.steps, "gru": args.gru,
                      "epochs": config["UPDATE_EPOCHS"], "minibatches": config["NUM_MINIBATCHES"],
                      "env_steps": steps, "first_call_s": round(first, 2), "steady_s": round(steady, 2),
                      "steady_env_steps_per_s": round(steps / steady)}))


if __name__ == "__main__":
    main()
