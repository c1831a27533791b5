"""Store URIs: redaction of every secret, and checks before anything is created."""

from __future__ import annotations

import base64
import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from search.ops.uris import (
    MLFLOW_HTTP_SETTINGS,
    UriError,
    bound_mlflow_retries,
    check_storage_uri,
    check_tracking_uri,
    password_warning,
    redact,
    refused_credentials,
)

REDACTED = [
    ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
    ("postgresql://:pw@host/db", "postgresql://:***@host/db"),
    ("postgresql+psycopg://u:p@ss@host:5432/db", "postgresql+psycopg://u:***@host:5432/db"),
    ("postgresql://host/db?user=u&password=pw", "postgresql://host/db?user=u&password=***"),
    ("mysql://u@host/db?sslmode=require&PASSWORD=pw", "mysql://u@host/db?sslmode=require&PASSWORD=***"),
    ("http://user:pw@mlflow:5000", "http://user:***@mlflow:5000"),
    ("https://mlflow/?token=abc&x=1", "https://mlflow/?token=***&x=1"),
    ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
    ("sqlite:///m.db?api_key=k", "sqlite:///m.db?api_key=***"),
    ("failed: postgresql://u:pw@h/db (timeout)", "failed: postgresql://u:***@h/db (timeout)"),
]  # fmt: skip


KEPT = [
    "sqlite:///mlruns/optuna.db",
    "postgresql://user@host:5432/db?sslmode=require",
    "http://127.0.0.1:5000",
    "http://[::1]:5000/path",
    "no uri at all: a:b@c",
]


@pytest.mark.parametrize(("uri", "expected"), REDACTED)
def test_redact_hides_every_secret(uri: str, expected: str) -> None:
    assert redact(uri) == expected
    assert "pw" not in redact(uri).replace("pwd", "")


@pytest.mark.parametrize("uri", KEPT)
def test_redact_keeps_uris_without_secrets(uri: str) -> None:
    assert redact(uri) == uri


def test_tracking_redact_is_the_one_redact() -> None:
    import search.results.tracking

    assert search.results.tracking.redact is redact


def test_good_stores_pass_and_create_nothing(tmp_path: Path) -> None:
    check_storage_uri(f"sqlite:///{tmp_path}/new/deeper/optuna.db")
    check_tracking_uri(f"sqlite:///{tmp_path}/new/mlflow.db")
    check_storage_uri("sqlite:///:memory:")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_optuna_storage_passes(tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(study_name="s", storage=storage)
    check_storage_uri(storage)
    with pytest.raises(UriError, match="another program's tables"):
        check_tracking_uri(storage)


def test_a_hung_host_costs_at_most_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import search.ops.uris

    monkeypatch.setattr(search.ops.uris, "CONNECT_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(UriError):  # unroutable, refused or answered: never longer than 2 x 0.5 s
        check_tracking_uri("http://10.255.255.1:5999")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("flag", "uri", "variable"),
    [
        ("--storage", "postgresql://user:pw@host/db", "PGPASSWORD"),
        ("--storage", "postgresql+psycopg://host/db?password=pw", "PGPASSWORD"),
        ("--tracking-uri", "http://user:pw@mlflow:5000", "MLFLOW_TRACKING_PASSWORD"),
        ("--tracking-uri", "https://mlflow/?token=abc", "MLFLOW_TRACKING_TOKEN"),
    ],
)
def test_a_password_in_a_uri_warns_in_one_line_naming_the_variable(
    flag: str, uri: str, variable: str
) -> None:
    warning = password_warning(uri, flag)
    assert warning is not None and "\n" not in warning
    assert warning.startswith(f"warning: {flag} ") and variable in warning
    assert "pw" not in warning.replace("password", "") and "abc" not in warning


@pytest.mark.parametrize(
    "uri", ["postgresql://user@host/db", "http://mlflow:5000", "sqlite:///m.db", "x"]
)
def test_a_uri_without_a_password_does_not_warn(uri: str) -> None:
    assert password_warning(uri, "--storage") is None


def test_a_tracking_server_gets_mlflow_s_own_retries_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in MLFLOW_HTTP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    bound_mlflow_retries("sqlite:///m.db")
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "45")  # the user's own setting stays
    bound_mlflow_retries("https://mlflow:5000")
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "45"


def test_a_401_from_mlflow_s_client_is_one_line_naming_the_variables() -> None:
    from mlflow.exceptions import MlflowException

    error = MlflowException(
        "API request to endpoint /api/2.0/mlflow/experiments/get-by-name failed with error "
        "code 401 != 200. Response body: 'You are not authenticated.'"
    )
    wrapped = RuntimeError("while tracking")
    wrapped.__cause__ = error
    reason = refused_credentials(wrapped)
    assert reason is not None and "HTTP 401" in reason and "MLFLOW_TRACKING_PASSWORD" in reason
    assert refused_credentials(MlflowException("error code 500")) is None


class _Guarded(http.server.BaseHTTPRequestHandler):
    """/health for anyone; the API only with user:secret (as MLflow's basic-auth app)."""

    def do_GET(self) -> None:
        wanted = "Basic " + base64.b64encode(b"user:secret").decode()
        ok = self.path == "/health" or self.headers.get("Authorization") == wanted
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_server_check_sends_mlflow_s_environment_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Guarded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(UriError, match=r"refused the credentials \(HTTP 401\).*USERNAME"):
            check_tracking_uri(uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "user")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
        with pytest.raises(UriError, match="refused the credentials"):
            check_tracking_uri(uri)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
        check_tracking_uri(uri)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        check_tracking_uri(uri.replace("http://", "http://user:secret@"))  # still works
    finally:
        server.shutdown()
