"""What every rho command line shares: ``--version``, one-line errors for bad input, the options
spelt the same in every CLI (``-o/--output``, ``-c/--config``, ``--set``, ``--overwrite``), progress bars.

Every command of every rho CLI is registered on a :class:`RhoTyper`, which wraps it in
:func:`exit_on`: bad input (:class:`~rho_data.errors.RhoDataError`, which every package's error
subclasses) and system errors (a full disk, a missing or read-only directory) become one line
on standard error and exit code 1, so a new command cannot forget the error path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import typer
from rich import get_console
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typer.core import TyperCommand, TyperGroup

from .atomic import disk_full, os_error_message
from .errors import RhoDataError

_VERSION_HELP = "Print the version and exit."
_DISK_FULL = "the disk is full; free some space and run the command again (finished work is kept)"


def version_callback(text: str, console: Console) -> Callable[[bool], None]:
    """An eager ``--version`` callback that prints ``text`` and exits."""

    def callback(value: bool) -> None:
        if value:
            console.print(text, highlight=False)
            raise typer.Exit()

    return callback


def print_error(console: Console, message: object, label: str = "error") -> None:
    """One red-labelled line; the message is printed as it is (no rich markup, no wrapping)."""
    text = " ".join(str(message).split("\n"))  # one line, whatever the message holds
    console.print(f"[red]{label}:[/red] {escape(text)}", highlight=False, soft_wrap=True)


def exit_on(*error_types: type[Exception], console: Console) -> Callable[[Callable], Callable]:
    """Decorate a command: these errors (bad input), system errors (``OSError``: full disk,
    missing or read-only directory) and Ctrl-C become one line and a non-zero exit, no traceback."""
    caught = tuple(error_types) + (RhoDataError,)

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except caught as err:
                print_error(console, err)
                raise typer.Exit(1) from None
            except OSError as err:
                print_error(console, _DISK_FULL if err.errno is None and disk_full(err) else os_error_message(err))
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                print_error(console, "interrupted; finished work is kept, run the command again to go on")
                raise typer.Exit(130) from None
            except Exception as err:
                if disk_full(err):
                    print_error(console, _DISK_FULL)
                    raise typer.Exit(1) from None
                raise

        return wrapper

    return decorate


_usage_console = Console(stderr=True)
#: click's UsageError (typer re-exports only its subclass BadParameter; newer typers vendor click).
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _one_line_usage_errors(method: Callable) -> Callable:
    """Wrap ``make_context`` or ``invoke``: a command-line usage error (wrong type, missing
    argument or command, unknown option) becomes one line and exit code 2 instead of click's
    usage box."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _UsageError as err:
            if type(err).__name__ == "NoArgsIsHelpError":
                raise  # no arguments: the help text, as typer shows it
            path = err.ctx.command_path if err.ctx is not None else self.name
            print_error(_usage_console, f"{err.format_message()} (see '{path} --help')")
            raise typer.Exit(err.exit_code) from None

    return wrapper


def _spell_aliases(args: list[str], aliases: Mapping[str, str | None]) -> list[str]:
    """``args`` with each old option spelling replaced by its current one (``None``: dropped,
    an old flag that only restated the default); nothing after ``--`` is touched."""
    out: list[str] = []
    for k, arg in enumerate(args):
        if arg == "--":
            return out + list(args[k:])
        name, eq, value = arg.partition("=")
        if name in aliases and (eq == "" or name.startswith("--")):
            new = aliases[name]
            if new is not None:
                out.append(f"{new}={value}" if eq else new)
            continue
        out.append(arg)
    return out


class RhoCommand(TyperCommand):
    """A typer command whose usage errors are one line (see :func:`_one_line_usage_errors`) and
    which accepts the old spellings of renamed options (:attr:`aliases`, old -> new), hidden
    from its help."""

    aliases: Mapping[str, str | None] = {}

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        return _make_command_context(self, info_name, _spell_aliases(list(args), self.aliases), parent, **extra)


_make_command_context = _one_line_usage_errors(TyperCommand.make_context)


