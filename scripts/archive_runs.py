"""Copy training runs' records into results/: config, summary, test table, and a thinned, gzipped metrics table.

    python scripts/archive_runs.py runs/<run A> runs/<run B> --out results/smax_3m_3M/runs

Per run (a folder named after the run directory): ``config.yaml``, ``summary.json`` and ``test.csv`` as they
are, and ``metrics.csv.gz``: the first update, every ``--every``-th update and the last 10 (the rows the results
table's training win rate reads), gzipped. Checkpoints stay behind. Refuses to overwrite an archived run.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import shutil
import sys
from pathlib import Path

KEPT = ("config.yaml", "summary.json", "test.csv")


def thinned_rows(rows: list[list[str]], every: int) -> list[list[str]]:
    """The first row, every ``every``-th row and the last 10 (in order, once each)."""
    keep = {0, *range(every - 1, len(rows), every), *range(max(len(rows) - 10, 0), len(rows))}
    return [row for i, row in enumerate(rows) if i in keep]


def archive(run_dir: Path, out: Path, every: int) -> Path:
    target = out / run_dir.name
    if target.exists():
        raise FileExistsError(f"{target} exists; archive into another --out or remove it first")
    for name in (*KEPT, "metrics.csv"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} is missing: is {run_dir} a training run directory?")
    target.mkdir(parents=True)
    for name in KEPT:
        shutil.copy2(run_dir / name, target / name)
    with (run_dir / "metrics.csv").open(newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    with gzip.open(target / "metrics.csv.gz", "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(thinned_rows(rows, every))
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="folder to hold one folder per run")
    parser.add_argument("--every", type=int, default=10, help="keep every N-th metrics row (default 10)")
    args = parser.parse_args(argv)
    if args.every < 1:
        sys.exit(f"error: --every={args.every}: must be >= 1")
    try:
        for run_dir in args.run_dirs:
            print(f"archived {run_dir} -> {archive(run_dir, args.out, args.every)}")
    except (FileExistsError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
