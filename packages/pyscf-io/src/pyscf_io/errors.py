"""The exception for bad input: one line naming the file, the structure and the problem."""

from __future__ import annotations

from rho_data import RhoDataError


class PyscfIoError(RhoDataError):
    """Bad input or a failed structure; the message is shown to the user as is."""


#: What a full disk means for a run, and what to do.
DISK_FULL = (
    "the disk is full; finished structures are kept: free some space (or use another --workdir / -o) "
    "and run the command again to go on"
)


class DiskFull(PyscfIoError):
    """No room to write: the run stops (nothing is recorded as failed), finished work is kept."""
