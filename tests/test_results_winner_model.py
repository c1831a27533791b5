"""What a trained run leaves in MLflow: per-class accuracy, the confusion matrix and its weights;
and the study's winner: the policy file and a Keras model with the crop layer in front, which a
fresh process loads and calls on raw images and boxes with the search's own test accuracy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_DATA, SearchRun
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from servers import free_port

from search.cli import main
from search.data import load_dataset
from search.results.confusion import ClassReport, metric_name
from search.results.export import load_policy


def test_class_report_counts_true_against_predicted() -> None:
    report = ClassReport.of(
        np.array([0, 1, 1, 2, 0]), np.array([0, 1, 0, 2, 2]), ["a", "b", "c/d e"]
    )
    assert report.matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert report.accuracies() == {"a": 0.5, "b": 1.0, "c/d e": 0.5}
    assert report.metrics()["test_accuracy.class.c/d e"] == 0.5
    assert metric_name("ö:x") == "ö_x"
    assert json.loads(report.to_json())["matrix"] == report.matrix.tolist()


def _runs(run: SearchRun) -> list:
    client = MlflowClient(run.tracking_uri)
    experiment = client.get_experiment_by_name(run.study)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id]))


def _winner(runs: list) -> tuple[str, Run]:
    """The study's winner model URI and the run it is logged to."""
    parent = next(r for r in runs if r.data.tags.get("cropsearch.role") == "study")
    uri = parent.data.tags["winner_model"]
    return uri, next(r for r in runs if uri == f"runs:/{r.info.run_id}/model")


@pytest.mark.slow
def test_every_complete_run_has_per_class_accuracy_and_a_confusion_matrix(
    tiny_search: SearchRun, tmp_path: Path
) -> None:
    client = MlflowClient(tiny_search.tracking_uri)
    children = [r for r in _runs(tiny_search) if "trial" in r.data.tags]
    assert len(children) >= 2 + 2 * 2  # 2 trials, the top one and the baseline over 2 seeds
    for run in children:
        if run.info.status != "FINISHED":
            continue
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"confusion_matrix.json", "confusion_matrix.png", "weights.npz"} <= names
        local = client.download_artifacts(run.info.run_id, "confusion_matrix.json", str(tmp_path))
        document = json.loads(Path(local).read_text())
        matrix = np.array(document["matrix"])
        assert matrix.sum() == 48  # every test sample once
        accuracy = np.trace(matrix) / matrix.sum()
        assert accuracy == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
        per_class = {k for k in run.data.metrics if k.startswith("test_accuracy.class.")}
        assert len(per_class) == int((matrix.sum(axis=1) > 0).sum())


