"""Two networks' confirmations compared: Kendall's tau on rankings with a known answer, the
bootstrap interval, and a network that has not learned never ranked."""

from __future__ import annotations

import dataclasses

import pytest

from search.study.confirm.agreement import compare, has_learned, kendall, rank_agreement
from search.study.confirm.model import Confirmation, network_label, network_size, summarize
from search.study.record import TrialRecord
from tests.test_study_confirm_model import confirm_runs, levels, record


def test_kendall_tau_on_rankings_with_a_known_answer() -> None:
    assert kendall([1, 2, 3, 4], [10, 20, 30, 40])[0] == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    # One swapped pair of six: (5 concordant - 1 discordant) / 6.
    assert kendall([1, 2, 3, 4], [1, 2, 4, 3])[0] == pytest.approx(4 / 6)
    assert kendall([1, 2, 3], [5, 5, 5]) == (0.0, 1.0)


def test_the_bootstrap_interval_is_tight_when_seeds_agree_and_wide_when_they_do_not() -> None:
    steady = rank_agreement(
        [[1.0, 1.01], [2.0, 2.01], [3.0, 3.01]], [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    )
    assert steady.tau == pytest.approx(1.0) and steady.low == pytest.approx(1.0)
    noisy = rank_agreement(
        [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]], [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    )
    assert noisy.low is not None and noisy.low < 0 < noisy.high  # type: ignore[operator]


def test_chance_level_is_not_learned() -> None:
    assert not has_learned(0.17, 6) and not has_learned(0.26, 6) and has_learned(0.27, 6)


def _confirmation(values: dict[int, list[float]], network: str = "") -> Confirmation:
    seeds = [1, 2]
    chosen: list[TrialRecord] = [record(0, "full"), *(record(n) for n in values if n)]
    chosen = [
        c.model_copy(update={"policy": {**c.policy, "context": c.number / 10}}) for c in chosen
    ]
    runs = [
        r.model_copy(update={"policy": chosen[r.number].policy})
        for r in confirm_runs(values, seeds)
    ]
    outcome = summarize(chosen, runs, seeds, 4, 1.0, levels())
    return dataclasses.replace(outcome, network=network, classes=6)


def test_two_learned_networks_are_ranked_and_a_different_winner_is_named() -> None:
    own = _confirmation({0: [0.5, 0.5], 1: [0.9, 0.9], 2: [0.7, 0.7]})
    other = _confirmation({0: [0.4, 0.4], 1: [0.6, 0.6], 2: [0.8, 0.8]}, "keras:Net")
    comparison = compare(own, other, "s")
    assert comparison.tau is not None and comparison.tau.tau == pytest.approx(1 / 3)
    assert not comparison.top1_agrees
    assert any("the winner differs" in line for line in comparison.lines())


def test_a_network_at_chance_is_reported_with_the_command_and_never_ranked() -> None:
    own = _confirmation({0: [0.5, 0.5], 1: [0.9, 0.9], 2: [0.7, 0.7]})
    other = _confirmation({0: [0.16, 0.17], 1: [0.18, 0.17], 2: [0.15, 0.16]}, "keras:Net@96x96")
    comparison = compare(own, other, "s")
    assert comparison.tau is None
    (line,) = comparison.lines()
    assert "keras:Net@96x96 is not trained enough to judge" in line
    assert "cropsearch confirm --study s --model keras:Net --size 96,96 --epochs 12" in line


def test_network_labels() -> None:
    assert network_label(None, None) == ""
    assert network_label(None, (96, 96)) == "compact_cnn@96x96"
    assert network_label("keras:MobileNetV3Small", None) == "keras:MobileNetV3Small"
    assert network_size("m:Net@64x80") == [64, 80] and network_size("m:Net") is None
