"""A run from the command line (``pyscf-io run`` and ``submit``): its inputs, its settings, its
work directory (created or reopened), and its end (merge, summary, failures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rho_data.atomic import check_output_location

from .config import load_settings
from .errors import PyscfIoError
from .geometry import check_index, read_structures
from .run_kind import resolve_run_kind
from .workdir import WorkDir

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunInputs:
    """What ``run`` and ``submit`` share: geometry files, output, settings layers, selection, work directory."""

    geometry: list[Path]
    output: Path
    config: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    index: str | None = None
    workdir: Path | None = None

    @property
    def workdir_path(self) -> Path:
        """The work directory: ``--workdir``, else ``OUTPUT.work`` beside the output."""
        return self.workdir or self.output.with_name(self.output.name + ".work")


def open_run(
    inputs: RunInputs,
    options: Mapping[str, Any],
    *,
    warn: Say,
    before_creating: Callable[[dict], None] | None = None,
) -> tuple[WorkDir, dict]:
    """Settings (defaults -> ``-c`` files -> ``--set`` -> the named ``options``), input structures
    and the work directory (created or reopened); bad input is one line.

    The output's directory is checked first (it must exist and be writable) so that no work
    directory is created for an output that cannot be written.
    """
    check_index(inputs.index)
    settings = load_settings(inputs.config, options, inputs.sets)
    check_output_location(inputs.output, overwrite=True, what="dataset")
    if before_creating is not None:
        before_creating(settings)
    structures, problems = [], []
    for path in inputs.geometry:
        found, trouble = read_structures(path, inputs.index)
        structures += found
        problems += trouble
    if not structures:
        raise PyscfIoError("no structure could be read: " + "; ".join(f"{p.source}: {p.message}" for p in problems))
    resolve_run_kind(settings, structures)
    wd = WorkDir.prepare(inputs.workdir_path, settings, structures, problems, inputs.output)
    wd.remove_stale_temporaries()
    lost = wd.recover_lost()
    if lost:
        warn(lost)
    return wd, settings


def finish_run(wd: WorkDir, output: Path | None, overwrite: bool, *, say: Callable[[Any], None], warn: Say, fail: Say) -> bool:
    """Merge the finished structures, show the summary and the failures; False when a structure
    failed or is pending, or an input could not be read."""
    from .merge import merge_workdir
    from .report import counts, failure_lines, summary_table

    c = counts(wd)
    if c["done"]:
        n = merge_workdir(wd, output, overwrite, warn=warn)
        say(f"wrote {n} structures to {output or wd.manifest()['output']}")
    say(summary_table(wd))
    for line in failure_lines(wd):
        fail(line)
    return not (c["failed"] or wd.problems() or not c["done"])
