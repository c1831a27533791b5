"""The exported policy file: the best trial's policy with provenance; load it back (TF-free)."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from search.crop.policy import CropPolicy, PolicyError
from search.study.confirm.model import Confirmation
from search.study.confirm.statistics import LEVEL, Estimate, Interval
from search.study.record import TrialRecord

FORMAT = "cropsearch.policy/v1"
#: Sections of a policy file: required, then optional.
REQUIRED_SECTIONS = ("format", "policy")
OPTIONAL_SECTIONS = ("provenance", "confirmation")
FileFormat = Literal["yaml", "json"]
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


def policy_document(
    record: TrialRecord,
    attrs: Mapping[str, Any],
    confirmation: Confirmation | None = None,
) -> dict[str, Any]:
    """The policy file's content for the trial ``record`` of the study described by ``attrs``
    (its name and settings); with the study's ``confirmation`` when ``record`` is its winner."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "policy": record.crop_policy.to_dict(),
        "provenance": {
            "study": attrs.get("study"),
            "trial": record.number,
            "metric": attrs.get("objective", "val_accuracy"),
            "value": record.val_accuracy,
            "test_accuracy": record.test_accuracy,
            "baseline": record.baseline,
            "training": record.train.model_dump(),
            "train_fraction": record.train_fraction,
            "engine": record.engine,
            "mlflow_run_id": record.run_id,
            "mlflow_parent_run_id": attrs.get("mlflow_parent_run_id"),
            "data": attrs.get("data"),
            "dataset_fingerprint": attrs.get("data_fingerprint"),
            "space": attrs.get("space"),
            "seeds": {k: attrs.get(k) for k in ("seed", "train_seed") if k in attrs},
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": package_versions(),
        },
    }
    if confirmation is not None and confirmation.winner == record.number:
        document["confirmation"] = confirmation_document(confirmation)
    return document


def _estimate(value: Estimate | None) -> dict[str, float] | None:
    if value is None:
        return None
    return {"mean": round(float(value.mean), 6), "std": round(float(value.std), 6), "n": value.n}


def _interval(value: Interval | None) -> dict[str, float] | None:
    if value is None:
        return None
    return {
        "mean": round(float(value.mean), 6),
        "low": round(float(value.low), 6),
        "high": round(float(value.high), 6),
        "level": LEVEL,
        "n": value.n,
    }


def confirmation_document(confirmation: Confirmation) -> dict[str, Any]:
    """The confirmed result as plain data: winner and baseline over seeds, the interval between
    them, the verdict in words and the robustness table."""
    from search.results.report import needs_exact_boxes

    win, base = confirmation.winner_summary, confirmation.baseline_summary
    robustness = {}
    for level, described in confirmation.box_levels.items():
        iou = described.get("mean_iou")
        robustness[level] = {
            "mean_iou": None if iou is None else round(float(iou), 4),
            "winner_test_accuracy": _estimate(win.robustness.get(level)),
            "baseline_test_accuracy": _estimate(base.robustness.get(level)) if base else None,
        }
    return {
        "verdict": confirmation.verdict,
        "distinguishable_from_full_image": confirmation.distinguishable,
        "winner": {
            "trial": win.number,
            "policy": win.label,
            "val_accuracy": _estimate(win.val),
            "test_accuracy": _estimate(win.test),
            "val_vs_baseline": _interval(win.val_vs_baseline),
            "test_vs_baseline": _interval(win.test_vs_baseline),
        },
        "baseline": None
        if base is None
        else {
            "trial": base.number,
            "val_accuracy": _estimate(base.val),
            "test_accuracy": _estimate(base.test),
        },
        "seeds": confirmation.seeds,
        "epochs": confirmation.epochs,
        "train_fraction": confirmation.train_fraction,
        "robustness": robustness,
        "warning": needs_exact_boxes(confirmation),
    }


def policy_yaml(document: dict[str, Any]) -> str:
    """A policy document as YAML text, fields in file order."""
    return yaml.safe_dump(document, sort_keys=False)


def policy_text(document: dict[str, Any], file_format: FileFormat = "yaml") -> str:
    """A policy document as YAML or JSON text, fields in file order."""
    if file_format == "json":
        return json.dumps(document, indent=2) + "\n"
    return policy_yaml(document)


def format_of(path: str | Path) -> FileFormat:
    """The file format a path's suffix names: ``.json`` is JSON, anything else YAML."""
    return "json" if Path(path).suffix.lower() == ".json" else "yaml"


def write_policy_file(
    document: dict[str, Any], path: str | Path, file_format: FileFormat | None = None
) -> Path:
    """Write a policy document as YAML or JSON (default: as the path's suffix says)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy_text(document, file_format or format_of(path)))
    return path


def load_policy(path: str | Path) -> CropPolicy:
    """Read a policy file, YAML or JSON (``.json``), and validate it.

    A file with ``format`` is read strictly: the format version must be known, its sections
    are ``format``, ``policy`` and optionally ``provenance`` and ``confirmation``, and the
    policy lists every field, each within its bounds. A bare mapping of policy fields (no
    ``format``, as written by hand for ``preview --policy``) takes the defaults for the rest.

    Raises:
        PolicyFileError: one line naming the file and the field at fault.
    """
    from search.safe_yaml import YamlFileError, clip, load_yaml_file, read_text_file

    source = clip(str(path))
    try:
        if format_of(path) == "json":
            raw = _parse_json(read_text_file(path, "policy file"), source)
        else:
            raw = load_yaml_file(path, "policy file")
    except YamlFileError as error:
        raise PolicyFileError(str(error)) from None
    if isinstance(raw, dict) and "format" in raw:
        raw = _checked_document(raw, source)["policy"]
    try:
        return CropPolicy.from_dict(raw)
    except PolicyError as error:
        raise PolicyFileError(f"{source}: {error}") from None


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyFileError(
            f"{source}: not valid JSON ({error.msg}, line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise PolicyFileError(f"{source}: not valid JSON (nested too deeply)") from None


def _checked_document(raw: dict[Any, Any], source: str) -> dict[Any, Any]:
    """``raw`` if it is a complete, known-version policy document; else PolicyFileError."""
    from search.safe_yaml import shorten

    if raw["format"] != FORMAT:
        raise PolicyFileError(
            f"{source}: unknown format {shorten(raw['format'])} (this cropsearch reads '{FORMAT}')"
        )
    known = (*REQUIRED_SECTIONS, *OPTIONAL_SECTIONS)
    problems = [
        f"unknown field {shorten(key)} (known: {', '.join(known)})"
        for key in raw
        if key not in known
    ]
    problems += [f"missing field '{key}'" for key in REQUIRED_SECTIONS if key not in raw]
    for key in ("policy", *OPTIONAL_SECTIONS):
        if key in raw and not isinstance(raw[key], dict):
            problems.append(f"field '{key}' must be a mapping, got {type(raw[key]).__name__}")
    if not problems:
        fields = raw["policy"]
        problems += [
            f"unknown policy field {shorten(key)} (known: {', '.join(CropPolicy.model_fields)})"
            for key in fields
            if key not in CropPolicy.model_fields
        ]
        problems += [
            f"missing policy field '{name}' ({FORMAT} lists every field)"
            for name in CropPolicy.model_fields
            if name not in fields
        ]
    if problems:
        raise PolicyFileError(f"{source}: {'; '.join(problems)}")
    return raw