@pytest.mark.slow
def test_the_winner_run_has_the_policy_file_and_a_model_a_fresh_process_can_call(
    tiny_search: SearchRun, tmp_path: Path
) -> None:
    runs = _runs(tiny_search)
    uri, winner = _winner(runs)
    assert winner.data.tags["stage"] == "search"
    source = winner.data.tags["winner_weights_from"]
    trained = next(r for r in runs if r.info.run_id == source)
    assert trained.data.tags["stage"] == "confirm"  # the confirmed model, full training split
    assert trained.data.tags["trial"] == winner.data.tags["trial"]

    client = MlflowClient(tiny_search.tracking_uri)
    local = client.download_artifacts(winner.info.run_id, "policy.yaml", str(tmp_path))
    assert main(["export", "--study", tiny_search.study, "--storage", tiny_search.storage,
                 "-o", str(tmp_path / "exported.yaml")]) == 0  # fmt: skip
    logged, exported = (
        yaml.safe_load(p.read_text()) for p in (Path(local), tmp_path / "exported.yaml")
    )
    for document in (logged, exported):
        del document["provenance"]["exported"]  # the time of writing
    assert logged == exported and "confirmation" in logged

    script = f"""
import json, mlflow, numpy as np
import search.crop.layer  # registers the crop layer with Keras
from search.data import load_dataset
mlflow.set_tracking_uri({tiny_search.tracking_uri!r})
model = mlflow.keras.load_model({uri!r})
test = load_dataset({TINY_DATA!r}).test
probabilities = model.predict({{"images": test.images, "boxes": test.boxes}}, verbose=0)
print(json.dumps(probabilities.argmax(axis=1).tolist()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "CROPSEARCH_CACHE": str(tmp_path / "cache"),
             "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    predicted = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    data = load_dataset(TINY_DATA)
    test = data.test
    accuracy = float(np.mean(predicted == test.labels))
    assert accuracy == pytest.approx(trained.data.metrics["test_accuracy"], abs=1e-6)
    logged = client.download_artifacts(source, "confusion_matrix.json", str(tmp_path))
    matrix = ClassReport.of(predicted, test.labels, data.class_names).matrix
    assert matrix.tolist() == json.loads(Path(logged).read_text())["matrix"]  # same predictions


@pytest.mark.slow
def test_export_by_trial_and_by_run_id(tiny_search: SearchRun, tmp_path: Path) -> None:
    runs = _runs(tiny_search)
    baseline = next(r for r in runs if r.data.tags.get("trial") == "0" and
                    r.data.tags.get("stage") == "search")  # fmt: skip
    stores = ["--storage", tiny_search.storage, "--tracking-uri", tiny_search.tracking_uri]
    by_trial, by_run = tmp_path / "t.yaml", tmp_path / "r.json"
    assert main(["export", "--study", tiny_search.study, "--trial", "0", "-o", str(by_trial),
                 *stores]) == 0  # fmt: skip
    assert main(["export", "--run-id", baseline.info.run_id, "-o", str(by_run), *stores]) == 0
    assert load_policy(by_trial).kind == "full"
    assert load_policy(by_run) == load_policy(by_trial)
    assert json.loads(by_run.read_text())["provenance"]["trial"] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trial", "99"], "trial 99 of study 'tiny' does not exist"),
        (["--run-id", "nope"], "no run 'nope'"),
        (["--trial", "0", "--run-id", "x"], "give --trial or --run-id, not both"),
    ],
)
@pytest.mark.slow
def test_export_of_an_unknown_trial_or_run_is_one_line(
    tiny_search: SearchRun, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
    message: str,
) -> None:  # fmt: skip
    stores = ["--storage", tiny_search.storage, "--tracking-uri", tiny_search.tracking_uri]
    code = main(["export", "--study", "tiny", "-o", str(tmp_path / "x.yaml"), *stores, *extra])
    error = capsys.readouterr().err
    assert code == 2 and message in error and "Traceback" not in error


@pytest.mark.slow
def test_mlflow_models_serve_classifies_images_with_boxes_like_the_trained_run(
    tiny_search: SearchRun, tmp_path: Path
) -> None:
    """The winner served by ``mlflow models serve`` (a process that never imports cropsearch
    itself: the model's pyfunc loader does) answers with the trained run's predictions."""
    uri, winner = _winner(_runs(tiny_search))
    client = MlflowClient(tiny_search.tracking_uri)
    source = winner.data.tags["winner_weights_from"]
    logged = client.download_artifacts(source, "confusion_matrix.json", str(tmp_path))
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # uvicorn beside the interpreter
        "MLFLOW_TRACKING_URI": tiny_search.tracking_uri,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "HOME": str(tmp_path),
    }
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        test = load_dataset(TINY_DATA).test
        body = {"inputs": {"images": test.images.tolist(), "boxes": test.boxes.tolist()}}
        answer = _post_when_up(f"http://127.0.0.1:{port}/invocations", body, server, tmp_path)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    predicted = np.array(answer["predictions"]).argmax(axis=1)
    data = load_dataset(TINY_DATA)
    matrix = ClassReport.of(predicted, data.test.labels, data.class_names).matrix
    assert matrix.tolist() == json.loads(Path(logged).read_text())["matrix"]


def _post_when_up(url: str, body: dict, server: subprocess.Popen, folder: Path) -> dict:
    """POST ``body`` as JSON once the server answers (2 minutes at most)."""
    deadline = time.monotonic() + 120
    data = json.dumps(body).encode()
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError((folder / "serve.log").read_text())
        try:
            request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return dict(json.loads(response.read()))
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
    raise AssertionError("the model server never answered: " + (folder / "serve.log").read_text())
