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


QUIET_TF = """
from search.ops.quiet import quiet_tensorflow
quiet_tensorflow()
import tensorflow as tf
print(len(tf.config.list_physical_devices("CPU")))
print(float(tf.reduce_sum(tf.ones((2, 2)))))
"""


def test_tensorflow_s_start_up_lines_stay_off_the_terminal() -> None:
    """Import, the first device listing (CUDA's absence on a machine without a GPU driver is
    logged at error level) and the first op: nothing on file descriptor 2."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", QUIET_TF], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "4.0"]
    assert done.stderr == ""
