"""The study-level views on the parent run: leaderboard, history, importances, best policy,
gallery, the confirmation's table, plot and robustness table, and a multi-objective study's
Pareto front. Engine-agnostic: built from
records."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from search.data import Dataset
from search.results.export import policy_document, policy_yaml
from search.results.report import (
    confirmation_csv,
    leaderboard,
    leaderboard_csv,
    pareto_csv,
    robustness_csv,
)
from search.results.tracking import Tracker
from search.results.winner_model import log_winner_model
from search.settings import StudyKey
from search.study.background import Writes
from search.study.confirm.agreement import compare
from search.study.confirm.model import Confirmation, needs_exact_boxes
from search.study.record import TrialRecord
from search.study.selection import baseline_record, best_record, chosen_record

Printer = Callable[[str], None]
#: Validation samples shown in the best-vs-baseline gallery.
GALLERY_SAMPLES = 8
#: Seconds between refreshes of the parent run's views during a search.
REFRESH_SECONDS = 60.0


def log_study_views(
    tracker: Tracker,
    parent_id: str,
    records: Sequence[TrialRecord],
    data: Dataset,
    importances: Mapping[str, float],
    confirmation: Confirmation | None,
    attrs: Mapping[str, Any],
    final: Sequence[TrialRecord] | None = None,
    gallery: bool = True,
    others: Sequence[Confirmation] = (),
) -> None:
    """Write (or overwrite) every study-level artifact and metric of the parent run. ``final``
    (the confirmation runs, maybe none) marks the study's last write: the winner's own run then
    gets the policy file and the trained model (:func:`log_winner`). Without ``gallery``, the
    best-vs-baseline gallery is left as it is (a refresh whose best is unchanged). ``others``:
    the confirmations on other networks, beside the study's own in ``confirmation.csv``."""
    from search.results.figures import (  # matplotlib only when the views are written
        confirmation_plot,
        optimization_history,
        pareto_figure,
        policy_gallery,
        robustness_heatmap,
    )
    from search.results.figures import (
        importances as importances_figure,
    )

    board = leaderboard(records)
    tracker.log_text(parent_id, leaderboard_csv(board, confirmation), "leaderboard.csv")
    searched = sorted((r for r in records if r.stage == "search"), key=lambda r: r.number)
    values: list[float | None] = [None] * (max((r.number for r in searched), default=-1) + 1)
    for r in searched:
        if r.state == "complete":
            values[r.number] = r.val_accuracy
    base = baseline_record(records)
    if any(v is not None for v in values):
        figure = optimization_history(values, base.val_accuracy if base else None)
        tracker.log_figure(parent_id, figure, "optimization_history.png")
    if importances:
        tracker.log_figure(
            parent_id, importances_figure(dict(importances)), "param_importances.png"
        )
    objectives = attrs.get(StudyKey.OBJECTIVE_BOXES) or []
    if objectives and any(r.val_by_boxes for r in records):
        tracker.log_text(parent_id, pareto_csv(records, objectives, confirmation), "pareto.csv")
        tracker.log_figure(
            parent_id, pareto_figure(records, objectives, confirmation), "pareto.png"
        )
    chosen = chosen_record(records, confirmation)
    metrics: dict[str, float] = {}
    if chosen is not None:
        document = policy_yaml(policy_document(chosen, attrs, confirmation))
        tracker.log_text(parent_id, document, "best_policy.yaml")
        if base is not None and gallery:
            shown = {"baseline": base.crop_policy, "best": chosen.crop_policy}
            figure = policy_gallery(
                shown, data.val.take(slice(0, GALLERY_SAMPLES)), data.class_names
            )
            tracker.log_figure(parent_id, figure, "best_vs_baseline.png")
        metrics["best_val_accuracy"] = chosen.val_accuracy or 0.0
        if base is not None:
            metrics["baseline_val_accuracy"] = base.val_accuracy or 0.0
    tags: dict[str, str] = {}
    if confirmation is not None:
        study = str(attrs.get(StudyKey.STUDY, ""))
        table = confirmation_csv(confirmation, others, study)
        tracker.log_text(parent_id, table, "confirmation.csv")
        tracker.log_text(parent_id, robustness_csv(confirmation), "robustness.csv")
        tracker.log_figure(parent_id, robustness_heatmap(confirmation), "robustness.png")
        tracker.log_figure(parent_id, confirmation_plot(confirmation), "confirmation.png")
        warning = needs_exact_boxes(confirmation)
        summary = confirmation.verdict + (f"\n{warning}" if warning else "")
        tracker.log_text(parent_id, summary + "\n", "verdict.txt")
        win = confirmation.winner_summary
        metrics["confirmed_val_mean"] = win.val.mean
        metrics["confirmed_test_mean"] = win.test.mean
        if win.test_vs_baseline is not None:
            metrics["confirmed_test_diff_vs_baseline"] = win.test_vs_baseline.mean
        tags = {
            "confirmed_winner": str(confirmation.winner),
            "confirm_seeds": ",".join(str(seed) for seed in confirmation.seeds),
            "verdict": confirmation.verdict[:5000],
            "mlflow.note.content": summary,
        }
        for other in others:
            comparison = compare(confirmation, other, study)
            name = "".join(c if c.isalnum() or c in "-._" else "_" for c in other.network)
            tags[f"network.{name}"] = "; ".join([other.verdict, *comparison.lines()])[:5000]
            metrics[f"network.{name}.confirmed_val_mean"] = other.winner_summary.val.mean
            if comparison.tau is not None:
                metrics[f"network.{name}.kendall_tau"] = comparison.tau.tau
    if final is not None and chosen is not None:
        uri = log_winner(tracker, chosen, final, data, confirmation, attrs)
        if uri is not None:
            tags["winner_model"] = uri
    if metrics:
        tracker.log_metrics(parent_id, metrics, len(records))
    if tags:
        tracker.set_tags(parent_id, tags)


