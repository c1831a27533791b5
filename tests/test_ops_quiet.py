"""SQLAlchemy's cursor-close noise stays off the terminal; its other pool records do not."""

from __future__ import annotations

import logging

import pytest

from search.ops.quiet import quiet_store_noise


def test_the_cursor_close_traceback_is_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    quiet_store_noise()
    quiet_store_noise()  # once is enough: no second handler
    pool = logging.getLogger("sqlalchemy.pool.impl.QueuePool")  # as SQLAlchemy names it
    try:
        raise RuntimeError("Cannot operate on a closed database.")
    except RuntimeError:
        pool.error("Error closing cursor", exc_info=True)
        pool.error("Exception during reset or similar", exc_info=True)
    err = capsys.readouterr().err
    assert "Error closing cursor" not in err
    assert err.count("Exception during reset or similar") == 1, "other records still show"
