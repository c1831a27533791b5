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

Credentials belong in the environment, not in a URI (which ``ps``, shell history and job logs
show): PostgreSQL's through libpq (``PGPASSWORD``, ``~/.pgpass``, ``PGPASSFILE``), a tracking
server's through MLflow's ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or
``MLFLOW_TRACKING_TOKEN``. A password inside a URI still works; :func:`password_warning` says
where it should go instead. :func:`bound_mlflow_retries` leaves the retrying of a tracking
server to :mod:`search.ops.retry`, so its minute is the whole wait.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from search.ops.postgres import prefer_psycopg
from search.safe_yaml import clip

#: Seconds to wait for a host's name and for its port to accept a connection.
CONNECT_TIMEOUT = 3.0
#: Seconds to wait for a tracking server's answer to an authenticated call (its basic-auth
#: app hashes the password on every request: seconds on a busy machine).
ANSWER_TIMEOUT = 10.0

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


def password_warning(uri: str, flag: str) -> str | None:
    """A one-line warning when ``uri`` carries a password (None when it carries none)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.password is None and not _SECRET_PARAMETER.search(uri):
        return None
    scheme = parts.scheme.lower()
    if scheme in _HTTP_PORTS:
        instead = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    elif scheme.startswith("postgresql"):
        instead = "PGPASSWORD or a ~/.pgpass file (PGPASSFILE)"
    else:
        instead = "the database driver's environment variable or password file"
    return (
        f"warning: {flag} {_show(uri)} carries a password, which other users of this machine "
        f"can see (ps, shell history, job logs); put it in {instead} instead"
    )


def warn_about_passwords(*flagged: tuple[str, str | None]) -> None:
    """Print :func:`password_warning` on stderr for each ``(flag, uri)`` that carries one, once
    per command: the worker processes a search starts inherit :data:`WARNED` and stay quiet."""
    if os.environ.get(WARNED):
        return
    for flag, uri in flagged:
        warning = password_warning(uri, flag) if uri else None
        if warning:
            print(warning, file=sys.stderr)


#: Set for the processes a command starts once it has warned about a password in a URI.
WARNED = "CROPSEARCH_PASSWORD_WARNED"

#: MLflow's own retrying of an HTTP call (its default: 7 retries with backoff, minutes) off,
#: and a bound on one call, so :data:`search.ops.retry.RETRY_SECONDS` is the whole wait.
MLFLOW_HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def bound_mlflow_retries(tracking_uri: str | None) -> None:
    """For an ``http(s)://`` tracking server, set :data:`MLFLOW_HTTP_SETTINGS` in this process
    (and the processes it starts) unless the user set them."""
    if tracking_uri and tracking_uri.lower().startswith(("http://", "https://")):
        for name, value in MLFLOW_HTTP_SETTINGS.items():
            os.environ.setdefault(name, value)


def refused_credentials(error: BaseException) -> str | None:
    """The one-line reason when ``error`` is a tracking server refusing the credentials
    (HTTP 401/403 from MLflow's client), else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ == "MlflowException":
            found = re.search(r"error code (401|403)", str(current))
            if found:
                return (
                    "the MLflow tracking server refused the credentials "
                    f"(HTTP {found[1]}); {_CREDENTIALS}"
                )
        current = current.__cause__ or current.__context__
    return None


_CREDENTIALS = (
    "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
)


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
    """``GET /health`` answers 200 on an MLflow tracking server, and an API call with the
    credentials MLflow's client would send is accepted (each within the timeout)."""
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else f"{host}"
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    shown = _show(uri)
    code = _get(f"{base}/health", parts, uri)
    if code not in (200, 401, 403):
        raise UriError(
            f"--tracking-uri {shown}: does not answer as an MLflow tracking server "
            f"(HTTP {code} on /health)"
        )
    if code == 200:  # an authenticating server answers /health to anyone
        search = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
        code = _get(search, parts, uri, ANSWER_TIMEOUT)
    if code in (401, 403):
        raise UriError(
            f"--tracking-uri {shown}: the server refused the credentials (HTTP {code}); "
            f"{_CREDENTIALS}"
        )


def _get(url: str, parts: SplitResult, uri: str, timeout: float = CONNECT_TIMEOUT) -> int:
    """The HTTP status of ``GET url`` with MLflow's client credentials (its environment
    variables, else the URI's user-info), TLS settings and ``timeout``."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if not (user and password) and parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user is not None and password is not None:
        pair = f"{user}:{password}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    context = None
    if parts.scheme == "https":
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        context = ssl.create_default_context(
            cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
        )
        if insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = clip(redact(str(getattr(error, "reason", error))))
        raise UriError(
            f"--tracking-uri {_show(uri)}: no answer from the tracking server ({reason}; "
            f"waited at most {timeout:.0f}s)"
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
    """Refuse a bad study name or store URI before anything is created (each within seconds);
    then warn about a password in a URI (a refused one is the command's only line)."""
    from search.names import check_study_name

    bound_mlflow_retries(tracking_uri)
    if study is not None:
        check_study_name(study)
    if storage is not None:
        check_storage_uri(storage)
    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    warn_about_passwords(("--storage", storage), ("--tracking-uri", tracking_uri))
