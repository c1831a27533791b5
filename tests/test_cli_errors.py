"""User mistakes: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from search.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_bad_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--trails", "3"]) == 2
    line = _one_line_error(capsys)
    assert "--trails" in line


def test_bad_flag_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--trials", "zero"]) == 2
    assert "--trials" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("params: [\n", "not valid YAML"),
        ("params:\n  context: {type: float, low: 0.0, high: 9.0}\n", "'context'"),
        ("params:\n  colour: {type: float, low: 0.0, high: 1.0}\n", "'colour'"),
        ("params:\n  kind: {type: categorical, choices: [full, diagonal]}\n", "diagonal"),
        ("params:\n  fraction: {type: floaty, low: 0.1, high: 1.0}\n", "params.fraction"),
    ],
)
def test_malformed_space_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text(content)
    code = main(
        [
            "search",
            "--space",
            str(space),
            "--storage",
            f"sqlite:///{tmp_path}/o.db",
            "--tracking-uri",
            f"sqlite:///{tmp_path}/m.db",
        ]
    )
    assert code == 2
    line = _one_line_error(capsys)
    assert str(space) in line and fragment in line
    assert not (tmp_path / "o.db").exists()  # nothing started


def test_missing_space_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--space", str(tmp_path / "none.yaml")]) == 2
    assert "no such space file" in _one_line_error(capsys)


def test_bad_data_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "search",
            "--data",
            "pictures:/nowhere",
            "--space",
            str(REPO / "spaces" / "default.yaml"),
            "--storage",
            f"sqlite:///{tmp_path}/o.db",
            "--tracking-uri",
            f"sqlite:///{tmp_path}/m.db",
        ]
    )
    assert code == 2
    assert "unknown format 'pictures'" in _one_line_error(capsys)


def test_export_without_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--storage", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no study storage" in _one_line_error(capsys)


def test_export_unknown_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path}/o.db"
    optuna.create_study(study_name="exists", storage=storage)
    capsys.readouterr()
    assert main(["export", "--study", "other", "--storage", storage]) == 2
    assert "no study 'other'" in _one_line_error(capsys)


def test_a_bug_keeps_its_traceback_but_not_its_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import search.cli

    def broken(*args: object) -> None:
        raise RuntimeError("cannot open postgresql://u:hunter2@db/x?token=hunter2")

    monkeypatch.setattr(search.cli, "check_stores", broken)
    assert main(["search"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err
    assert "hunter2" not in err and "postgresql://u:***@db/x?token=***" in err


def test_a_long_multi_line_message_is_one_bounded_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / ("deep\n" * 50 + ".yaml")
    assert main(["search", "--space", str(space)]) == 2
    line = _one_line_error(capsys)
    assert len(line) < 500 and "\\n" in line
