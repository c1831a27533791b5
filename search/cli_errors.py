"""How the command line ends on an error: a user's mistake is one line on stderr (exit 2), an
interrupt says so (130, or the signal's code), a bug prints its traceback with any URI's
secrets redacted (exit 1)."""

from __future__ import annotations

import sys
import traceback

import typer

from search import cli_options as opt
from search.crop.policy import PolicyError
from search.data import DataError
from search.engines.common import StudyError
from search.names import StudyNameError
from search.ops.signals import Interrupted
from search.ops.stores import refused_connection
from search.ops.uris import UriError, redact, refused_credentials
from search.results.apply import ApplyError
from search.results.dashboard import DashboardError
from search.results.export import ExportError, PolicyFileError
from search.safe_yaml import MESSAGE_CHARS, YamlFileError, clip
from search.space import SpaceError


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""


USER_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    SpaceError,
    PolicyError,
    PolicyFileError,
    DataError,
    YamlFileError,
    UriError,
    StudyNameError,
    StudyError,
    opt.OptionError,
    ExportError,
    ApplyError,
    DashboardError,
)


def exit_code(error: BaseException) -> int:
    """Print how the command ends on ``error`` and return its exit code."""
    if isinstance(error, typer.TyperException):  # Typer's click errors: bad flag, bad value
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message(), err=True)
            return 2
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {one_line(error.format_message())}{hint}", err=True)
        return error.exit_code
    if isinstance(error, typer.Abort):
        typer.echo("aborted", err=True)
        return 130
    if isinstance(error, USER_ERRORS):
        typer.echo(f"error: {one_line(str(error))}", err=True)
        return 2
    if isinstance(error, Interrupted):
        typer.echo(f"interrupted ({error}): the running trial is marked failed", err=True)
        return error.exit_code
    if not isinstance(error, Exception):  # KeyboardInterrupt, the only other one main catches
        typer.echo("interrupted", err=True)
        return 130
    refused = refused_credentials(error)  # credentials changed after the first check
    if refused is None and "PGPASSWORD" in (refused_connection(error) or ""):
        refused = refused_connection(error)  # a wrong database password (worker, status)
    if refused:
        typer.echo(f"error: {refused}", err=True)
        return 2
    sys.stderr.write(redact("".join(traceback.format_exception(error))))  # a bug
    return 1


def one_line(message: str) -> str:
    """A user-facing message as one bounded line, secrets redacted."""
    return clip(redact(message), MESSAGE_CHARS)
