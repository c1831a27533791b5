"""What people read: progress lines, the leaderboard, confirmation and robustness tables (as
data and as terminal tables), built from :class:`TrialRecord` and :class:`Confirmation`
values (no engine, no MLflow)."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from search.data.boxes import BoxSource
from search.settings import DEFAULT_BOXES, DEFAULT_POLICY_FILE
from search.study.confirm.agreement import compare
from search.study.confirm.boxes import BOX_LEVELS
from search.study.confirm.model import Confirmation, PolicySummary, needs_exact_boxes
from search.study.record import OBJECTIVE, TrialRecord
from search.study.selection import baseline_record, best_record, pareto_front, ranked


def clock(seconds: float) -> str:
    """``m:ss``."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def outcome(record: TrialRecord) -> str:
    """How a trial ended, in words."""
    if record.state == "complete":
        text = f"{OBJECTIVE} {record.val_accuracy:.4f}"
        if record.duplicate_of is not None:
            text += f" (same as trial {record.duplicate_of}, not retrained)"
        return text
    if record.state == "pruned":
        return f"pruned at epoch {len(record.history)}"
    return f"FAILED: {record.error or 'see log'}"


def progress_line(
    record: TrialRecord,
    records: Sequence[TrialRecord],
    done: int,
    total: int | None,
    elapsed: float,
    left: float | None,
) -> str:
    """One line per finished trial: outcome, best so far, time."""
    best = best_record(records)
    best_text = f"best {best.val_accuracy:.4f} (#{best.number})" if best else "best -"
    count = f"{done}/{total}" if total else f"{done}"
    left_text = f", ~{clock(left)} left" if left is not None else ""
    return (
        f"[{count}] trial {record.number} {'(baseline) ' if record.baseline else ''}"
        f"{record.label}: {outcome(record)} | {best_text} | {clock(elapsed)} elapsed{left_text}"
    )


@dataclass(frozen=True)
class Row:
    """One leaderboard line."""

    rank: int
    number: int
    value: float
    test_accuracy: float | None
    policy: str
    baseline: bool


def leaderboard(records: Sequence[TrialRecord], top: int = 5) -> list[Row]:
    """The ``top`` complete search trials by objective, plus the baseline when not among them."""
    rows = [
        Row(rank, r.number, r.val_accuracy or 0.0, r.test_accuracy, r.label, r.baseline)
        for rank, r in enumerate(ranked(records), start=1)
    ]
    return [r for r in rows if r.rank <= top or r.baseline]


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def leaderboard_csv(rows: Sequence[Row], confirmation: Confirmation | None = None) -> str:
    """The leaderboard as CSV text; with a confirmation, its verdict as a last comment line."""
    text = _csv(
        ["rank", "trial", OBJECTIVE, "test_accuracy", "policy", "baseline"],
        [
            [r.rank, r.number, f"{r.value:.4f}", _num(r.test_accuracy), r.policy, r.baseline]
            for r in rows
        ],
    )
    if confirmation is not None:
        text += f"# confirmed: {confirmation.verdict}\n"
    return text


def rows_as_table(rows: Sequence[Row]) -> list[list[str]]:
    """Leaderboard rows as printable cells."""
    return [
        [
            str(r.rank),
            str(r.number),
            f"{r.value:.4f}",
            _num(r.test_accuracy) or "-",
            r.policy + ("  (baseline)" if r.baseline else ""),
        ]
        for r in rows
    ]


