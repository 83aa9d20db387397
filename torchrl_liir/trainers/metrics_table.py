"""A run's metrics as CSV tables with headers (one row per update, one per test), mirrored to a TorchRL logger."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from torchrl.record.loggers import Logger


class CSVTable:
    """Rows appended to a CSV file with a header; ``truncate(n)`` keeps the first ``n`` rows (a resumed run
    continues from its checkpoint's row, with no duplicate)."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows, self.columns = path, 0, None

    def append(self, row: dict[str, float | int]) -> None:
        new = not self.path.exists() or self.rows == 0
        if new:
            self.columns = list(row)
        with self.path.open("w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            if new:
                writer.writeheader()
            writer.writerow({key: row.get(key, "") for key in self.columns})
        self.rows += 1

    def truncate(self, rows: int) -> None:
        self.rows = rows
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            lines = f.readlines()
        self.columns = next(csv.reader(lines[:1]), None)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(lines[:rows + 1] if rows else []))
        os.replace(tmp, self.path)


class MetricsTables:
    """``metrics.csv`` (every update) and ``test.csv`` (every evaluation) in the run directory; each row's
    scalars also go to ``logger`` (TensorBoard, wandb) at the row's frame count."""

    def __init__(self, run_dir: Path, logger: Logger | None = None) -> None:
        self.tables = {"metrics": CSVTable(run_dir / "metrics.csv"), "test": CSVTable(run_dir / "test.csv")}
        self.logger = logger

    def write(self, table: str, row: dict[str, float | int]) -> None:
        self.tables[table].append(row)
        if self.logger is not None:
            for name, value in row.items():
                if name != "frames":
                    self.logger.log_scalar(name, value, step=int(row["frames"]))

    def state_dict(self) -> dict:
        return {name: table.rows for name, table in self.tables.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, table in self.tables.items():
            table.truncate(int(state_dict[name]))
