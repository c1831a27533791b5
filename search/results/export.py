"""The exported policy file: the best trial's policy with provenance; load it back (TF-free)."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from search.crop.policy import CropPolicy, PolicyError
from search.safe_yaml import YamlFileError, clip, load_yaml_file, read_text_file, shorten
from search.settings import DEFAULT_BOXES, StudyKey
from search.study.confirm.agreement import compare, untrained_line
from search.study.confirm.model import Confirmation, needs_exact_boxes, network_size
from search.study.confirm.statistics import LEVEL, Estimate, Interval
from search.study.record import TrialRecord
from search.study.selection import chosen_record
from search.study.store import FoundStudy

FORMAT = "cropsearch.policy/v1"
#: Sections of a policy file: required, then optional.
REQUIRED_SECTIONS = ("format", "policy")
OPTIONAL_SECTIONS = ("provenance", "confirmation", "pareto")
#: Sections that are lists: ``networks``, every network's confirmation (``confirm --model``).
LIST_SECTIONS = ("networks",)
FileFormat = Literal["yaml", "json"]
_VERSIONED = ("cropsearch", "optuna", "mlflow", "keras", "tensorflow-cpu", "tensorflow", "numpy")


class ExportError(ValueError):
    """A study's trial cannot be exported as asked (a user mistake: one line)."""


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
            "study": attrs.get(StudyKey.STUDY),
            "trial": record.number,
            "metric": attrs.get(StudyKey.OBJECTIVE, "val_accuracy"),
            "value": record.val_accuracy,
            "test_accuracy": record.test_accuracy,
            "baseline": record.baseline,
            "training": record.train.model_dump(),
            "train_fraction": record.train_fraction,
            "engine": record.engine,
            "mlflow_run_id": record.run_id,
            "mlflow_parent_run_id": attrs.get(StudyKey.PARENT_RUN),
            "data": attrs.get(StudyKey.DATA),
            "dataset_fingerprint": attrs.get(StudyKey.DATA_FINGERPRINT),
            "space": attrs.get(StudyKey.SPACE),
            # The boxes at inference the trial was scored with and the winner chosen for.
            "boxes": attrs.get(StudyKey.BOXES, DEFAULT_BOXES),
            **(
                {"objectives": list(attrs[StudyKey.OBJECTIVE_BOXES])}
                if attrs.get(StudyKey.OBJECTIVE_BOXES)
                else {}
            ),
            "seeds": {k: attrs.get(k) for k in (StudyKey.SEED, StudyKey.TRAIN_SEED) if k in attrs},
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


def networks_document(
    own: Confirmation | None, others: Sequence[Confirmation], study: str
) -> list[dict[str, Any]]:
    """Every network's confirmation (the study's own first) and how each other network's
    ranking agrees with the study's."""
    entries = []
    for confirmation in ([own] if own is not None else []) + list(others):
        entry = {
            "network": confirmation.network or "study",
            "winner": confirmation.winner,
            "verdict": confirmation.verdict,
            "policies": [
                {
                    "trial": s.number,
                    "policy": s.label,
                    "val_accuracy": _estimate(s.val),
                    "test_accuracy": _estimate(s.test),
                    "test_vs_baseline": _interval(s.test_vs_baseline),
                }
                for s in confirmation.summaries
            ],
        }
        if own is not None and confirmation is not own:
            comparison = compare(own, confirmation, study)
            entry["comparison"] = comparison.lines()
            entry["kendall_tau"] = None if comparison.tau is None else round(comparison.tau.tau, 4)
        entries.append(entry)
    return entries


def confirmation_document(confirmation: Confirmation) -> dict[str, Any]:
    """The confirmed result as plain data: winner and baseline over seeds, the interval between
    them, the verdict in words and the robustness table."""
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
        "boxes": confirmation.boxes,
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


def pareto_document(confirmation: Confirmation, record: TrialRecord) -> dict[str, Any]:
    """A Pareto front member of a multi-objective study as plain data: the front, the
    member's validation accuracy per box source (screening) and its confirmed test accuracy
    with every kind of box."""
    summary = next((s for s in confirmation.summaries if s.number == record.number), None)
    return {
        "objectives": confirmation.objectives,
        "front": confirmation.pareto,
        "val_accuracy": {k: round(v, 6) for k, v in record.val_by_boxes.items()},
        "test_accuracy": {}
        if summary is None
        else {level: _estimate(value) for level, value in summary.robustness.items()},
    }


def policy_yaml(document: dict[str, Any]) -> str:
    """A policy document as YAML text, fields in file order."""
    return yaml.safe_dump(document, sort_keys=False)


