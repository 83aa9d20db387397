"""Reading a run directory's metrics back, for plots and tables: ``metrics.csv`` and ``test.csv``, or the
``metrics/scalars/<name>.csv`` files (rows ``step,value``) of runs written before those tables."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read_metric(run_dir: str | Path, name: str) -> np.ndarray:
    """``[n, 2]`` array of (frames, value) of one metric: ``test_*`` from ``test.csv``, the others from
    ``metrics.csv`` (empty cells skipped); an older run's ``metrics/scalars/<name>.csv`` where those are absent."""
    run_dir = Path(run_dir)
    table = run_dir / ("test.csv" if name.startswith("test_") else "metrics.csv")
    legacy = run_dir / "metrics" / "scalars"
    if table.exists():
        path = table
        with table.open(newline="") as f:
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
