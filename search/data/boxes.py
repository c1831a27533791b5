"""The boxes a policy sees at inference (``--boxes``): the annotations, the annotations
disturbed like a detector's, none, or a detector's own.

An object crop is used behind a detector, so a search can be asked for the crop that is best
with the boxes its user will have. A source is written as

- ``exact``: the annotated boxes (the default);
- ``iou:X``: the annotated boxes disturbed to a mean IoU of ``X`` with them (0 < X < 1),
  seeded and calibrated by bisection as the robustness table's levels are;
- ``none``: no box at all; a policy that needs one falls back to the full image;
- ``detections:FILE``: a detector's boxes (:mod:`search.data.detections`); a miss has no box.

Validation and test samples are scored with the source's boxes; training keeps the annotated
ones (a policy's ``box_noise`` disturbs them there). Generated and noisy boxes are the same
for every trial of a study: they depend on the study's seed and the data only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from search.crop.geometry import noise_for_iou, noisy_boxes
from search.data.dataset import Dataset, Samples
from search.data.detections import load_detections, match_detections, report_lines
from search.data.specs import parse_data_spec
from search.settings import derive_seed

SourceKind = Literal["exact", "iou", "none", "detections"]
SYNTAX = "exact, iou:X (0 < X < 1, e.g. iou:0.75), none, or detections:FILE"


class BoxSourceError(ValueError):
    """A ``--boxes`` value that is not a box source."""


@dataclass(frozen=True)
class BoxSource:
    """Where the boxes at inference come from (see the module docstring)."""

    kind: SourceKind = "exact"
    iou: float | None = None
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> BoxSource:
        """Read ``exact``, ``iou:X``, ``none`` or ``detections:FILE``."""
        head, sep, rest = text.strip().partition(":")
        if head in ("exact", "none") and not sep:
            return cls(head)  # type: ignore[arg-type]
        if head == "iou" and sep:
            try:
                value = float(rest)
            except ValueError:
                value = math.nan
            if not 0.0 < value < 1.0:
                raise BoxSourceError(f"--boxes '{text}': the IoU must be a number in (0, 1)")
            return cls("iou", iou=value)
        if head == "detections" and sep and rest.strip():
            return cls("detections", path=rest.strip())
        raise BoxSourceError(f"--boxes '{text}': expected {SYNTAX}")

    @property
    def name(self) -> str:
        """A short name for tables and metric keys: ``exact``, ``iou0.75``, ``none``,
        ``detections``."""
        if self.kind == "iou":
            return f"iou{self.iou:g}"
        return self.kind

    def __str__(self) -> str:
        if self.kind == "iou":
            return f"iou:{self.iou:g}"
        if self.kind == "detections":
            return f"detections:{self.path}"
        return self.kind

    @property
    def exact(self) -> bool:
        """The annotated boxes: nothing changes."""
        return self.kind == "exact"

    def describe(self) -> str:
        """In words, for verdicts: "exact boxes", "boxes of mean IoU 0.75", ..."""
        if self.kind == "iou":
            return f"boxes of mean IoU {self.iou:g}"
        if self.kind == "detections":
            return f"the detections in {self.path}"
        return "exact boxes" if self.kind == "exact" else "no boxes (full image)"


#: The robustness table's levels, from exact to no box.
LEVELS: tuple[BoxSource, ...] = (
    BoxSource("exact"),
    BoxSource("iou", iou=0.9),
    BoxSource("iou", iou=0.75),
    BoxSource("iou", iou=0.5),
    BoxSource("none"),
)


@dataclass(frozen=True)
class InferenceBoxes:
    """A source's boxes for the validation and test samples (NaN rows: no box).

    Attributes:
        source: where they come from.
        val: float (N_val, 4).
        test: float (N_test, 4).
        described: what they are, per split (``target_iou``, ``noise``, ``mean_iou``,
            ``misses``), for the parent run and the export.
        lines: what to print (the detections' match report).
    """

    source: BoxSource
    val: np.ndarray
    test: np.ndarray
    described: dict[str, dict[str, Any]]
    lines: list[str]


def inference_boxes(source: BoxSource, data: Dataset, seed: int) -> InferenceBoxes:
    """The boxes ``source`` gives ``data``'s validation and test samples, for a study seeded
    ``seed`` (``iou:X`` disturbs the test boxes as the robustness table's level X does)."""
    splits = {"val": data.val, "test": data.test}
    boxes: dict[str, np.ndarray] = {}
    described: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    if source.kind == "detections":
        assert source.path is not None
        spec = parse_data_spec(data.spec)
        coco = Path(spec.location or "") if spec.format == "coco" else None
        detections = load_detections(Path(source.path).expanduser(), data, coco)
        matched = {name: match_detections(samples, detections) for name, samples in splits.items()}
        lines = report_lines(detections, {"train": None, **matched})
        for name, found in matched.items():
            boxes[name] = found.boxes
            described[name] = {"mean_iou": found.mean_iou, "misses": found.misses}
    for name, samples in splits.items():
        if source.kind == "exact":
            boxes[name] = samples.annotated_boxes
            described[name] = {"target_iou": 1.0, "noise": 0.0, "mean_iou": 1.0, "misses": 0}
        elif source.kind == "none":
            boxes[name] = np.full_like(samples.annotated_boxes, np.nan, dtype=np.float64)
            described[name] = {"target_iou": None, "mean_iou": None, "misses": len(samples)}
        elif source.kind == "iou":
            assert source.iou is not None
            level_seed = level_seeds(seed)[name]
            annotated = samples.annotated_boxes
            noise, measured = noise_for_iou(annotated, samples.sizes, source.iou, level_seed)
            boxes[name] = noisy_boxes(annotated, samples.sizes, noise, level_seed)
            described[name] = {
                "target_iou": source.iou, "noise": noise, "mean_iou": measured, "misses": 0,
            }  # fmt: skip
    return InferenceBoxes(source, boxes["val"], boxes["test"], described, lines)


@dataclass(frozen=True)
class StudyBoxes:
    """The boxes a study chooses for: one source (its validation and test scores use them),
    or several for a multi-objective study, one objective each (validation accuracy with
    them); the first is the one ``export`` picks the answer by."""

    sources: tuple[InferenceBoxes, ...]

    @property
    def chosen(self) -> InferenceBoxes:
        """The first source: the data's validation and test samples are scored with it."""
        return self.sources[0]

    @property
    def objectives(self) -> list[str]:
        """The sources of a multi-objective study, as written (empty for one source)."""
        return [str(b.source) for b in self.sources] if len(self.sources) > 1 else []

    def val_boxes(self) -> dict[str, np.ndarray]:
        """Validation boxes per objective, by source name (empty for one source)."""
        return {b.source.name: b.val for b in self.sources} if len(self.sources) > 1 else {}

    def test_boxes(self) -> dict[str, np.ndarray]:
        """Test boxes of every source but the first, by name (robustness levels)."""
        return {b.source.name: b.test for b in self.sources[1:]}

    @property
    def lines(self) -> list[str]:
        """What to print: each detections file's match report."""
        return [line for b in self.sources for line in b.lines]


def parse_sources(given: Sequence[str]) -> list[BoxSource]:
    """``--boxes`` values as sources; one given twice (by name) is refused."""
    sources = [BoxSource.parse(text) for text in given]
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BoxSourceError(
            f"--boxes names {twice[0]} twice: each source is one objective"
            + (" (one detections file per study)" if twice[0] == "detections" else "")
        )
    return sources


def study_inference(
    sources: Sequence[BoxSource], data: Dataset, seed: int
) -> tuple[Dataset, StudyBoxes]:
    """``data`` scored with the first source's boxes, and every source's boxes."""
    boxes = StudyBoxes(tuple(inference_boxes(source, data, seed) for source in sources))
    return scored_with(data, boxes.chosen), boxes


def matched_noise(boxes: InferenceBoxes, data: Dataset, seed: int) -> float | None:
    """The training ``box_noise`` whose boxes look like ``boxes`` (the same mean IoU with the
    annotations on the validation split); None when training cannot match them (exact boxes,
    or none at all)."""
    if boxes.source.kind == "iou":
        return float(boxes.described["val"]["noise"])
    if boxes.source.kind == "detections":
        target = boxes.described["val"].get("mean_iou")
        if target is None or target >= 1.0:
            return None
        val = data.val
        noise, _ = noise_for_iou(val.annotated_boxes, val.sizes, target, level_seeds(seed)["val"])
        return float(noise)
    return None


def level_seeds(seed: int) -> dict[str, int]:
    """The seeds of disturbed boxes per split; the test split's is the robustness table's."""
    return {"test": derive_seed(seed, "boxes"), "val": derive_seed(seed, "boxes", 1)}


def scored_with(data: Dataset, boxes: InferenceBoxes) -> Dataset:
    """``data`` whose validation and test samples carry ``boxes`` (their annotations kept in
    ``Samples.annotated``); the training split and the fingerprint are unchanged."""
    if boxes.source.exact:
        return data
    scored = dataclasses.replace(
        data,
        val=_with(data.val, boxes.val),
        test=_with(data.test, boxes.test),
    )
    # Same data, scored with other boxes: it keeps its identity for workers and the cache.
    scored.__dict__["fingerprint"] = data.fingerprint
    return scored


def _with(samples: Samples, boxes: np.ndarray) -> Samples:
    return dataclasses.replace(samples, boxes=boxes, annotated=samples.annotated_boxes)
