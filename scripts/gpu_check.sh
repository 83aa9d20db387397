#!/bin/bash
# The GPU checks in one command, at most about 8.5 minutes on one H100: the CUDA tests (2 min), the benchmarks on the
# device (steady training rate, collection up to 4096 battles, update cost; 4 min), LIIR on SMAX 3m for
# 75 s: the frames to its first greedy test win rate of 0.9, if it gets there (on the 2-core CPU, 2026-12-05:
# 588k frames, about 72 s); then a population of 10 LIIR seeds on SMAX 3m (collected together in one program)
# against one seed alone, 20k frames each (at most 60 s; at 40k frames that CPU took 66 s, 8.7x one seed).
# Seven files go to $OUT (default runs/gpu).
#
#   bash scripts/gpu_check.sh                  # on a machine with a GPU, torch and a CUDA jax installed
#
# On a machine without network, the wheels the project needs beyond what such an image holds (torch, jax, flax,
# chex, optax, matplotlib, tqdm, ...) may wait in .whl/, fetched beforehand for its Python (3.12 here):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     torchrl==0.14.1 tensordict==0.14.3 jaxmarl==0.2.0 gymnax hoptorch pyvers orjson hydra-core==1.3.8 \
#     omegaconf==2.3.1
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3   # hydra's parser: a source release only
# (4.7 MB in all, checked 2026-12-05). They are installed into /tmp/site first, with no dependency resolution;
# tensordict's and torchrl's compiled parts must suit the machine's torch, which the first step shows.
set -uo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
python3 - <<'EOF' 2>&1 | tee "$OUT/device.txt" || exit 1
import jax, torch
assert torch.cuda.is_available(), "no GPU visible to torch"
print(torch.__version__, torch.cuda.get_device_name(0), "| jax", jax.__version__, jax.devices())
EOF
# 1. the tests that need a GPU, then the rest of the suite's fast tests on this machine
timeout 120 python3 -m pytest -q -p no:cacheprovider -n 0 tests/test_cuda.py tests/test_fused_smax.py \
  2>&1 | tee "$OUT/tests.txt"
# 2. the benchmarks on the device
timeout 240 python3 scripts/benchmark.py --device cuda --sections steady collection population update \
  --steady-repeats 1 --battles 32 1024 4096 --members 1 10 --repeats 5 --out "$OUT/benchmark_cuda.md" 2>&1 \
  | tail -40 | tee "$OUT/benchmark.txt"
# 3. LIIR on SMAX 3m against the clock (its run directory outside $OUT: only the summary comes back)
RUN=/tmp/gpu_liir_3m
rm -rf "$RUN"
timeout 75 python3 scripts/train.py task=smax task.map=3m experiment.device=cuda experiment.total_frames=3000000 \
  experiment.progress_bar=false hydra.run.dir="$RUN" > /dev/null 2>&1
python3 - "$RUN" <<'EOF' | tee "$OUT/liir_3m.txt"
import csv, sys
run = sys.argv[1]
tests = list(csv.DictReader(open(f"{run}/test.csv")))
updates = list(csv.DictReader(open(f"{run}/metrics.csv")))
hit = next((r for r in tests if float(r["test_win_rate"]) >= 0.9), None)
print(f"{updates[-1]['frames']} frames in {updates[-1]['wall_seconds']} s; "
      + (f"first greedy test win rate >= 0.9 at {hit['frames']} frames" if hit else
         f"no greedy test reached 0.9 (last {float(tests[-1]['test_win_rate']):.2f})"))
EOF
# 4. a population of 10 seeds against one seed alone, as the seeds' wall time
POP=/tmp/gpu_population
rm -rf "$POP"
for run in "alone seeds=1" "population seeds=10"; do
  set -- $run
  timeout 60 python3 scripts/train.py task=smax task.map=3m experiment.device=cuda experiment.total_frames=20000 \
    experiment.member_rollout=together experiment.progress_bar=false "$2" hydra.run.dir="$POP/$1" > /dev/null 2>&1
done
python3 - "$POP" <<'EOF' | tee "$OUT/population.txt"
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
def seconds(name):
    members = [json.loads(p.read_text()) for p in sorted((root / name).glob("*/summary.json"))]
    unfinished = [m["status"] for m in members if m["status"] != "finished"]
    if unfinished:
        print(f"{name}: {len(unfinished)} of {len(members)} members not finished ({', '.join(unfinished)}): "
              "the times below are partial")
    return len(members), max(m["wall_seconds"] for m in members), sum(m["frames"] for m in members)
(_, alone, _), (n, together, frames) = seconds("alone"), seconds("population")
print(f"one seed: {alone:.1f} s; {n} seeds in one process: {together:.1f} s ({together / alone:.2f}x one seed's "
      f"wall time, {frames / together:,.0f} frames/s in all)")
EOF
