"""``python -m pyscf_io`` (what generated job scripts call)."""

from .cli import app

app(prog_name="pyscf-io")
