"""Everything MLflow: one experiment per study, a parent run, one child run per trial."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.names import check_study_name
from search.ops.retry import Retrying
from search.ops.stores import created_once
from search.ops.uris import redact, sqlite_path

if TYPE_CHECKING:
    from PIL import Image

# MLflow narrates database creation and migrations at INFO, draws a progress bar for every
# artifact it copies and prints two links per run ended on a server; a search prints its own.
logging.getLogger("mlflow").setLevel(logging.WARNING)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a server's run links

#: Trial state -> MLflow run status, so the UI shows pruned and failed trials as such.
RUN_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def prepare_sqlite(url: str) -> None:
    """Create the folder of a sqlite database so the first connection can create the file."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def artifact_root(tracking_uri: str) -> str | None:
    """Artifacts of a local sqlite store go to ``artifacts/`` beside the database; a tracking
    server decides for itself (None)."""
    path = sqlite_path(tracking_uri)
    return (path.parent / "artifacts").resolve().as_uri() if path is not None else None


class Tracker:
    """Writes a study to MLflow. Every call names its run id, so nothing depends on MLflow's
    global active-run state. A call that loses its connection (a tracking server or database
    restarting) is retried for up to a minute (:mod:`search.ops.retry`)."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        with created_once(tracking_uri):  # one process creates a fresh store, the others wait
            self.client: Any = Retrying(
                MlflowClient(tracking_uri), f"the MLflow tracking store {redact(tracking_uri)}"
            )
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
            else:
                root = artifact_root(tracking_uri)  # the name is a folder name: stays inside
                location = f"{root}/{check_study_name(experiment)}" if root else None
                try:
                    self.experiment_id = self.client.create_experiment(
                        experiment, artifact_location=location
                    )
                except MlflowException as error:  # a server: another process was first
                    again = self.client.get_experiment_by_name(experiment)
                    if error.error_code != "RESOURCE_ALREADY_EXISTS" or again is None:
                        raise
                    self.experiment_id = again.experiment_id

    def start_parent(self, name: str, params: Mapping[str, Any], run_id: str | None = None) -> str:
        """The study's parent run: resumed when ``run_id`` names one, else the running parent
        another process has just created for the study, else a new one.

        Processes started together may each create one (a tracking server has no lock to
        share): each then keeps the earliest running parent and deletes its own if it is not
        that one, so one parent run remains."""
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        with created_once(self.tracking_uri):  # sqlite and PostgreSQL stores: exact
            found = self._running_parents()
            if found:
                return found[0]
            mine = self.client.create_run(
                self.experiment_id, run_name=name, tags={"cropsearch.role": "study"}
            ).info.run_id
            self._log_params(mine, params)
        first = self._running_parents()[0]
        if first != mine:
            self.client.delete_run(mine)
        return first

    def _running_parents(self) -> list[str]:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string="tags.`cropsearch.role` = 'study' and attributes.status = 'RUNNING'",
            max_results=100,
        )
        return [
            r.info.run_id for r in sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))
        ]

    def start_trial(
        self,
        parent_id: str,
        number: int,
        label: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        run_name: str | None = None,
    ) -> str:
        """A child run for one trial, with its parameters."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name or f"trial {number}: {label}",
            tags={
                "mlflow.parentRunId": parent_id,
                "cropsearch.role": "trial",
                "trial": str(number),
                "state": "running",
                **tags,
            },
        )
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """All values of one step in a single batched call."""
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id, metrics=[Metric(key, float(value), now, step) for key, value in metrics.items()]
        )

    def log_figure(self, run_id: str, figure: Any, name: str) -> None:
        """Save a matplotlib figure as a PNG artifact of the run."""
        from search.results.figures import save  # matplotlib only when a figure is logged

        with tempfile.TemporaryDirectory() as folder:
            self.client.log_artifact(run_id, str(save(figure, Path(folder) / name)))

    def log_picture(self, run_id: str, picture: Image.Image, name: str) -> None:
        """Save a Pillow picture as a PNG artifact of the run."""
        from search.results.pictures import save_picture

        with tempfile.TemporaryDirectory() as folder:
            self.client.log_artifact(run_id, str(save_picture(picture, Path(folder) / name)))

    def log_text(self, run_id: str, text: str, name: str) -> None:
        """Attach text as a file named ``name``."""
        self.client.log_text(run_id, text, name)

    def copy_results(self, source_id: str, target_id: str) -> None:
        """Give ``target_id`` the metric histories and artifacts of ``source_id``."""
        source = self.client.get_run(source_id)
        history = [
            m for key in source.data.metrics for m in self.client.get_metric_history(source_id, key)
        ]
        for start in range(0, len(history), 1000):  # log_batch takes at most 1000 metrics
            self.client.log_batch(target_id, metrics=history[start : start + 1000])
        with tempfile.TemporaryDirectory() as folder:
            for artifact in self.client.list_artifacts(source_id):
                if not artifact.is_dir:
                    local = self.client.download_artifacts(source_id, artifact.path, folder)
                    self.client.log_artifact(target_id, local)

    def running_search_runs(self, number: int) -> list[str]:
        """The RUNNING runs of search trial ``number`` (found by their tags, for a trial whose
        process died before it noted its run's id)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.trial = '{int(number)}' and tags.`cropsearch.role` = 'trial' and "
                "tags.stage = 'search' and attributes.status = 'RUNNING'"
            ),
            max_results=100,
        )
        return [r.info.run_id for r in runs]

    def run_status(self, run_id: str) -> str | None:
        """MLflow's status of a run (``RUNNING``, ``FINISHED``, ...), None when unknown."""
        try:
            return str(self.client.get_run(run_id).info.status)
        except Exception:  # a run deleted or never created
            return None

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The tags of a run."""
        return dict(self.client.get_run(run_id).data.tags)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set several tags in one call."""
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def end_run(self, run_id: str, state: str, tags: Mapping[str, str] | None = None) -> None:
        """Mark a run complete, pruned or failed."""
        all_tags = {"state": state, **(tags or {})}
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in all_tags.items()])
        self.client.set_terminated(run_id, status=RUN_STATUS.get(state, "FINISHED"))

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.client.log_batch(
            run_id, params=[Param(k, redact(str(v))[:6000]) for k, v in params.items()]
        )

    def runs_url(self, base: str) -> str:
        """Link to this experiment's runs table (not the GenAI overview MLflow opens on)."""
        return f"{base.rstrip('/')}/#/experiments/{self.experiment_id}/runs"


def flat_params(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"size": [48, 48]}`` -> ``{"prefix.size": "48x48"}`` for readable MLflow params."""
    out = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flat_params(f"{prefix}{key}.", value))
            continue
        text = "x".join(str(v) for v in value) if isinstance(value, list | tuple) else value
        out[f"{prefix}{key}"] = text
    return out


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """The command that serves the MLflow UI on ``tracking_uri`` (one worker)."""
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    root = artifact_root(tracking_uri)
    if root is not None:
        command += ["--default-artifact-root", root]
    return command


def runs_link(tracking_uri: str, url: str, study: str) -> str:
    """The UI's link to the runs of ``study``; ``url`` when the store has no such experiment."""
    experiment = MlflowClient(tracking_uri).get_experiment_by_name(study)
    if experiment is None:
        return url
    # The UI takes its mode from this query inside the hash route (else from the browser's
    # storage); without it a study opens in the GenAI overview.
    query = "workflowType=machine_learning"
    return f"{url}/#/experiments/{experiment.experiment_id}/runs?{query}"