def policy_line(policy: CropPolicy) -> str:
    """Every field of ``policy`` on one line, as YAML a ``policy`` section can hold."""
    return yaml.safe_dump(
        policy.to_dict(), default_flow_style=True, sort_keys=False, width=1_000_000
    ).strip()


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

    A file with ``format`` is read strictly: the format version must be known and its
    sections are ``format``, ``policy`` and optionally ``provenance``, ``confirmation`` and
    ``pareto`` (a multi-objective study's front member).
    A bare mapping of policy fields (no ``format``) is read as a ``policy`` section. Either
    may give any subset of the policy's fields, each a known field within its bounds; the
    others take their defaults (exported files list every field).

    Raises:
        PolicyFileError: one line naming the file and the field at fault.
    """
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
    """``raw`` if it is a known-version policy document with its sections; else
    PolicyFileError. Its policy's fields are checked by :class:`CropPolicy`."""
    if raw["format"] != FORMAT:
        raise PolicyFileError(
            f"{source}: unknown format {shorten(raw['format'])} (this cropsearch reads '{FORMAT}')"
        )
    known = (*REQUIRED_SECTIONS, *OPTIONAL_SECTIONS, *LIST_SECTIONS)
    problems = [
        f"unknown field {shorten(key)} (known: {', '.join(known)})"
        for key in raw
        if key not in known
    ]
    problems += [f"missing field '{key}'" for key in REQUIRED_SECTIONS if key not in raw]
    for key in ("policy", *OPTIONAL_SECTIONS):
        if key in raw and not isinstance(raw[key], dict):
            problems.append(f"field '{key}' must be a mapping, got {type(raw[key]).__name__}")
    if problems:
        raise PolicyFileError(f"{source}: {'; '.join(problems)}")
    return raw


@dataclass(frozen=True)
class Exported:
    """What :func:`export_study` wrote: the file, the trial, and why that trial."""

    path: Path
    record: TrialRecord
    study: str
    #: How the trial was chosen, in words.
    how: str
    #: The confirmation whose numbers the file holds (its winner was exported), if any.
    confirmation: Confirmation | None


def export_study(
    found: FoundStudy,
    output: Path,
    file_format: FileFormat | None = None,
    trial: int | None = None,
    run_id: str | None = None,
) -> Exported:
    """Write the study's answer (the confirmed winner, else the best screening trial), or the
    trial given by ``trial`` or by the MLflow run ``run_id``, with provenance (and the
    confirmation's numbers when it is the confirmed winner)."""
    records = found.records
    confirmation = study_confirmation = records.confirmation()
    others = [c for c in records.confirmations() if c.network]
    yours = next((c for c in others if untrained_line(c, found.name) is None), None)
    searched = records.search_records()
    if run_id is not None:
        trial = _trial_of_run(run_id, found.name, [*searched, *records.confirm_records()])
    if trial is None and yours is not None:
        confirmation = yours
        chosen = next(r for r in searched if r.number == yours.winner)
        how = f"confirmed winner on {yours.network} (your network), not the study's network's"
        size = network_size(yours.network)
        if size is not None:  # the same windows, cut at that network's size
            chosen = chosen.model_copy(update={"policy": {**chosen.policy, "size": size}})
    elif trial is None:
        best = chosen_record(searched, confirmation)
        if best is None:
            raise ExportError(f"study '{found.name}' has no completed trial yet")
        chosen = best
        how = "confirmed winner" if confirmation is not None else "best single screening run"
        if others:
            how += f" of the study's network ({', '.join(c.network for c in others)}: not trained"
            how += " enough to judge)"
        if confirmation is not None and confirmation.objectives:
            how += (
                f" for {confirmation.boxes}, the first --boxes; the Pareto front is trial(s) "
                f"{', '.join(map(str, confirmation.pareto))}: export one with --trial N"
            )
    else:
        asked = next((r for r in searched if r.number == trial), None)
        if asked is None or asked.state != "complete":
            state = "does not exist" if asked is None else f"is {asked.state}"
            raise ExportError(
                f"trial {trial} of study '{found.name}' {state}; export a complete trial"
            )
        chosen = asked
        if confirmation is not None and confirmation.winner != chosen.number:
            confirmation = None  # the confirmation's numbers describe its winner only
        how = "as asked" + ("; the confirmed winner" if confirmation is not None else "")
    document = policy_document(chosen, found.provenance(), confirmation)
    if study_confirmation is not None and chosen.number in study_confirmation.pareto:
        document["pareto"] = pareto_document(study_confirmation, chosen)
    if others:
        document["networks"] = networks_document(study_confirmation, others, found.name)
    try:
        path = write_policy_file(document, output, file_format)
    except OSError as error:
        raise ExportError(f"cannot write {clip(str(output))}: {error.strerror}") from None
    return Exported(path, chosen, found.name, how, confirmation)


def _trial_of_run(run_id: str, study: str, records: Sequence[TrialRecord]) -> int:
    """The trial number of the record that ``run_id`` logged."""
    found = next((r for r in records if r.run_id == run_id), None)
    if found is None:
        raise ExportError(f"run '{clip(run_id)}' is not a trial of study '{study}'")
    return found.number
