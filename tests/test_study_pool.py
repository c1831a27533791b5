"""How the training processes share this machine's cores."""

from __future__ import annotations

import pytest

from search.study.pool import core_split


def test_the_core_split_is_one_process_per_core_at_most_four(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CROPSEARCH_PROCESSES")
    assert (core_split(cores=2).processes, core_split(cores=2).threads) == (2, 1)
    assert (core_split(cores=1).processes, core_split(cores=1).threads) == (1, 1)
    assert (core_split(cores=16).processes, core_split(cores=16).threads) == (4, 4)
    assert (core_split(1, cores=8).processes, core_split(1, cores=8).threads) == (1, 8)
    assert str(core_split(3, cores=8)) == "3 processes x 2 thread(s)"
    monkeypatch.setenv("CROPSEARCH_PROCESSES", "3")
    assert core_split(cores=8).processes == 3
    assert core_split(2, cores=8).processes == 2, "the option wins"
