"""The pruning rule of the Optuna engine, TF-free: which pruner a study gets, and when a trial
reports an epoch and may be stopped after it."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from search.settings import Pruner
from search.study.record import OBJECTIVE

#: Called after each epoch with its 0-based number and metrics; True stops the trial.
EpochCallback = Callable[[int, dict[str, float]], bool]


def make_pruner(pruner: Pruner, n_anchors: int, epochs: int) -> optuna.pruners.BasePruner:
    """Anchor trials (baseline and one per kind) are never pruned by the median rule;
    cosine-decay runs are noisy early, so a trial is compared only from the second half of
    its epochs. Hyperband's rungs are epochs of validation accuracy."""
    if pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_anchors, n_warmup_steps=max(1, epochs // 2)
    )


def may_prune(baseline: bool, epoch: int, epochs: int) -> bool:
    """Whether the pruner may stop a trial after ``epoch`` (0-based) of ``epochs``: never the
    baseline, and never after the last epoch (stopping then saves nothing)."""
    return not baseline and epoch + 1 < epochs


def epoch_pruning(
    trial: optuna.Trial, baseline: bool, epochs: int, objectives: int
) -> EpochCallback:
    """The callback a trial trains with: it reports each epoch's validation accuracy to the
    study's pruner and stops the trial when :func:`may_prune` allows and the pruner says so.
    A study with several ``objectives`` is never pruned (Optuna prunes single-objective
    studies only) and gets no reports."""

    def prune(epoch: int, metrics: dict[str, float]) -> bool:
        if objectives > 1:
            return False
        trial.report(metrics[OBJECTIVE], epoch)
        return may_prune(baseline, epoch, epochs) and trial.should_prune()

    return prune