def log_winner(
    tracker: Tracker,
    chosen: TrialRecord,
    confirm_records: Sequence[TrialRecord],
    data: Dataset,
    confirmation: Confirmation | None,
    attrs: Mapping[str, Any],
) -> str | None:
    """Give the chosen trial's run the exported policy file (``policy.yaml``) and the trained
    model with the crop layer in front; returns the model's URI (None when no run kept the
    weights). With a confirmation, the model is the one its first confirmation seed trained
    (on the full training split); else the search trial's own."""
    if chosen.run_id is None:
        return None
    tracker.log_text(
        chosen.run_id, policy_yaml(policy_document(chosen, attrs, confirmation)), "policy.yaml"
    )
    source = chosen.run_id
    if confirmation is not None:
        trained = {
            r.train.seed: r.run_id
            for r in confirm_records
            if r.number == chosen.number and r.state == "complete" and r.run_id is not None
        }
        source = next((trained[s] for s in confirmation.seeds if s in trained), source)
    policy, config = chosen.crop_policy, chosen.train
    return log_winner_model(tracker, chosen.run_id, policy, config, data.n_classes, source)


class ViewRefresh:
    """Rewrites the parent run's views while a study runs, so a running search is browsable:
    at most once every ``interval`` seconds, on a background thread (off the training path);
    :meth:`join` waits for a write in progress, before the final views. A refresh leaves out
    what costs CPU that training needs: the importances (written at the end) and the gallery
    while the best trial is the same."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = REFRESH_SECONDS if interval is None else interval
        self._last = time.monotonic()
        self._writes: Writes | None = None
        self._shown: int | None = None

    def new_best(self, records: Sequence[TrialRecord]) -> bool:
        """Whether the best trial changed since the last call (its gallery is then redrawn)."""
        best = best_record(records)
        number = None if best is None else best.number
        changed, self._shown = number != self._shown, number
        return changed

    def maybe(self, write: Callable[[], None]) -> bool:
        """Start ``write`` unless one ran less than ``interval`` seconds ago or is running."""
        now = time.monotonic()
        if now - self._last < self.interval or (self._writes and not self._writes.idle()):
            return False
        self._last = now
        self.join()
        self._writes = Writes()
        self._writes.submit(write)
        return True

    def join(self) -> None:
        """Wait for the write in progress (its error, if any, is dropped: the final views
        are written again)."""
        if self._writes is not None:
            self._writes.join(raise_errors=False)
            self._writes = None
