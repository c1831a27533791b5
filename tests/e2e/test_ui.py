"""`cropsearch ui` serves the search's MLflow store on 127.0.0.1, artifacts included."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from conftest import SearchRun
from mlflow.tracking import MlflowClient
from servers import free_port, listeners, served

pytestmark = pytest.mark.slow  # trains real models / starts a server


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def test_ui_serves_runs_and_crop_samples(tiny_search: SearchRun) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from search.cli import main; sys.exit(main())",
            "ui",
            "--tracking-uri",
            tiny_search.tracking_uri,
            "--storage",
            tiny_search.storage,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert served(lambda: _get(f"{base}/health"), process, 90, "MLflow UI") == b"OK"
        listing = json.loads(_get(f"{base}/api/2.0/mlflow/experiments/search?max_results=50"))
        names = [e["name"] for e in listing["experiments"]]
        assert "tiny" in names
        client = MlflowClient(tiny_search.tracking_uri)
        experiment = client.get_experiment_by_name("tiny")
        assert experiment is not None
        child = next(
            r
            for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("cropsearch.role") == "trial" and r.data.tags["stage"] == "search"
        )
        # Bound to loopback only: 127.0.0.1 (0100007F little-endian), never 0.0.0.0 or ::.
        assert listeners(port) == {"0100007F"}
        png = _get(f"{base}/get-artifact?path=crop_samples.png&run_uuid={child.info.run_id}")
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert _get(base + "/").lower().startswith(b"<!doctype html")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/#/experiments/" in output
