"""The log of a training run: lines to ``log.txt`` (and a callback), one row per epoch to ``log.csv``."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path


class RunLog:
    """Lines to ``log.txt`` (and a callback), epochs to ``log.csv``; silent where ``enabled`` is false
    (the ranks other than the first of a data-parallel run)."""

    FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse_percent", "dt_train", "dt_val", "lr"]

    def __init__(self, folder: Path, echo: Callable[[str], None] | None, enabled: bool, append: bool):
        self.folder, self.echo, self.enabled = folder, echo, enabled
        if enabled:
            mode = "a" if append else "w"
            self.text = open(folder / "log.txt", mode)
            new_csv = not append or not (folder / "log.csv").exists()
            self.csv_file = open(folder / "log.csv", mode if not new_csv else "w", newline="")
            self.csv = csv.writer(self.csv_file)
            if new_csv:
                self.csv.writerow(self.FIELDS)

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        self.text.write(text + "\n")
        self.text.flush()
        if self.echo:
            self.echo(text)

    def epoch(self, values: dict[str, float]) -> None:
        self.line(" ".join(f"{k} {values[k]:.6g}" if k != "epoch" else f"epoch {values[k]}" for k in self.FIELDS))
        if self.enabled:
            self.csv.writerow([values[k] for k in self.FIELDS])
            self.csv_file.flush()

    def close(self) -> None:
        if self.enabled:
            self.text.close()
            self.csv_file.close()
