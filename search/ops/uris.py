"""Store URIs (Optuna storage, MLflow tracking): redaction, and checks before anything is created.

One :func:`redact` hides every secret a URI can carry, for Optuna and MLflow alike: the password
of the user-info (``postgresql://user:pw@host``, ``redis://:pw@host``) and query parameters
whose name says secret (``?password=``, ``token=``, ``api_key=``, ``secret=``, ...). It works on
any text, so an error message that quotes a URI can be redacted as a whole.

:func:`check_storage_uri` and :func:`check_tracking_uri` fail in a few seconds with one line
when a store cannot be used: unknown scheme, malformed URI, missing database driver, a sqlite
file in a folder that cannot be written or that is another program's database, a host that
does not answer within :data:`CONNECT_TIMEOUT`. They create nothing, so the CLI calls them
before a study exists.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from search.ops.postgres import prefer_psycopg
from search.safe_yaml import clip

#: Seconds to wait for a host's name and for its port to accept a connection.
CONNECT_TIMEOUT = 3.0

_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):(?P<secret>[^\s/?#]*)@")
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?P<key>[^=&#\s]*?(?:pass|pwd|token|secret|key|auth|credential|signature)"
    r"[^=&#\s]*)=)(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
_REDACTED = "***"

#: Default ports of the network databases SQLAlchemy (Optuna's RDB storage, MLflow's store) knows.
_DATABASE_PORTS = {
    "postgresql": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "mssql": 1433,
    "oracle": 1521,
}
_HTTP_PORTS = {"http": 80, "https": 443}


class UriError(ValueError):
    """A storage or tracking URI cannot be used; the message shows it redacted."""


def redact(text: str) -> str:
    """``text`` with the secrets of every URI in it replaced by ``***``.

    ``postgresql://user:pw@host/db`` -> ``postgresql://user:***@host/db``;
    ``postgresql://host/db?user=u&password=pw`` -> ``...?user=u&password=***``;
    ``redis://:pw@host`` -> ``redis://:***@host``.
    """
    text = _USERINFO.sub(rf"\g<head>:{_REDACTED}@", text)
    return _SECRET_PARAMETER.sub(rf"\g<head>{_REDACTED}", text)


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (relative to the working directory), else None."""
    if not url.startswith("sqlite:///"):
        return None
    path = unquote(url[len("sqlite:///") :].split("?", 1)[0])
    return None if path in ("", ":memory:") else Path(path)


def check_storage_uri(url: str) -> None:
    """Raise :class:`UriError` when ``url`` cannot be an Optuna RDB storage; create nothing."""
    _check_database(url, "--storage", "Optuna storage", required_table="studies")


