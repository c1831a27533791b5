"""Where a keras-tuner study keeps cropsearch's records (TF-free, so ``export`` stays quick).

keras-tuner's own state (oracle, trial files) lives in ``<mlruns>/keras-tuner/<study>/``;
beside it, ``records/`` holds one :class:`TrialRecord` per trial and per confirmation run,
the confirmation outcome and the study's settings, as JSON files. It implements
``confirm.RecordStore``: leaderboard, confirmation and export read it like Optuna's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from search.ops.uris import sqlite_path
from search.study.confirm.model import Confirmation
from search.study.record import TrialRecord

#: The folder (inside the store's folder) that holds every keras-tuner study.
FOLDER = "keras-tuner"
STUDY_FILE = "study.json"


def keras_tuner_root(storage: str) -> Path:
    """``<folder of the sqlite storage>/keras-tuner``; ``mlruns/keras-tuner`` for a server
    storage (keras-tuner keeps its state in files)."""
    path = sqlite_path(storage)
    return (path.parent if path is not None else Path("mlruns")) / FOLDER


def _write(path: Path, data: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


class KerasTunerRecords:
    """A keras-tuner study's records (implements ``confirm.RecordStore``)."""

    def __init__(self, root: Path, study: str) -> None:
        self.study = study
        self.folder = root / study / "records"

    def exists(self) -> bool:
        """Whether this study was started."""
        return (self.folder / STUDY_FILE).exists()

    def changed(self) -> float:
        """When a record was last written (seconds since the epoch)."""
        return max((p.stat().st_mtime for p in self.folder.rglob("*.json")), default=0.0)

    def attrs(self) -> dict[str, Any]:
        """The study's settings (data, seed, epochs, engine, ...)."""
        path = self.folder / STUDY_FILE
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def set_attrs(self, values: dict[str, Any]) -> None:
        """Merge ``values`` into the study's settings."""
        _write(self.folder / STUDY_FILE, {**self.attrs(), **values})

    def save_search(self, record: TrialRecord) -> None:
        """Keep a search trial's record (a later one of the same number replaces it)."""
        _write(self.folder / "search" / f"{record.number:05d}.json", record.to_json())

    def search_records(self) -> list[TrialRecord]:
        """Every finished search trial's record, by number."""
        files = sorted((self.folder / "search").glob("*.json"))
        return [TrialRecord.from_json(json.loads(path.read_text())) for path in files]

    def confirm_records(self) -> list[TrialRecord]:
        """Every finished confirmation run."""
        files = sorted((self.folder / "confirm").glob("*.json"))
        return [TrialRecord.from_json(json.loads(path.read_text())) for path in files]

    def save_confirm(self, key: str, record: TrialRecord) -> None:
        """Keep a confirmation run (resumable: a later ``confirm`` skips it)."""
        _write(self.folder / "confirm" / f"{key.replace(':', '_')}.json", record.to_json())

    def save_confirmation(self, confirmation: Confirmation) -> None:
        """Keep the confirmation outcome with the study (one file per network)."""
        _write(self.folder / confirmation_file(confirmation.network), confirmation.to_json())

    def confirmation(self) -> Confirmation | None:
        """The latest confirmation outcome, if any."""
        path = self.folder / "confirmation.json"
        return Confirmation.from_json(json.loads(path.read_text())) if path.exists() else None

    def confirmations(self) -> list[Confirmation]:
        """Every network's confirmation outcome, the study's own network's first."""
        paths = sorted(self.folder.glob("confirmation*.json"))
        return [Confirmation.from_json(json.loads(p.read_text())) for p in paths]


def confirmation_file(network: str) -> str:
    """The file of the confirmation outcome on ``network`` (empty: the study's own)."""
    safe = "".join(c if c.isalnum() or c in "-.@" else "_" for c in network)
    return f"confirmation_{safe}.json" if network else "confirmation.json"


def keras_tuner_studies(storage: str) -> list[KerasTunerRecords]:
    """The keras-tuner studies beside ``storage``, least recently written first."""
    root = keras_tuner_root(storage)
    found = [
        KerasTunerRecords(root, path.parent.parent.name)
        for path in root.glob(f"*/records/{STUDY_FILE}")
    ]
    return sorted(found, key=lambda r: r.changed())
