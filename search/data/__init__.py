"""Datasets: built-in benchmarks and user formats, as samples ``(image, box, label)``."""

from __future__ import annotations

from search.data.dataset import DataError, DataReport, Dataset, Samples
from search.data.specs import DataSpec, load_dataset, parse_data_spec

__all__ = [
    "DataError",
    "DataReport",
    "DataSpec",
    "Dataset",
    "Samples",
    "load_dataset",
    "parse_data_spec",
]
