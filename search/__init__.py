"""cropsearch: search the crop policy of a compact CNN with Optuna, tracked in MLflow."""

from __future__ import annotations

from search.crop.policy import CropPolicy, PolicyError
from search.results.export import load_policy

__all__ = ["CropPolicy", "PolicyError", "load_policy"]
