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

import contextlib
import json
import uuid
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from rho_data import RhoDataError, open_dataset
from rho_data.atomic import DiskFullError, remove_stale_temporaries, replace_quickly

from .config import dump_settings, physics, read_settings_file
from .context import RunContext
from .errors import DISK_FULL, DiskFull, PyscfIoError
from .geometry import InputProblem, InputStructure


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON onto ``path`` through :func:`rho_data.atomic.replace_quickly`.

    A run writes one state file per structure, so the directory scan for stale temporaries of
    :func:`rho_data.atomic.write_text_atomic` is left out: :meth:`WorkDir.remove_stale_temporaries`
    removes them once when a run starts. A full disk is :class:`DiskFull`; an unwritable
    directory is one line.
    """
    try:
        replace_quickly(path, json.dumps(data, indent=1).encode("utf-8"), what="work directory file")
    except DiskFullError:
        raise DiskFull(f"{path}: cannot be written: {DISK_FULL}") from None
    except RhoDataError as err:
        raise PyscfIoError(str(err)) from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PyscfIoError(f"{path}: missing: not a complete pyscf-io work directory ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PyscfIoError(f"{path}: unreadable {what} ({str(err).splitlines()[0][:120]})") from None


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
        if not self.path.is_dir():
            raise PyscfIoError(f"{self.path}: not a pyscf-io work directory (no such directory)")
        if not (self.path / "manifest.json").exists():
            raise PyscfIoError(f"{self.path}: not a pyscf-io work directory (no manifest.json)")
        data = _read_json(self.path / "manifest.json", "manifest")
        if not isinstance(data, dict) or not {"run_id", "output", "n_structures"} <= set(data):
            raise PyscfIoError(f"{self.path / 'manifest.json'}: not a pyscf-io manifest")
        return data

    def settings(self) -> dict:
        return read_settings_file(self.path / "settings.yaml")

    def structures(self) -> list[InputStructure]:
        try:
            return [InputStructure.from_json(d) for d in _read_json(self.path / "structures.json", "structure list")]
        except (TypeError, KeyError, ValueError) as err:
            raise PyscfIoError(f"{self.path / 'structures.json'}: not a pyscf-io structure list ({err})") from None

    def context(self) -> RunContext:
        data = _read_json(self.path / "basis.json", "basis file")
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
            if _read_json(wd.path / "structures.json", "structure list") != structures_json:
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
        periodic = any(s.periodic for s in structures)
        ctx = RunContext.build(settings, numbers, run_id, periodic) if numbers else RunContext(settings, {}, {}, {}, run_id)
        write_json_atomic(wd.path / "basis.json", ctx.to_json())
        write_json_atomic(wd.path / "structures.json", structures_json)
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
                data = json.loads(f.read_text(encoding="utf-8"))
                index = int(data["index"])
            except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
                continue  # unreadable: the structure counts as pending and is computed again
            if f.name == self.state_path(index).name:
                out[index] = data
        return out

    def forget(self, indices: list[int]) -> None:
        """Mark structures pending again (their state files are removed)."""
        for i in indices:
            with contextlib.suppress(FileNotFoundError):
                self.state_path(i).unlink()

    def lost_structures(self) -> tuple[list[int], list[str]]:
        """Structures recorded done whose data cannot be read: ``(indices, part files at fault)``.

        A part file that is missing, truncated or damaged, or shorter than the row a state names,
        loses the data of those structures; every row is read, as the merge will read it.
        """
        lost: list[int] = []
        bad_parts: list[str] = []
        by_part: dict[str, list[tuple[int, int]]] = {}
        for i, state in sorted(self.states().items()):
            if state.get("status") != "done":
                continue
            part, row = state.get("part"), state.get("row")
            if not isinstance(part, str) or not isinstance(row, int) or "/" in part or part.startswith("."):
                lost.append(i)
                continue
            by_part.setdefault(part, []).append((i, row))
        for part, rows in by_part.items():
            try:
                with open_dataset(self.parts_dir / part) as ds:
                    n = len(ds)
                    for i, row in rows:
                        if not 0 <= row < n:
                            lost.append(i)
                            continue
                        try:
                            ds[row]
                        except (RhoDataError, OSError, KeyError, ValueError, RuntimeError):
                            lost.append(i)
            except (RhoDataError, OSError, KeyError, ValueError, RuntimeError):
                lost += [i for i, _ in rows]
            if any(i in lost for i, _ in rows):
                bad_parts.append(part)
        return sorted(lost), bad_parts

    def recover_lost(self) -> str | None:
        """Mark structures whose data is gone pending again; returns the warning line (None: nothing lost)."""
        lost, parts = self.lost_structures()
        if not lost:
            return None
        self.forget(lost)
        shown = ", ".join(str(i) for i in lost[:20]) + (f" and {len(lost) - 20} more" if len(lost) > 20 else "")
        files = ", ".join(parts[:3]) + (" ..." if len(parts) > 3 else "")
        return (
            f"{self.path}: the data of {len(lost)} finished structures (input order {shown}) is gone "
            f"(part file missing, truncated or damaged: {files or 'bad state'}); they are pending again and will be recomputed"
        )

    def remove_stale_temporaries(self) -> None:
        """Temporary files left by killed writers of this work directory (they must not fill the disk)."""
        for folder in (self.path, self.state_dir, self.slurm_dir):
            if not folder.is_dir():
                continue
            for tmp in folder.glob(".*.tmp"):
                name = tmp.name[1:].rsplit(".", 3)[0]
                remove_stale_temporaries(folder / name)

    def pending(self, retry_failed: bool = False) -> list[int]:
        """Structure indices still to compute (in input order)."""
        states = self.states()
        n = int(self.manifest()["n_structures"])
        return [i for i in range(n) if i not in states or (retry_failed and states[i].get("status") == "failed")]
