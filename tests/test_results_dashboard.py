"""``cropsearch dashboard``: optuna-dashboard on the study's storage, bound to 127.0.0.1, with
the latest study's page printed; its page may fetch nothing but its own server."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from servers import free_port, listeners, served


def _storage(folder: Path) -> str:
    """A storage with an empty study and, created after it, one with a finished trial."""
    storage = f"sqlite:///{folder}/optuna.db"
    optuna.create_study(study_name="first", storage=storage)
    study = optuna.create_study(study_name="latest", storage=storage, direction="maximize")
    trial = study.ask()
    trial.suggest_float("context", 0.0, 0.5)
    study.tell(trial, 0.75)
    return storage


def _get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read()), dict(response.headers)


def _cli(args: list[str]) -> tuple[int, str]:
    from search.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


def test_dashboard_serves_the_latest_study_on_loopback(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "search.cli", "dashboard", "--storage", storage,
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        listing = served(
            lambda: json.loads(_get(f"{base}/api/studies")[0]), process, 60, "the dashboard"
        )
        ids = {s["study_name"]: s["study_id"] for s in listing["study_summaries"]}
        assert set(ids) == {"first", "latest"}
        detail = json.loads(_get(f"{base}/api/studies/{ids['latest']}")[0])
        assert [t["values"] for t in detail["trials"]] == [[0.75]]
        # Bound to loopback only: 127.0.0.1 (0100007F little-endian), never 0.0.0.0 or ::.
        assert listeners(port) == {"0100007F"}
        page, headers = _get(f"{base}/dashboard/studies/{ids['latest']}")
        assert page.lower().startswith(b"<!doctype html")
        scripts = re.findall(rb'src="([^"]*)"', page)
        assert scripts and all(src.startswith(b"/") for src in scripts), scripts
        policy = headers["Content-Security-Policy"].split(";")
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"study 'latest': {base}/dashboard/studies/{ids['latest']}" in output, output


def test_dashboard_refuses_a_taken_port_and_a_missing_extra_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _storage(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = _cli(["dashboard", "--storage", storage, "--port", str(port)])
    assert (
        code == 2 and output == f"error: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    )
    code, output = _cli(["dashboard", "--storage", storage, "--study", "nope"])
    assert code == 2 and output.startswith("error: no study 'nope' in ")
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # not installed
    code, output = _cli(["dashboard", "--storage", storage])
    assert code == 2 and output == (
        "error: the dashboard needs optuna-dashboard: pip install 'cropsearch[dashboard]'\n"
    )
