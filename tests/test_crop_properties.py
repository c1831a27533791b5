"""Invariants of the window geometry that tables cannot cover exhaustively, checked by
Hypothesis over random images, boxes and policies."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from search.crop.geometry import EDGE_TOLERANCE, box_coverage
from search.crop.policy import BOUNDS, KINDS, CropPolicy

TOLERANCE = EDGE_TOLERANCE


@st.composite
def images_and_boxes(draw: st.DrawFn, max_n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) image (height, width) and (N, 4) boxes inside them, at least a pixel a side."""
    n = draw(st.integers(1, max_n))
    sizes, boxes = [], []
    for _ in range(n):
        height, width = draw(st.integers(8, 400)), draw(st.integers(8, 400))
        x0 = draw(st.floats(0, width - 1, allow_nan=False))
        y0 = draw(st.floats(0, height - 1, allow_nan=False))
        x1 = draw(st.floats(x0 + 1, width, allow_nan=False))
        y1 = draw(st.floats(y0 + 1, height, allow_nan=False))
        sizes.append((height, width))
        boxes.append((x0, y0, x1, y1))
    return np.array(sizes, dtype=np.float64), np.array(boxes, dtype=np.float64)


def bounded(name: str, low: float | None = None) -> st.SearchStrategy[float]:
    floor, ceiling = BOUNDS[name]
    return st.floats(floor if low is None else low, ceiling, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn, kinds: tuple[str, ...] = tuple(KINDS), **fixed: object) -> CropPolicy:
    fields = {
        "kind": draw(st.sampled_from(kinds)),
        "fraction": draw(bounded("fraction")),
        "aspect_ratio": draw(bounded("aspect_ratio")),
        "context": draw(bounded("context")),
        "jitter": draw(bounded("jitter")),
        "min_object_covered": draw(bounded("min_object_covered")),
        "box_noise": draw(bounded("box_noise")),
        "border": draw(st.sampled_from(["shift", "pad"])),
    }
    fields.update(fixed)
    return CropPolicy(**fields)


seeds = st.integers(0, 2**32 - 1)
epochs = st.integers(0, 50)


@settings(max_examples=300, deadline=None)
@given(
    data=images_and_boxes(),
    context=bounded("context", low=0.0),
    aspect=bounded("aspect_ratio"),
)
def test_the_object_stays_inside_its_window_with_context_and_padding(
    data: tuple[np.ndarray, np.ndarray], context: float, aspect: float
) -> None:
    sizes, boxes = data
    for kind in ("object", "object_random"):
        policy = CropPolicy(kind=kind, context=context, aspect_ratio=aspect, border="pad")
        windows = policy.windows(sizes, boxes)
        assert (windows[:, :2] <= boxes[:, :2] + TOLERANCE).all(), (kind, windows, boxes)
        assert (windows[:, 2:] >= boxes[:, 2:] - TOLERANCE).all(), (kind, windows, boxes)
    trained = CropPolicy(kind="object", context=context, aspect_ratio=aspect, border="pad")
    windows = trained.windows(sizes, boxes, training=True, seed=1)  # no jitter, no box noise
    assert (windows[:, :2] <= boxes[:, :2] + TOLERANCE).all()
    assert (windows[:, 2:] >= boxes[:, 2:] - TOLERANCE).all()


@settings(max_examples=300, deadline=None)
@given(data=images_and_boxes(), policy=policies(border="shift"), training=st.booleans(),
       seed=seeds, epoch=epochs)  # fmt: skip
def test_every_window_lies_inside_its_image_with_shift(
    data: tuple[np.ndarray, np.ndarray],
    policy: CropPolicy,
    training: bool,
    seed: int,
    epoch: int,
) -> None:
    sizes, boxes = data
    windows = policy.windows(sizes, boxes, training, seed, epoch)
    height, width = sizes[:, 0], sizes[:, 1]
    assert (windows[:, 0] >= -TOLERANCE).all() and (windows[:, 1] >= -TOLERANCE).all()
    assert (windows[:, 2] <= width + TOLERANCE).all(), (policy, windows, sizes)
    assert (windows[:, 3] <= height + TOLERANCE).all(), (policy, windows, sizes)
    assert (windows[:, 2] > windows[:, 0]).all() and (windows[:, 3] > windows[:, 1]).all()


@settings(max_examples=200, deadline=None)
@given(data=images_and_boxes(max_n=8), policy=policies(), seed=seeds, epoch=epochs,
       order=st.randoms(use_true_random=False))  # fmt: skip
def test_a_window_depends_on_its_seed_epoch_and_index_not_its_batch(
    data: tuple[np.ndarray, np.ndarray], policy: CropPolicy, seed: int, epoch: int, order: object
) -> None:
    sizes, boxes = data
    n = len(sizes)
    indices = np.arange(100, 100 + n)
    whole = policy.windows(sizes, boxes, True, seed, epoch, indices)
    shuffled = list(range(n))
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    part = np.array(shuffled[: max(1, n // 2)])
    alone = policy.windows(sizes[part], boxes[part], True, seed, epoch, indices[part])
    assert np.array_equal(alone, whole[part])
    assert np.array_equal(policy.windows(sizes, boxes, True, seed, epoch, indices), whole)


@settings(max_examples=300, deadline=None)
@given(data=images_and_boxes(), policy=policies(kinds=("object_random",), border="pad",
       box_noise=0.0), seed=seeds, epoch=epochs)  # fmt: skip
def test_object_random_covers_at_least_min_object_covered_of_the_box(
    data: tuple[np.ndarray, np.ndarray], policy: CropPolicy, seed: int, epoch: int
) -> None:
    sizes, boxes = data
    policy = policy.model_copy(update={"context": max(policy.context, 0.0)})
    windows = policy.windows(sizes, boxes, True, seed, epoch)
    coverage = box_coverage(windows, boxes)
    assert (coverage >= policy.min_object_covered - 1e-9).all(), (policy, coverage)
