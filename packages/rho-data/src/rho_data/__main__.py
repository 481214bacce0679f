"""python -m rho_data: the rho-data command."""

from .cli import app

app()
