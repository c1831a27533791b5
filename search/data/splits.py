"""Deterministic, stratified splits.

Splitting works on *groups* (images): all samples of one image land in the same split, and the
groups are stratified by one label each (the image's first object). Counts per class follow the
class proportions by the largest-remainder rule, so small classes are not rounded away, and
every class keeps at least one group in train. The random generator is always passed in.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2


def allocate(counts: np.ndarray, total: int, caps: np.ndarray | None = None) -> np.ndarray:
    """Share ``total`` among classes in proportion to ``counts`` (largest remainder first),
    giving class ``k`` at most ``caps[k]`` (default: ``counts[k]``).

    Returns:
        int array, one entry per class, summing to ``total`` unless the caps forbid it.
    """
    counts = np.asarray(counts, dtype=np.int64)
    limit = counts.copy() if caps is None else np.minimum(np.asarray(caps, np.int64), counts)
    limit = np.maximum(limit, 0)
    share = np.zeros(len(counts), dtype=np.int64)
    if total <= 0 or counts.sum() == 0:
        return share
    quota = counts * (total / counts.sum())
    share = np.minimum(np.floor(quota).astype(np.int64), limit)
    order = np.argsort(-(quota - share), kind="stable")
    left = total - int(share.sum())
    while left > 0:
        open_classes = [k for k in order if share[k] < limit[k]]
        if not open_classes:
            break
        for k in open_classes[:left]:
            share[k] += 1
        left = total - int(share.sum())
    return share


def stratified_pick(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` distinct items of ``labels`` keeping the class proportions, shuffled."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return rng.permutation(len(labels))
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    shares = allocate(counts, n)
    picked = [
        rng.choice(np.flatnonzero(inverse == k), size=int(share), replace=False)
        for k, share in enumerate(shares)
    ]
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return rng.permutation(chosen)


def split_groups(
    labels: np.ndarray, val: float, test: float, rng: np.random.Generator
) -> np.ndarray:
    """Assign groups (one label each) to train/val/test.

    ``round(n * val)`` groups go to val and ``round(n * test)`` to test, stratified by label;
    each class keeps at least one group in train.

    Returns:
        int8 codes per group: :data:`TRAIN`, :data:`VAL` or :data:`TEST`.
    """
    labels = np.asarray(labels)
    n = len(labels)
    codes = np.full(n, TRAIN, dtype=np.int8)
    if n == 0:
        return codes
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    caps = counts - 1
    to_val = allocate(counts, round(n * val), caps)
    to_test = allocate(counts, round(n * test), caps - to_val)
    for k in range(len(counts)):
        members = rng.permutation(np.flatnonzero(inverse == k))
        codes[members[: to_val[k]]] = VAL
        codes[members[to_val[k] : to_val[k] + to_test[k]]] = TEST
    return codes