def summary_lines(records: Sequence[TrialRecord]) -> list[str]:
    """Counts by state and the single-run best-minus-baseline difference."""
    states = Counter(r.state for r in records)
    lines = ["trials: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))]
    best, base = best_record(records), baseline_record(records)
    if best is not None and base is not None:
        b, f = best.val_accuracy or 0.0, base.val_accuracy or 0.0
        lines.append(
            f"best - baseline (single screening runs): {b:.4f} - {f:.4f} = "
            f"{100 * (b - f):+.2f} points of {OBJECTIVE}"
        )
    return lines


CONFIRMATION_HEADER = [
    "trial",
    "policy",
    "baseline",
    "winner",
    "n",
    "val_mean",
    "val_std",
    "test_mean",
    "test_std",
    "val_diff",
    "val_diff_low",
    "val_diff_high",
    "test_diff",
    "test_diff_low",
    "test_diff_high",
    "dropped_after",
    "network",
]


def confirmation_rows(confirmation: Confirmation) -> list[list[Any]]:
    """One row per confirmed policy (CSV cells), the winner first."""
    ordered = sorted(
        confirmation.summaries, key=lambda s: (s.number != confirmation.winner, -s.val.mean)
    )
    rows = []
    for s in ordered:
        cells: list[Any] = [
            s.number,
            s.label,
            s.baseline,
            s.number == confirmation.winner,
            s.val.n,
            _num(s.val.mean),
            _num(s.val.std),
            _num(s.test.mean),
            _num(s.test.std),
        ]
        for diff in (s.val_vs_baseline, s.test_vs_baseline):
            cells += ["", "", ""] if diff is None else [_num(diff.mean), diff.low, diff.high]
        cells.append("" if s.dropped_after is None else s.dropped_after)
        cells.append(confirmation.network or "study")
        rows.append(cells)
    return rows


def confirmation_csv(
    confirmation: Confirmation, others: Sequence[Confirmation] = (), study: str = ""
) -> str:
    """``confirmation.csv``: per policy mean ± std and the paired intervals vs the baseline,
    for the study's network and then each other network (``others``), then the verdicts and
    how each other network's ranking agrees with the study's."""
    rows = [
        [_num(c) if isinstance(c, float) else c for c in row]
        for c in (confirmation, *others)
        for row in confirmation_rows(c)
    ]
    notes = [f"# {confirmation.verdict}"]
    for other in others:
        notes.append(f"# on {other.network}: {other.verdict}")
        notes += [f"# {line}" for line in compare(confirmation, other, study).lines()]
    return _csv(CONFIRMATION_HEADER, rows) + "\n".join(notes) + "\n"


def confirmation_table(confirmation: Confirmation) -> list[list[str]]:
    """Printable cells: policy, val and test mean ± std, test difference vs the baseline."""
    table = []
    for s in sorted(confirmation.summaries, key=lambda s: -s.val.mean):
        mark = " *" if s.number == confirmation.winner else ""
        diff = s.test_vs_baseline
        table.append(
            [
                f"{s.number}{mark}",
                s.label
                + ("  (baseline)" if s.baseline else "")
                + (f"  (dropped after {s.dropped_after} seeds)" if s.dropped_after else ""),
                f"{s.val.mean:.4f} ± {s.val.std:.4f}",
                f"{s.test.mean:.4f} ± {s.test.std:.4f}",
                "-" if diff is None else str(diff),
                str(s.val.n),
            ]
        )
    return table


ROBUSTNESS_LEVELS = ("exact", *BOX_LEVELS)


def robustness_levels(confirmation: Confirmation) -> list[str]:
    """The box levels measured, from exact to none, then any other (a detector's boxes)."""
    known = [name for name in ROBUSTNESS_LEVELS if name in confirmation.box_levels]
    return known + sorted(set(confirmation.box_levels) - set(ROBUSTNESS_LEVELS))


def winner_first(confirmation: Confirmation) -> list[PolicySummary]:
    """The confirmed policies, the winner first, then by validation mean."""
    return sorted(
        confirmation.summaries, key=lambda s: (s.number != confirmation.winner, -s.val.mean)
    )


def robustness_rows(confirmation: Confirmation) -> list[list[Any]]:
    """Every confirmed policy (the winner first, then by validation mean): its test accuracy
    with each kind of box, mean and std over the seeds (empty cells: not measured)."""
    rows = []
    for s in winner_first(confirmation):
        row: list[Any] = [s.number, s.label, s.baseline, s.number == confirmation.winner]
        for level in robustness_levels(confirmation):
            est = s.robustness.get(level)
            row += ["", ""] if est is None else [_num(est.mean), _num(est.std)]
        rows.append(row)
    return rows


def robustness_header(confirmation: Confirmation) -> list[str]:
    """Column names of :func:`robustness_rows`."""
    header = ["trial", "policy", "baseline", "winner"]
    for level in robustness_levels(confirmation):
        header += [f"{level}_test_mean", f"{level}_test_std"]
    return header


def level_ious(confirmation: Confirmation) -> str:
    """What each level is: its measured mean IoU with the annotated boxes."""
    parts = []
    for level in robustness_levels(confirmation):
        iou = confirmation.box_levels[level].get("mean_iou")
        parts.append("none (no box: full image)" if level == "none" else f"{level} {_num(iou)}")
    return "mean IoU with the annotated boxes: " + ", ".join(parts)


def robustness_csv(confirmation: Confirmation) -> str:
    """``robustness.csv``: policy x box level, the levels' mean IoU in a closing comment."""
    return _csv(robustness_header(confirmation), robustness_rows(confirmation)) + (
        f"# {level_ious(confirmation)}; chosen for {confirmation.boxes}\n"
    )


def pareto_points(
    records: Sequence[TrialRecord], objectives: Sequence[str]
) -> tuple[list[str], list[TrialRecord], set[int]]:
    """A multi-objective study's scored trials: the objectives' names, the complete search
    trials scored on all of them (best by the first first) and the Pareto front's numbers."""
    names = [BoxSource.parse(spec).name for spec in objectives]
    scored = [r for r in ranked(records) if all(n in r.val_by_boxes for n in names)]
    return names, scored, {r.number for r in pareto_front(records, names)}


def pareto_csv(
    records: Sequence[TrialRecord], objectives: Sequence[str], confirmation: Confirmation | None
) -> str:
    """``pareto.csv``: every scored trial of a multi-objective study with its validation
    accuracy per box source and whether it is on the Pareto front (front first), and the
    front's confirmed test accuracy per source (mean over the seeds)."""
    names, scored, front = pareto_points(records, objectives)
    confirmed = {s.number: s for s in confirmation.summaries} if confirmation else {}
    header = ["trial", "policy", "baseline", "pareto_front"]
    header += [f"{n}_val" for n in names] + [f"{n}_test_mean" for n in names]
    rows = []
    for r in sorted(scored, key=lambda r: r.number not in front):
        summary = confirmed.get(r.number) if r.number in front or r.baseline else None
        tests = [summary.robustness.get(n) if summary else None for n in names]
        rows.append(
            [r.number, r.label, r.baseline, r.number in front]
            + [_num(r.val_by_boxes[n]) for n in names]
            + [_num(t.mean) if t is not None else "" for t in tests]
        )
    return _csv(header, rows) + f"# objectives: {', '.join(objectives)}\n"


def robustness_table(confirmation: Confirmation) -> tuple[list[str], list[list[str]]]:
    """Printable policy x level cells: test mean ± std per kind of box (* = the boxes the
    winner was chosen for)."""
    levels = robustness_levels(confirmation)
    chosen = BoxSource.parse(confirmation.boxes).name
    header = ["trial", "policy", *(level + (" *" if level == chosen else "") for level in levels)]
    table = []
    for row, s in zip(robustness_rows(confirmation), winner_first(confirmation), strict=True):
        mark = " *" if s.number == confirmation.winner else ""
        cells = [f"{s.number}{mark}", s.label + ("  (baseline)" if s.baseline else "")]
        for k in range(len(levels)):
            mean, std = row[4 + 2 * k], row[5 + 2 * k]
            cells.append("-" if mean == "" else f"{mean} ± {std}")
        table.append(cells)
    return header, table


def _console() -> Console:
    console = Console()
    if not console.is_terminal:  # a log file: do not fold policy labels at 80 columns
        console.width = 140
    return console


def print_leaderboard(records: Sequence[TrialRecord], boxes: str = DEFAULT_BOXES) -> None:
    """The screening leaderboard and the single-run summary, as a terminal table (its title
    names the boxes validation was scored with, when not the annotations)."""
    source = BoxSource.parse(boxes)
    scored = "" if source.exact else f"; scored with {source.describe()}"
    table = Table(title=f"screening leaderboard (single runs; top 5 and the baseline{scored})")
    for column in ("rank", "trial", OBJECTIVE, "test_accuracy", "policy"):
        table.add_column(column)
    for cells in rows_as_table(leaderboard(records)):
        table.add_row(*cells)
    console = _console()
    console.print(table)
    for line in summary_lines(records):
        console.print(line)


def print_comparisons(
    confirmation: Confirmation, others: Sequence[Confirmation], study: str, tables: bool = True
) -> None:
    """Each other network's confirmation table (``tables``) and verdict, and how its ranking
    agrees with the study's network's."""
    console = _console()
    for other in others:
        if tables:
            console.print(_confirmation_table(other, f" on {other.network}"))
            console.print(f"verdict on {other.network}: {other.verdict}", highlight=False)
        for line in compare(confirmation, other, study).lines():
            console.print(line, highlight=False)


def _confirmation_table(confirmation: Confirmation, on: str = "") -> Table:
    table = Table(
        title=f"confirmation{on}: {confirmation.summaries[0].val.n} seeds x {confirmation.epochs} "
        f"epochs on {confirmation.train_fraction:.0%} of the training data (* = winner, "
        "by validation mean)"
    )
    for column in ("trial", "policy", "val mean ± std", "test mean ± std", "test vs baseline"):
        table.add_column(column)
    table.add_column("n")
    for cells in confirmation_table(confirmation):
        table.add_row(*cells)
    return table


def print_confirmation(confirmation: Confirmation) -> None:
    """The confirmation table, the robustness table, the verdict and any warning."""
    console = _console()
    on = f" on {confirmation.network}" if confirmation.network else ""
    console.print(_confirmation_table(confirmation, on))
    robustness = Table(
        title="robustness: test accuracy with the boxes met in use (mean ± std over the seeds)"
    )
    header, rows = robustness_table(confirmation)
    for column in header:
        robustness.add_column(column)
    for row in rows:
        robustness.add_row(*row)
    console.print(robustness)
    console.print(level_ious(confirmation), highlight=False)
    console.print(f"verdict: {confirmation.verdict}", highlight=False)
    warning = needs_exact_boxes(confirmation)
    if warning:
        console.print(f"warning: {warning}", highlight=False)


def next_steps(study: str, winner_model: str | None) -> list[str]:
    """What a finished search suggests next: export, the winner's model, the UI."""
    lines = [f"export the winner:  cropsearch export --study {study} -o {DEFAULT_POLICY_FILE}"]
    if winner_model is not None:
        lines.append(f"winner model:       mlflow.keras.load_model({winner_model!r})")
    return [*lines, "browse the runs:    cropsearch ui"]
