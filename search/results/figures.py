"""Pictures for people: the study plots and the policy gallery (matplotlib, Agg backend);
the crop-sample grid is :mod:`search.results.crop_grid`."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from search.crop.policy import CropPolicy
from search.data import Samples
from search.data.boxes import BoxSource
from search.results.crop_grid import BOX_COLOR
from search.results.report import pareto_points, robustness_levels, winner_first
from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord

#: Points per character of DejaVu Sans, a little above its mean width (digits are wide).
CHAR_WIDTH = 0.6


def _fit(text: str, inches: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``inches`` at ``fontsize`` points: a figure keeps
    a long policy label, verdict or class name whole instead of cutting it at its edge."""
    width = max(8, int(72 * inches / (CHAR_WIDTH * fontsize)))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def _rect(window: np.ndarray, color: str, style: str = "-") -> Rectangle:
    x0, y0, x1, y1 = window
    return Rectangle(
        (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.5, linestyle=style
    )


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG and free it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def optimization_history(values: Sequence[float | None], baseline: float | None) -> Figure:
    """Objective per trial (dots), best so far (line) and the baseline (dashed)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    numbers = [i for i, v in enumerate(values) if v is not None]
    done = [v for v in values if v is not None]
    ax.scatter(numbers, done, s=18, label="trial")
    if done:
        ax.plot(numbers, np.maximum.accumulate(done), color="C1", label="best so far")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="baseline (full image)")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def importances(values: dict[str, float]) -> Figure:
    """Horizontal bars of parameter importances."""
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
    ax.barh(names, [values[n] for n in names])
    ax.set_xlabel("importance (Optuna default evaluator)")
    fig.tight_layout()
    return fig


def policy_gallery(
    policies: dict[str, CropPolicy], samples: Samples, class_names: Sequence[str]
) -> Figure:
    """Side by side: each sample with its box (if any), then its eval-mode crop under every
    policy."""
    from search.crop.cut import crop_samples  # TensorFlow only when crops are drawn

    crops = {name: crop_samples(p, samples) for name, p in policies.items()}
    side = 2.0
    fig, axes = plt.subplots(
        len(samples),
        1 + len(policies),
        figsize=(side * (1 + len(policies)), side * len(samples)),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for i in range(len(samples)):
        h, w = samples.sizes[i]
        axes[i, 0].imshow(samples.images[i, :h, :w])
        if samples.has_boxes:
            axes[i, 0].add_patch(_rect(samples.boxes[i], BOX_COLOR))
        axes[i, 0].set_title(_fit(class_names[int(samples.labels[i])], side - 0.2, 7), fontsize=7)
        for k, (name, image) in enumerate(crops.items(), start=1):
            axes[i, k].imshow(image[i])
            if i == 0:
                title = f"{name}\n{policies[name].label()}"
                axes[i, k].set_title(_fit(title, side - 0.2, 6), fontsize=6)
    fig.tight_layout()
    return fig


def confirmation_plot(confirmation: Confirmation) -> Figure:
    """Each confirmed policy's seed-paired validation and test difference from the baseline:
    the mean (dot) and its 95% interval; the winner is marked with a star."""
    shown = [s for s in confirmation.summaries if not s.baseline]
    width, label_inches = 8.0, 2.8
    labels = [
        _fit(("* " if s.number == confirmation.winner else "") + s.label, label_inches, 7)
        for s in shown
    ]
    verdict = _fit(confirmation.verdict, width - 0.4, 7)
    label_lines = sum(label.count("\n") + 1 for label in labels)
    height = max(0.7 * len(shown), 0.14 * label_lines) + 0.14 * verdict.count("\n") + 1.5
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    ax.axvline(0.0, color="gray", linestyle="--", linewidth=1)
    for row, s in enumerate(shown):
        for offset, diff, color, name in (
            (-0.12, s.val_vs_baseline, "C0", "validation"),
            (0.12, s.test_vs_baseline, "C1", "test"),
        ):
            if diff is None:
                continue
            low = diff.low if np.isfinite(diff.low) else diff.mean
            high = diff.high if np.isfinite(diff.high) else diff.mean
            ax.errorbar(
                100 * diff.mean,
                row + offset,
                xerr=[[100 * (diff.mean - low)], [100 * (high - diff.mean)]],
                fmt="o",
                color=color,
                capsize=3,
                label=name if row == 0 else None,
            )
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy minus the full-image baseline (points; mean, 95% interval)", fontsize=8)
    fig.suptitle(verdict, fontsize=7)
    if shown:
        ax.legend(fontsize=7, loc="lower right")
    return fig


def robustness_heatmap(confirmation: Confirmation) -> Figure:
    """Test accuracy of each confirmed policy (rows, the winner first) with each kind of box
    (columns), as a heat-map with the numbers written in; the boxes the winner was chosen for
    are starred."""
    levels = robustness_levels(confirmation)
    shown = winner_first(confirmation)
    means = np.array(
        [[s.robustness[k].mean if k in s.robustness else np.nan for k in levels] for s in shown]
    ).reshape(len(shown), len(levels))
    labels = [("* " if s.number == confirmation.winner else "") + s.label for s in shown]
    chosen = BoxSource.parse(confirmation.boxes).name
    rows, cols = means.shape
    fig, ax = plt.subplots(figsize=(1.2 * cols + 3.8, 0.45 * rows + 1.6))
    ax.imshow(np.nan_to_num(means, nan=0.0), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), value in np.ndenumerate(means):
        text = "-" if np.isnan(value) else f"{value:.3f}"
        color = "black" if not np.isnan(value) and value > 0.6 else "white"
        ax.text(col, row, text, ha="center", va="center", fontsize=7, color=color)
    names = [level + (" *" if level == chosen else "") for level in levels]
    ax.set_xticks(range(cols), names, fontsize=7)
    ax.set_yticks(range(rows), [label[:40] for label in labels], fontsize=7)
    ax.set_xlabel("boxes at inference (* = chosen for)", fontsize=8)
    ax.set_title("test accuracy, mean over the seeds", fontsize=8)
    fig.tight_layout()
    return fig


def pareto_figure(
    records: Sequence[TrialRecord], objectives: Sequence[str], confirmation: Confirmation | None
) -> Figure:
    """A multi-objective study's trials by validation accuracy with its first two box
    sources: the Pareto front joined and numbered, the baseline marked, and the front's
    confirmed test means (crosses) when there is a confirmation."""
    names, scored, front = pareto_points(records, objectives)
    x, y = names[0], names[1]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    others = [r for r in scored if r.number not in front]
    ax.scatter(
        [r.val_by_boxes[x] for r in others],
        [r.val_by_boxes[y] for r in others],
        color="lightgray",
        label="trial",
    )
    members = sorted((r for r in scored if r.number in front), key=lambda r: r.val_by_boxes[x])
    ax.plot(
        [r.val_by_boxes[x] for r in members],
        [r.val_by_boxes[y] for r in members],
        "o-",
        color="C0",
        label="Pareto front (validation)",
    )
    for r in members:
        ax.annotate(f"#{r.number}", (r.val_by_boxes[x], r.val_by_boxes[y]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    base = next((r for r in scored if r.baseline), None)
    if base is not None:
        ax.scatter([base.val_by_boxes[x]], [base.val_by_boxes[y]], marker="s", color="C3",
                   label="full image (baseline)", zorder=3)  # fmt: skip
    if confirmation is not None:
        confirmed = [
            s for s in confirmation.summaries
            if s.number in front and x in s.robustness and y in s.robustness
        ]  # fmt: skip
        ax.scatter([s.robustness[x].mean for s in confirmed],
                   [s.robustness[y].mean for s in confirmed],
                   marker="x", color="C1", label="front, confirmed test mean")  # fmt: skip
    ax.set_xlabel(f"accuracy with {BoxSource.parse(objectives[0]).describe()}", fontsize=8)
    ax.set_ylabel(f"accuracy with {BoxSource.parse(objectives[1]).describe()}", fontsize=8)
    title = "validation accuracy of each trial with the study's box sources"
    if len(objectives) > 2:
        title += f" (first 2 of {len(objectives)})"
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
