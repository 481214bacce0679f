"""What every rho command line shares: ``--version``, one-line errors for bad input, progress bars."""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def version_callback(text: str, console: Console) -> Callable[[bool], None]:
    """An eager ``--version`` callback that prints ``text`` and exits."""

    def callback(value: bool) -> None:
        if value:
            console.print(text, highlight=False)
            raise typer.Exit()

    return callback


def print_error(console: Console, message: object, label: str = "error") -> None:
    """One red-labelled line; the message is printed as it is (no rich markup, no wrapping)."""
    console.print(f"[red]{label}:[/red] {escape(str(message))}", highlight=False, soft_wrap=True)


def exit_on(*error_types: type[Exception], console: Console) -> Callable[[Callable], Callable]:
    """Decorate a command: these errors (bad input) become one line and exit code 1, no traceback."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except error_types as err:
                print_error(console, err)
                raise typer.Exit(1) from None

        return wrapper

    return decorate


def progress_bar(console: Console, *, eta: bool = True) -> Progress:
    """A rich progress bar: description, bar, done/total, and the time remaining (or elapsed)."""
    clock = TimeRemainingColumn() if eta else TimeElapsedColumn()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), clock, console=console)