def check_tracking_uri(uri: str) -> None:
    """Raise :class:`UriError` when ``uri`` cannot be an MLflow tracking store or server;
    create nothing."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme in _HTTP_PORTS:
        parts = _split(uri, "--tracking-uri")
        if not parts.hostname:
            raise UriError(f"--tracking-uri {_show(uri)}: no host (expected http://HOST:PORT)")
        _check_reachable(uri, "--tracking-uri", parts.hostname, _port(parts, _HTTP_PORTS[scheme]))
        _check_mlflow_server(uri, parts)
        return
    if scheme in ("file", "") or scheme.startswith("databricks"):
        raise UriError(
            f"--tracking-uri {_show(uri)}: not supported here; use sqlite:///PATH/mlflow.db, "
            "a database URL (postgresql://...) or a tracking server (http://HOST:PORT)"
        )
    _check_database(uri, "--tracking-uri", "MLflow store", required_table="experiments")


def _show(uri: str) -> str:
    return clip(redact(uri), 160)


def _split(uri: str, flag: str) -> SplitResult:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise UriError(f"{flag} {_show(uri)}: malformed URI ({clip(str(error))})") from None
    return parts


def _port(parts: SplitResult, default: int) -> int:
    return parts.port if parts.port is not None else default


def _check_database(url: str, flag: str, what: str, required_table: str) -> None:
    """A SQLAlchemy database URL: known dialect, driver installed, sqlite file usable or
    host answering."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    prefer_psycopg()
    shown = _show(url)
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise UriError(
            f"{flag} {shown}: not a database URL for the {what} (expected sqlite:///PATH, "
            "postgresql://USER@HOST/DB or mysql://USER@HOST/DB)"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        raise UriError(
            f"{flag} {shown}: the database driver is not installed ({clip(str(error))}); "
            "install it in this environment (PostgreSQL: pip install 'psycopg[binary]')"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.host:
            raise UriError(f"{flag} {shown}: a sqlite URL has no host (sqlite:///PATH)")
        _check_sqlite(url, flag, what, required_table)
        return
    if not parsed.host:
        if parsed.query.get("host"):  # postgresql:///db?host=/run/postgresql: a local socket
            return
        raise UriError(f"{flag} {shown}: no host in the database URL")
    port = parsed.port or _DATABASE_PORTS.get(backend)
    if port is not None:
        _check_reachable(url, flag, parsed.host, port)


def _check_sqlite(url: str, flag: str, what: str, required_table: str) -> None:
    path = sqlite_path(url)
    if path is None:
        return  # in memory
    shown = _show(url)
    if path.is_dir():
        raise UriError(f"{flag} {shown}: {clip(str(path))} is a folder, not a database file")
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as error:
            raise UriError(
                f"{flag} {shown}: {clip(str(path))} cannot be read and written ({error.strerror})"
            ) from None
        problem = _foreign_database(path, required_table)
        if problem:
            raise UriError(f"{flag} {shown}: {clip(str(path))} {problem}, not an {what}")
        return
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UriError(f"{flag} {shown}: {clip(str(folder))} is not a folder")
    try:  # a nameless file where the system supports it (O_TMPFILE); deleted on close
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UriError(
            f"{flag} {shown}: cannot create files in {clip(str(folder))} ({error.strerror})"
        ) from None


def _check_mlflow_server(uri: str, parts: SplitResult) -> None:
    """``GET /health`` answers 200 on an MLflow tracking server (within the timeout)."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else f"{host}"
    url = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}/health"
    request = urllib.request.Request(url)
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    context = None
    if parts.scheme == "https":
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        context = ssl.create_default_context(
            cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
        )
        if insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    shown = _show(uri)
    try:
        with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT, context=context):
            return
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise UriError(
                f"--tracking-uri {shown}: the server refused the credentials (HTTP {error.code})"
            ) from None
        raise UriError(
            f"--tracking-uri {shown}: does not answer as an MLflow tracking server "
            f"(HTTP {error.code} on /health)"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = clip(redact(str(getattr(error, "reason", error))))
        raise UriError(
            f"--tracking-uri {shown}: no answer from the tracking server ({reason}; "
            f"waited at most {CONNECT_TIMEOUT:.0f}s)"
        ) from None


def _foreign_database(path: Path, required_table: str) -> str | None:
    """Why ``path`` is not a database of ours (None when it is, or is empty)."""
    try:
        with open(path, "rb") as file:
            header = file.read(16)
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if not header:
        return None
    if header != b"SQLite format 3\x00":
        return "is not a SQLite database"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        finally:
            connection.close()
    except sqlite3.Error as error:
        return f"cannot be read as a SQLite database ({clip(str(error))})"
    if tables and required_table not in tables:
        return "holds another program's tables"
    return None


def _check_reachable(uri: str, flag: str, host: str, port: int) -> None:
    """Resolve ``host`` and connect to ``port``, each within :data:`CONNECT_TIMEOUT`."""
    shown = _show(uri)
    addresses = _resolve(host, port)
    if addresses is None:
        raise UriError(f"{flag} {shown}: host '{clip(host)}' not found (or DNS does not answer)")
    last: OSError | None = None
    for family, kind, proto, _, address in addresses[:4]:
        try:
            with socket.socket(family, kind, proto) as connection:
                connection.settimeout(CONNECT_TIMEOUT)
                connection.connect(address)
            return
        except OSError as error:
            last = error
    reason = "no answer" if isinstance(last, TimeoutError) else getattr(last, "strerror", None)
    raise UriError(
        f"{flag} {shown}: cannot reach {clip(host)}:{port} "
        f"({reason or last}; waited at most {CONNECT_TIMEOUT:.0f}s)"
    )


def _resolve(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """``getaddrinfo`` bounded by :data:`CONNECT_TIMEOUT` (it has no timeout of its own)."""
    found: list[list[tuple[Any, ...]]] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError):
            found.append([])

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(CONNECT_TIMEOUT)
    return found[0] if found and found[0] else None


def check_stores(study: str | None, storage: str | None, tracking_uri: str | None) -> None:
    """Refuse a bad study name or store URI before anything is created (each within seconds)."""
    from search.names import check_study_name

    if study is not None:
        check_study_name(study)
    if storage is not None:
        check_storage_uri(storage)
    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