class RhoGroup(TyperGroup):
    """A typer group whose usage errors are one line (see :func:`_one_line_usage_errors`).

    With :attr:`default_command` set, arguments that do not start with a command name (nor with
    ``--help`` or ``--version``) go to that command: ``rho-eval PRED ...`` is ``rho-eval evaluate PRED ...``.
    """

    default_command: str | None = None
    make_context = _one_line_usage_errors(TyperGroup.make_context)
    invoke = _one_line_usage_errors(TyperGroup.invoke)

    def parse_args(self, ctx, args):  # type: ignore[override]
        first = args[0] if args else None
        if self.default_command is not None and first is not None and first not in self.commands:
            if first not in (*ctx.help_option_names, "--version"):
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class RhoTyper(typer.Typer):
    """A ``typer.Typer`` whose every command (and callback) goes through :func:`exit_on`, and
    whose command-line usage errors are one line with exit code 2.

    With ``version`` (the text to print, e.g. ``"aims-io 0.1.0"``) the group gets the one
    ``--version`` option of every rho CLI, printed on ``console``, and shows its help when called
    without arguments; ``default_command`` names the command that arguments without a command
    name go to (see :class:`RhoGroup`). ``command(..., aliases={"--out": "--output"})`` keeps
    the old spelling of a renamed option working, hidden from the help. Shell-completion
    installation is off in every rho CLI. :func:`make_cli` builds one with its two consoles.
    """

    def __init__(
        self,
        *args,
        errors: tuple[type[Exception], ...] = (),
        error_console: Console | None = None,
        version: str | None = None,
        console: Console | None = None,
        default_command: str | None = None,
        **kwargs,
    ):
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("cls", RhoGroup if default_command is None else _default_group(default_command))
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("no_args_is_help", version is not None)
        super().__init__(*args, **kwargs)
        self._user_errors = exit_on(*errors, console=error_console or Console(stderr=True))
        if version is not None:
            show = version_callback(version, console or get_console())

            def main(
                version: bool = typer.Option(
                    False, "--version", is_eager=True, help="Print the version and exit.", callback=show
                ),
            ) -> None:
                pass

            self.callback()(main)

    def command(self, *args, aliases: Mapping[str, str | None] | None = None, **kwargs):  # type: ignore[override]
        kwargs.setdefault("cls", RhoCommand if not aliases else type("RhoCommand", (RhoCommand,), {"aliases": dict(aliases)}))
        register = super().command(*args, **kwargs)
        return lambda function: register(self._user_errors(function))

    def callback(self, *args, **kwargs):  # type: ignore[override]
        register = super().callback(*args, **kwargs)
        return lambda function: register(self._user_errors(function))


def _default_group(name: str) -> type[RhoGroup]:
    return type("RhoGroup", (RhoGroup,), {"default_command": name})


def make_cli(
    *, help: str, version: str, errors: tuple[type[Exception], ...] = (), default_command: str | None = None
) -> tuple[RhoTyper, Console, Console]:
    """``(app, console, error_console)`` of a rho CLI: a :class:`RhoTyper` with the ``--version``
    option printing ``version``, whose commands turn ``errors`` (and every
    :class:`~rho_data.errors.RhoDataError`) into one line on ``error_console`` (standard error);
    ``console`` is standard output."""
    console, error_console = Console(), Console(stderr=True)
    app = RhoTyper(
        help=help, errors=errors, error_console=error_console, version=version, console=console, default_command=default_command
    )
    return app, console, error_console


# ---- the options every rho CLI spells the same way --------------------------------------------


def output_option(help: str, default: Any = ...) -> Any:
    """``-o/--output``: the file or directory a command writes."""
    return typer.Option(default, "-o", "--output", help=help)


def config_option(tool: str) -> Any:
    """``-c/--config``, repeatable: settings YAML files, a later one overriding an earlier one."""
    return typer.Option(
        None, "-c", "--config", help=f"Settings YAML (any subset of '{tool} options'); repeatable, a later file wins."
    )


def set_option() -> Any:
    """``--set section.key=value``, repeatable: one setting, after the ``--config`` files."""
    return typer.Option(
        None, "--set", help="One setting, section.key=value (the value read as YAML); repeatable, applied after -c files."
    )


def overwrite_option(help: str = "Replace an output that exists.") -> Any:
    """``--overwrite``: a plain flag (no ``--no-overwrite``); without it nothing is replaced."""
    return typer.Option(False, "--overwrite", help=help)


def progress_bar(console: Console | None = None, *, eta: bool = True, transient: bool = True, info: bool = False) -> Progress:
    """A rich progress bar: description, bar, done/total, and the time remaining (or elapsed).

    With ``info`` it also shows each task's ``info`` field (``add_task(..., info="")``, then
    ``update(task, info=...)``), for example a count of failures.

    It is shown only on an interactive terminal (rich's ``console.is_interactive``; ``TTY_INTERACTIVE=0``
    turns it off): a log that standard error is redirected to never receives bar characters. On a
    terminal it is ``transient`` by default: it disappears when done, so that what a command prints
    next stands on a line of its own.
    """
    console = console if console is not None else get_console()
    clock = TimeRemainingColumn() if eta else TimeElapsedColumn()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *([TextColumn("{task.fields[info]}")] if info else []),
        clock,
        console=console,
        transient=transient,
        disable=not console.is_interactive,
    )
