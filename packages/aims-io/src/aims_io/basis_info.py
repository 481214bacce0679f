"""``basis_info.out``: the auxiliary (product) basis of each atom, as radial-function counts.

Format (one block per atom)::

    atom      1
    For L =   0 there are   11 radial functions
    ...
    For atom      1 max L =   8
"""

from __future__ import annotations

import re
from pathlib import Path

from rho_data.yaml_input import short_repr

from .errors import AimsIOError
from .layout import read_text

_ATOM = re.compile(r"^\s*atom\s+(\d+)\s*$")
_L = re.compile(r"^\s*For L\s*=\s*(\d+)\s+there are\s+(\d+)\s+radial functions\s*$")
_END = re.compile(r"^\s*For atom\s+(\d+)\s+max L\s*=\s*(\d+)\s*$")


def read_basis_info(path: str | Path) -> list[tuple[int, ...]]:
    """Radial counts per l (l = 0..lmax) of each atom, in atom order."""
    path = Path(path)
    if not path.is_file():
        raise AimsIOError("missing file", path=path)
    atoms: list[tuple[int, ...]] = []
    current: int | None = None
    counts: list[int] = []
    for k, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if m := _ATOM.match(line):
            if current is not None:
                raise AimsIOError(f"line {k}: atom {m.group(1)} starts before atom {current} ended", path=path)
            current, counts = int(m.group(1)), []
        elif m := _L.match(line):
            if current is None or int(m.group(1)) != len(counts):
                raise AimsIOError(f"line {k}: unexpected {short_repr(line.strip())}", path=path)
            counts.append(int(m.group(2)))
        elif m := _END.match(line):
            if current is None or int(m.group(1)) != current or int(m.group(2)) != len(counts) - 1:
                raise AimsIOError(f"line {k}: {short_repr(line.strip())} does not close the block of atom {current}", path=path)
            if current != len(atoms) + 1:
                raise AimsIOError(f"line {k}: atom {current} out of order (expected {len(atoms) + 1})", path=path)
            atoms.append(tuple(counts))
            current = None
        else:
            raise AimsIOError(f"line {k}: cannot read {short_repr(line.strip())}", path=path)
    if current is not None:
        raise AimsIOError(f"ends inside the block of atom {current} (truncated?)", path=path)
    if not atoms:
        raise AimsIOError("has no atoms", path=path)
    return atoms


def n_functions(counts: tuple[int, ...]) -> int:
    return sum(n * (2 * l + 1) for l, n in enumerate(counts))
