"""SLURM batch scripts written one way for every rho package, and the sbatch/squeue calls.

A job script is ``#!/bin/bash``, comment lines, ``#SBATCH`` directives, then shell commands.
Values from settings and paths end up inside those lines, and ``shlex.quote`` protects a
shell word but not a ``#SBATCH`` or comment line: a newline in a partition name or a
directory name would start a new line of shell. So every piece is checked here, with the
setting it came from named in the error, and no piece may hold a control character
(C0, DEL, C1, or a Unicode line or paragraph separator). Commands are written as given:
callers build them with :func:`shell_command`, which quotes every word.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from .atomic import write_text_atomic
from .errors import RhoDataError

_LINE_BREAKS = {"\u0085", "\u2028", "\u2029"}


class JobScriptError(RhoDataError):
    """A value that cannot go into a job script."""


def _shorten(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def refuse_control_characters(value: object, setting: str) -> str:
    """``str(value)``, or a :class:`JobScriptError` naming ``setting`` if it holds a control character."""
    text = str(value)
    for ch in text:
        code = ord(ch)
        if code < 32 or code == 127 or 128 <= code < 160 or ch in _LINE_BREAKS:
            raise JobScriptError(
                f"{setting} contains the control character {ch!r} (in {_shorten(text)}): "
                "it would change the job script; remove it"
            )
    return text


def shell_command(words: Sequence[object], setting: str = "command") -> str:
    """One shell command line from ``words``, each quoted, none holding a control character."""
    return " ".join(shlex.quote(refuse_control_characters(w, setting)) for w in words)


@dataclass
class JobScript:
    """The parts of an sbatch script; :meth:`text` checks every part before joining them."""

    directives: list[tuple[str, str]] = field(default_factory=list)  # (sbatch option, setting it came from)
    commands: list[tuple[str, str]] = field(default_factory=list)  # (shell line, setting it came from)
    comments: list[str] = field(default_factory=list)

    def directive(self, option: str, value: object | None = None, *, setting: str | None = None) -> JobScript:
        """``#SBATCH option`` or ``#SBATCH option=value``."""
        text = option if value is None else f"{option}={value}"
        self.directives.append((text, setting or option.lstrip("-")))
        return self

    def command(self, line: str, *, setting: str = "command") -> JobScript:
        self.commands.append((line, setting))
        return self

    def comment(self, text: str) -> JobScript:
        self.comments.append(text)
        return self

    def text(self) -> str:
        lines = ["#!/bin/bash"]
        lines += ["#SBATCH " + refuse_control_characters(d, setting) for d, setting in self.directives]
        lines += ["# " + refuse_control_characters(c, "comment") for c in self.comments]
        lines += [refuse_control_characters(c, setting) for c, setting in self.commands]
        return "\n".join(lines) + "\n"

    def write(self, path: str | PathLike) -> Path:
        """Write the script atomically (executable by its owner)."""
        path = Path(path)
        text = self.text()
        refuse_control_characters(str(path), "the job script's path")
        write_text_atomic(path, text, what="job script")
        os.chmod(path, 0o750)
        return path


def sbatch(arguments: Sequence[str], *, error: type[RhoDataError] = RhoDataError) -> str:
    """``sbatch --parsable ARGUMENTS``; returns the job id (a one-line error when SLURM fails)."""
    executable = shutil.which("sbatch")
    if executable is None:
        raise error("sbatch is not on PATH: SLURM is not available on this machine")
    for a in arguments:
        refuse_control_characters(a, "an sbatch argument")
    done = subprocess.run([executable, "--parsable", *arguments], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        raise error(f"sbatch failed: {detail}")
    return done.stdout.strip().split(";")[0]
