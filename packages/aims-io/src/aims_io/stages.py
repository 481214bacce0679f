"""``aims-io prepare``: the run directories of one stage (scf, ri or guess), from the CLI's arguments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import AimsIOError

Say = Callable[[str], None]


def prepare_stage(
    stage: str,
    work: Path,
    settings: dict,
    *,
    structures: Path | None,
    reference: Path | None,
    name: str,
    say: Say,
    warn: Say,
) -> None:
    """Write the run directories of ``stage`` under ``work`` and the expanded settings beside them;
    ``say`` gets what was prepared, ``warn`` what is left for later."""
    from .prepare import prepare_ri
    from .settings import SETTINGS_FILE, dump

    if stage == "guess":
        from .guess import prepare_guess

        if structures is None or reference is None:
            raise AimsIOError("prepare guess needs a predictions file and --reference DATASET")
        work.mkdir(parents=True, exist_ok=True)
        dirs = prepare_guess(structures, reference, work, name, settings)
        say(
            f"prepared {len(dirs) // 2} ML-guess and {len(dirs) // 2} default-guess SCF runs under {work / 'guess' / name}; "
            f"run them with `aims-io run guess/{name} -w {work}`"
        )
    elif stage == "scf":
        if structures is None:
            raise AimsIOError("prepare scf needs a structures file")
        dirs = _prepare_scf(structures, work, settings)
        dump(settings, work / SETTINGS_FILE)
        say(f"prepared {len(dirs)} SCF runs under {work / 'scf'}; settings in {work / SETTINGS_FILE}")
    elif stage == "ri":
        prepared, skipped = prepare_ri(work, settings)
        dump(settings, work / SETTINGS_FILE)
        say(f"prepared {len(prepared)} RI-fit runs under {work / 'ri'}")
        if skipped:
            warn(f"{len(skipped)} SCF runs have not finished; run `aims-io status scf` and prepare ri again later")
    else:
        raise AimsIOError(f"prepare: unknown stage '{stage}' (scf, ri or guess; rebuild runs come from `aims-io export`)")


def _prepare_scf(structures: Path, work: Path, settings: dict) -> list[Path]:
    """One SCF run directory per structure of a file ASE reads (named by its info 'name', else its formula)."""
    import ase.io

    from .geometry import Geometry
    from .prepare import prepare_scf

    if not structures.is_file():
        raise AimsIOError("structures file not found", path=structures)
    try:
        frames = ase.io.read(structures, ":")
    except Exception as err:  # ASE raises many types for unreadable files
        raise AimsIOError(f"ASE cannot read it: {err}", path=structures) from None
    work.mkdir(parents=True, exist_ok=True)
    return prepare_scf(
        work,
        [Geometry.from_ase(a) for a in frames],
        settings,
        [str(a.info.get("name", a.get_chemical_formula())) for a in frames],
        source=structures,
    )
