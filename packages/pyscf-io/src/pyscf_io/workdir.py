"""The work directory of a run: inputs, settings, bases, per-structure state, part files.

Layout::

    WORKDIR/manifest.json     run id, output path, input problems
    WORKDIR/settings.yaml     the fully expanded settings
    WORKDIR/structures.json   the selected input structures (geometry, label, source)
    WORKDIR/basis.json        AO and auxiliary basis per element (PySCF format)
    WORKDIR/state/<i>.json    one file per finished structure: done (part file, row) or failed (reason)
    WORKDIR/parts/*.h5        rho-data part files, one per worker process or SLURM task
    WORKDIR/slurm/            job scripts, chunk lists, logs, submitted job ids

State files are written atomically (write, then rename) after the structure is committed
to its part file, so a killed run leaves every finished structure recorded and a rerun
computes only what is missing. Structures are numbered in input order.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from .config import dump_settings, physics
from .context import RunContext
from .errors import PyscfIoError
from .geometry import InputProblem, InputStructure


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


@dataclass
class WorkDir:
    path: Path

    # ---- layout --------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    @property
    def parts_dir(self) -> Path:
        return self.path / "parts"

    @property
    def slurm_dir(self) -> Path:
        return self.path / "slurm"

    def manifest(self) -> dict:
        try:
            return json.loads((self.path / "manifest.json").read_text())
        except FileNotFoundError:
            raise PyscfIoError(f"{self.path}: not a pyscf-io work directory (no manifest.json)") from None

    def settings(self) -> dict:
        return yaml.safe_load((self.path / "settings.yaml").read_text())

    def structures(self) -> list[InputStructure]:
        return [InputStructure.from_json(d) for d in json.loads((self.path / "structures.json").read_text())]

    def context(self) -> RunContext:
        data = json.loads((self.path / "basis.json").read_text())
        return RunContext.from_json(self.settings(), data)

    def problems(self) -> list[InputProblem]:
        return [InputProblem(p["source"], p["message"]) for p in self.manifest().get("problems", [])]

    # ---- creation ------------------------------------------------------------------------
    @classmethod
    def prepare(
        cls,
        path: str | PathLike,
        settings: dict,
        structures: list[InputStructure],
        problems: list[InputProblem],
        output: str | PathLike,
    ) -> WorkDir:
        """Create the work directory, or reopen it when it holds the same run.

        A directory prepared with other structures or other physics settings is refused
        (its results would mix two definitions of the reference data).
        """
        wd = cls(Path(path))
        structures_json = [s.to_json() for s in structures]
        if (wd.path / "manifest.json").exists():
            old_settings = wd.settings()
            if physics(old_settings) != physics(settings):
                changed = sorted(k for k in physics(settings) if physics(old_settings)[k] != settings[k])
                raise PyscfIoError(
                    f"{wd.path}: this work directory holds a run with other settings ({', '.join(changed)}); "
                    "use another --workdir"
                )
            if json.loads((wd.path / "structures.json").read_text()) != structures_json:
                raise PyscfIoError(f"{wd.path}: this work directory holds a run of other structures; use another --workdir")
            manifest = wd.manifest()
            manifest["output"] = str(Path(output).resolve())
            write_json_atomic(wd.path / "manifest.json", manifest)
            dump_settings(settings, wd.path / "settings.yaml")  # execution settings may change
            return wd
        wd.path.mkdir(parents=True, exist_ok=True)
        for d in (wd.state_dir, wd.parts_dir):
            d.mkdir(exist_ok=True)
        run_id = uuid.uuid4().hex
        numbers = {z for s in structures for z in s.numbers}
        ctx = RunContext.build(settings, numbers, run_id) if numbers else RunContext(settings, {}, {}, {}, run_id)
        write_json_atomic(wd.path / "basis.json", ctx.to_json())
        (wd.path / "structures.json").write_text(json.dumps(structures_json))
        dump_settings(settings, wd.path / "settings.yaml")
        manifest = {
            "format": 1,
            "run_id": run_id,
            "output": str(Path(output).resolve()),
            "n_structures": len(structures),
            "problems": [{"source": p.source, "message": p.message} for p in problems],
        }
        write_json_atomic(wd.path / "manifest.json", manifest)
        return wd

    # ---- per-structure state ---------------------------------------------------------------
    def state_path(self, index: int) -> Path:
        return self.state_dir / f"{index:07d}.json"

    def record(self, index: int, **state) -> None:
        write_json_atomic(self.state_path(index), {"index": index, **state})

    def states(self) -> dict[int, dict]:
        out = {}
        for f in sorted(self.state_dir.glob("*.json")):
            try:
                data = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            out[int(data["index"])] = data
        return out

    def pending(self, retry_failed: bool = False) -> list[int]:
        """Structure indices still to compute (in input order)."""
        states = self.states()
        n = self.manifest()["n_structures"]
        return [i for i in range(n) if i not in states or (retry_failed and states[i].get("status") == "failed")]
