"""``cropsearch dashboard``: optuna-dashboard (the ``dashboard`` extra) serving a study's
Optuna storage on a threaded ``wsgiref`` server, as optuna-dashboard's own CLI does."""

from __future__ import annotations

from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class DashboardError(Exception):
    """The dashboard cannot start: its extra is missing, or the address is taken."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Leave the terminal to the printed link: no line per request."""


def dashboard_server(storage: str, study: str, host: str, port: int) -> tuple[WSGIServer, str]:
    """optuna-dashboard's app on ``storage``, bound to ``host:port`` (call ``serve_forever``),
    and the path of the Optuna study ``study``'s page on it."""
    import optuna  # off the CLI's import path

    try:
        import optuna_dashboard
    except ImportError:
        raise DashboardError(
            "the dashboard needs optuna-dashboard: pip install 'cropsearch[dashboard]'"
        ) from None
    opened = optuna.storages.get_storage(storage)  # one storage for the app and the link
    app = optuna_dashboard.wsgi(opened)
    page = f"/dashboard/studies/{opened.get_study_id_from_name(study)}"
    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    except OSError as error:
        raise DashboardError(f"cannot serve on {host}:{port}: {error.strerror}") from None
    return server, page
