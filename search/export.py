"""The exported policy file: the best trial's policy with provenance; load it back (TF-free)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from search.policy import CropPolicy, PolicyError

if TYPE_CHECKING:
    import optuna

FORMAT = "cropsearch.policy/v1"
_VERSIONED = ("cropsearch", "optuna", "mlflow", "keras", "tensorflow-cpu", "tensorflow", "numpy")


class PolicyFileError(ValueError):
    """A policy file cannot be read."""


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on (those installed)."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["python"] = platform.python_version()
    return versions


def policy_document(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The policy file's content for ``trial`` of ``study``."""
    attrs = study.user_attrs
    return {
        "format": FORMAT,
        "policy": CropPolicy.from_dict(trial.user_attrs["policy"]).to_dict(),
        "provenance": {
            "study": study.study_name,
            "trial": trial.number,
            "metric": attrs.get("objective", "val_accuracy"),
            "value": trial.value,
            "test_accuracy": trial.user_attrs.get("test_accuracy"),
            "baseline": bool(trial.user_attrs.get("baseline")),
            "training": trial.user_attrs.get("train"),
            "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
            "mlflow_parent_run_id": attrs.get("mlflow_parent_run_id"),
            "data": attrs.get("data"),
            "dataset_fingerprint": attrs.get("data_fingerprint"),
            "space": attrs.get("space"),
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": package_versions(),
        },
    }


def policy_yaml(document: dict[str, Any]) -> str:
    """A policy document as YAML text, fields in file order."""
    return yaml.safe_dump(document, sort_keys=False)


def write_policy_file(document: dict[str, Any], path: str | Path) -> Path:
    """Write a policy document as YAML."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy_yaml(document))
    return path


def load_policy(path: str | Path) -> CropPolicy:
    """Read a policy file (or a bare mapping of policy fields) and validate it."""
    from search.safe_yaml import YamlFileError, clip, load_yaml_file, shorten

    source = clip(str(path))
    try:
        raw = load_yaml_file(path, "policy file")
    except YamlFileError as error:
        raise PolicyFileError(str(error)) from None
    if isinstance(raw, dict) and "format" in raw:
        if raw["format"] != FORMAT:
            raise PolicyFileError(f"{source}: format {shorten(raw['format'])} is not '{FORMAT}'")
        raw = raw.get("policy")
    try:
        return CropPolicy.from_dict(raw)
    except PolicyError as error:
        raise PolicyFileError(f"{source}: {error}") from None
