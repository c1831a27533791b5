"""Every figure the tool writes keeps its text inside itself: drawn with long labels (a
winner with many fields, a long verdict, long class and parameter names), no text artist's
extent leaves the figure, as the PNG would cut it off."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import numpy as np
import pytest
from matplotlib.backend_bases import RendererBase
from matplotlib.figure import Figure
from matplotlib.text import Text

from search.crop.policy import CropPolicy
from search.data import Samples
from search.results import figures
from search.settings import TrainConfig
from search.study.confirm.model import Confirmation, summarize
from search.study.record import TrialRecord

#: A winner whose label is long (every field away from its default).
WINNER = CropPolicy(kind="object_random", context=0.35, fraction=0.4, min_object_covered=0.7,
                    aspect_ratio=1.5, box_noise=0.2, border="pad", fit="letterbox")  # fmt: skip
OTHER = CropPolicy(kind="random_resized", fraction=0.3, aspect_ratio=0.75)
CLASSES = ["circle", "a rather long class name", "triangle"]


def _samples(n: int = 4) -> Samples:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, 40, 48, 3), dtype=np.uint8)
    sizes = np.array([[40, 48]] * n)
    boxes = np.array([[8.0, 6.0, 30.0, 28.0]] * n)
    return Samples(images, sizes, boxes, np.arange(n) % len(CLASSES))


def _record(number: int, policy: CropPolicy, value: float, seed: int = 0) -> TrialRecord:
    return TrialRecord.model_validate(
        {
            "study": "s", "number": number, "state": "complete", "baseline": number == 0,
            "policy": policy.to_dict(), "train": TrainConfig(seed=seed), "val_accuracy": value,
            "test_accuracy": value,
            "robustness": {"iou0.9": value - 0.01, "iou0.75": value - 0.05, "none": 0.5},
        }
    )  # fmt: skip


def _confirmation() -> Confirmation:
    seeds = [11, 12, 13]
    policies = {0: CropPolicy(kind="full"), 1: WINNER, 2: OTHER}
    means = {0: 0.60, 1: 0.81, 2: 0.70}
    runs = [
        _record(n, policies[n], means[n] + 0.01 * k, seed)
        for n in policies
        for k, seed in enumerate(seeds)
    ]
    described: dict[str, dict[str, float | None]] = {
        "exact": {"mean_iou": 1.0}, "iou0.9": {"mean_iou": 0.9}, "iou0.75": {"mean_iou": 0.75},
        "none": {"mean_iou": None},
    }  # fmt: skip
    chosen = [_record(n, policies[n], means[n]) for n in policies]
    return summarize(chosen, runs, seeds, 4, 1.0, described, boxes="iou:0.75")


def _pareto_trials() -> list[TrialRecord]:
    """Trials of a two-objective study: the front at the plot's corners, labels at its edges."""
    scores = {0: (0.60, 0.60), 1: (1.0, 0.0), 2: (0.9, 0.8), 3: (0.0, 1.0), 4: (0.5, 0.5)}
    return [
        _record(n, CropPolicy(kind="full") if n == 0 else WINNER, a).model_copy(
            update={"val_by_boxes": {"exact": a, "detections": b}}
        )
        for n, (a, b) in scores.items()
    ]


def _pareto_confirmation() -> Confirmation:
    confirmation = _confirmation()
    summaries = [
        dataclasses.replace(s, robustness={"exact": s.test, "detections": s.val})
        for s in confirmation.summaries
    ]
    return dataclasses.replace(confirmation, summaries=summaries, pareto=[1, 2])


#: Drawings of each figure function, by its name (and how it is called, when twice).
DRAWINGS: dict[str, Callable[[], Figure]] = {
    "policy_gallery": lambda: figures.policy_gallery(
        {"baseline": CropPolicy(kind="full"), "best": WINNER}, _samples(), CLASSES
    ),
    "optimization_history": lambda: figures.optimization_history([0.5, None, 0.7, 0.65], 0.6),
    "importances": lambda: figures.importances(
        {"policy.min_object_covered": 0.5, "train.learning_rate": 0.3, "kind": 0.2}
    ),
    "confirmation_plot": lambda: figures.confirmation_plot(_confirmation()),
    "robustness_heatmap": lambda: figures.robustness_heatmap(_confirmation()),
    "pareto_figure": lambda: figures.pareto_figure(
        _pareto_trials(),
        ["exact", "detections:/a/long/path/to/the/detector's/results.json"],
        _pareto_confirmation(),
    ),
}


def clipped_texts(fig: Figure, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts drawn in ``fig`` (tick labels outside the axes' limits are not) whose extent
    leaves the figure."""
    drawn: list[Text] = []
    draw = Text.draw

    def drawing(text: Text, renderer: RendererBase) -> None:
        drawn.append(text)
        draw(text, renderer)

    with monkeypatch.context() as patch:
        patch.setattr(Text, "draw", drawing)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    inside = fig.bbox
    clipped = []
    for text in drawn:
        if not text.get_visible() or not text.get_text().strip():
            continue
        extent = text.get_window_extent(renderer)
        if (
            extent.x0 < inside.x0 - 0.5
            or extent.y0 < inside.y0 - 0.5
            or extent.x1 > inside.x1 + 0.5
            or extent.y1 > inside.y1 + 0.5
        ):
            clipped.append(text.get_text())
    assert drawn, "nothing was drawn"
    return clipped


def test_every_figure_function_is_drawn() -> None:
    made = {
        name
        for name, function in inspect.getmembers(figures, inspect.isfunction)
        if function.__module__ == figures.__name__
        and inspect.signature(function).return_annotation in (Figure, "Figure")
    }
    assert made == {name.split()[0] for name in DRAWINGS}


@pytest.mark.parametrize("name", sorted(DRAWINGS))
def test_no_text_is_clipped(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    fig = DRAWINGS[name]()
    try:
        assert clipped_texts(fig, monkeypatch) == []
    finally:
        plt.close(fig)
