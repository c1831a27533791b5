"""The "Using the exported policy" snippets of ``docs/policy.md`` (moved there from the README)
run as written: the two ``bash`` blocks' three commands, then the three ``python`` blocks in
order. The ``shell`` block (``mlflow models serve``) is not run here; ``test_winner_model.py``
serves the same model."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from search.cli import main
from search.crop.policy import CropPolicy
from search.results.export import FORMAT, write_policy_file

pytestmark = pytest.mark.slow  # trains a small model for two epochs

PAGE = "docs/policy.md"
SECTION = "## Using the exported policy"


def _blocks(language: str) -> list[str]:
    text = (REPO / PAGE).read_text()
    assert SECTION in text, f"{PAGE} has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_policy_page_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = CropPolicy(kind="object", context=0.25, jitter=0.1, size=32)
    write_policy_file({"format": FORMAT, "policy": policy.to_dict()}, "best_policy.yaml")
    commands = [line for block in _blocks("bash") for line in block.splitlines() if line]
    assert len(commands) == 3
    assert all(line.startswith("cropsearch ") for line in commands)
    for line in commands:
        assert main(shlex.split(line)[1:]) == 0, line
    python = _blocks("python")
    assert len(python) == 3
    namespace: dict[str, object] = {}
    for block in python:
        exec(compile(block, PAGE, "exec"), namespace)
    assert (tmp_path / "crops" / "manifest.csv").exists()
    assert (tmp_path / "train_crops" / "manifest.csv").exists()
    assert (tmp_path / "cropped_cnn.keras").exists()
    assert namespace["probabilities"].shape == (64, 6)  # type: ignore[attr-defined]
    scores = namespace["scores"]  # the winner model from MLflow, on the test split
    assert scores.shape == (64, 6)  # type: ignore[attr-defined]
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-4)  # type: ignore[attr-defined]
