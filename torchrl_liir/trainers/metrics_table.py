"""A run's metrics as CSV tables with headers (one row per update, one per test), mirrored to a TorchRL logger."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from torchrl.record.loggers import Logger

from torchrl_liir.trainers.run_directory import TableMismatch, write_atomically


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("".join(lines).encode()).hexdigest()


class CSVTable:
    """Rows appended to a CSV file with a header; ``truncate(n)`` keeps the first ``n`` rows (a resumed run
    continues from its checkpoint's row, with no duplicate). :meth:`record` is what a checkpoint keeps of it: the
    row count and a SHA-256 of the header and those rows, which :meth:`restore` checks the file against."""

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

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as f:
            return f.readlines()

    def record(self) -> dict:
        return {"rows": self.rows, "sha256": _digest(self._lines()[:self.rows + 1] if self.rows else [])}

    def restore(self, record: dict | int) -> None:
        """Cuts the table back to the rows a checkpoint recorded, after checking they are the rows it saw;
        :class:`TableMismatch` when the file was cut short, deleted or edited since. (An ``int`` record: a
        checkpoint written before the digest, checked by its row count alone.)"""
        rows = record if isinstance(record, int) else int(record["rows"])
        lines = self._lines()
        kept = lines[:rows + 1] if rows else []
        if rows and len(lines) < rows + 1:
            found = max(len(lines) - 1, 0) if self.path.exists() else "no file"
            raise TableMismatch(f"{self.path}: {found} rows where the checkpoint recorded {rows} (cut short or "
                                "deleted); put the table back, or start a new run")
        if not isinstance(record, int) and _digest(kept) != record["sha256"]:
            raise TableMismatch(f"{self.path}: its first {rows} rows differ from those the checkpoint recorded "
                                "(edited); put the table back, or start a new run")
        self.truncate(rows, lines)

    def truncate(self, rows: int, lines: list[str] | None = None) -> None:
        self.rows = rows
        if not self.path.exists():
            return
        lines = self._lines() if lines is None else lines
        self.columns = next(csv.reader(lines[:1]), None)
        write_atomically(self.path, "".join(lines[:rows + 1] if rows else []))


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
        return {name: table.record() for name, table in self.tables.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, table in self.tables.items():
            table.restore(state_dict[name])
