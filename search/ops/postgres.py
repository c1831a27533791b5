"""PostgreSQL through psycopg 3 (the ``[postgres]`` extra) for plain ``postgresql://`` URLs.

SQLAlchemy, which Optuna's RDB storage and MLflow's database store both use, maps
``postgresql://`` to the older ``psycopg2`` driver. With only ``psycopg`` (3) installed,
:func:`prefer_psycopg` makes plain ``postgresql://`` URLs use it in this process, so a user
writes the same URL for ``--storage`` and ``--tracking-uri`` whichever driver they have.
A separate ``mlflow server`` process needs the explicit ``postgresql+psycopg://`` form.
"""

from __future__ import annotations

import importlib.util

_done = False


def prefer_psycopg() -> None:
    """Route ``postgresql://`` to psycopg 3 when psycopg2 is missing and psycopg is installed."""
    global _done
    if _done:
        return
    _done = True
    if importlib.util.find_spec("psycopg2") is not None:
        return
    if importlib.util.find_spec("psycopg") is None:
        return
    from sqlalchemy.dialects import registry

    registry.register("postgresql", "sqlalchemy.dialects.postgresql.psycopg", "PGDialect_psycopg")
