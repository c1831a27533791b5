"""Every option's help, as ``cropsearch COMMAND --help`` shows it: a whole sentence, printed as
written (Typer reads help as Rich markup, where ``[default: x]`` is a style tag and vanishes,
leaving a dangling " ."), and it states the default or where the value comes from."""

from __future__ import annotations

import click
import pytest
import typer

from search.cli import app, main

COMMANDS: dict[str, click.Command] = typer.main.get_command(app).commands  # type: ignore[attr-defined]
#: What Typer appends after the help of an option that states its default (or has none).
TYPER_DEFAULT = ("[default: ", "[env var: ", "[required]")


def _help_rows(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The lines of ``cropsearch NAME --help``, wide enough for one line per option, with the
    panels' borders and repeated spaces taken out."""
    monkeypatch.setenv("COLUMNS", "3000")
    assert main([name, "--help"]) == 0
    return [" ".join(line.strip(" │").split()) for line in capsys.readouterr().out.splitlines()]


def test_every_command_is_walked() -> None:
    assert {"search", "status", "confirm", "export", "ui", "dashboard", "data"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_help_is_a_whole_sentence_with_its_default(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _help_rows(name, capsys, monkeypatch)
    params = [p for p in COMMANDS[name].params if not getattr(p, "hidden", False)]
    assert params
    for param in params:
        where = f"cropsearch {name} {param.opts[0]}"
        text = " ".join((getattr(param, "help", None) or "").split())
        assert text, f"{where}: no help"
        assert text[0].isupper() and text.endswith(".") and not text.endswith(" ."), (
            f"{where}: {text!r} is not a whole sentence"
        )
        shown = [row for row in rows if text in row]
        assert len(shown) == 1, f"{where}: {text!r} is not shown as written"
        after = shown[0].split(text, 1)[1].strip()
        assert "(default" in text or after.startswith(TYPER_DEFAULT), (
            f"{where}: {text!r} does not say its default"
        )
