"""cropsearch: search the crop policy of a compact CNN with Optuna, tracked in MLflow."""

from __future__ import annotations

from search.export import load_policy
from search.policy import CropPolicy, PolicyError

__all__ = ["CropPolicy", "PolicyError", "load_policy"]
