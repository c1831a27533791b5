"""Inside ``signals.deferred()`` a signal is remembered and raised when the block ends, so steps
that belong together (a run created and noted on its trial) are not split by an interrupt."""

from __future__ import annotations

import os
import signal

import pytest

from search.signals import Interrupted, deferred, handled


def test_a_signal_in_a_deferred_block_is_raised_when_the_block_ends() -> None:
    steps = []
    with handled(), pytest.raises(Interrupted) as caught:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("after the signal")
        steps.append("after the block")
    assert steps == ["after the signal"]
    assert caught.value.exit_code == 143


def test_outside_a_deferred_block_a_signal_raises_at_once() -> None:
    steps = []
    with handled(), pytest.raises(Interrupted):
        with deferred():
            steps.append("deferred")
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("after the signal")
    assert steps == ["deferred"]
