"""Store URIs: redaction of every secret, and checks before anything is created."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from search.ops.uris import UriError, check_storage_uri, check_tracking_uri, redact

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
