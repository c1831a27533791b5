"""The device trials train on, named; one GPU per worker process. Tests run on CPU: the GPU
branch is exercised with TensorFlow's device list faked."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tensorflow as tf

import search.ops.workers as workers
from search.ops import devices
from search.ops.devices import MEMORY_GROWTH, describe_device, worker_environments

PACKAGE = Path(__file__).resolve().parents[1] / "search"


@pytest.fixture(autouse=True)
def fresh_description() -> Iterator[None]:
    describe_device.cache_clear()
    yield
    describe_device.cache_clear()


def fake_gpus(monkeypatch: pytest.MonkeyPatch, names: list[str]) -> None:
    """TensorFlow sees ``names`` as its GPUs."""
    found = [
        tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU")
        for i in range(len(names))
    ]

    def listed(device_type: str | None = None) -> list[Any]:
        return found if device_type == "GPU" else []

    def details(device: Any) -> dict[str, str]:
        return {"device_name": names[int(device.name.rpartition(":")[2])]}

    monkeypatch.setattr(devices, "GPU_DRIVERS", (str(PACKAGE),))  # "a driver is installed"
    monkeypatch.setattr(tf.config, "list_physical_devices", listed)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", details)


def test_on_cpu_the_model_and_cores_are_named() -> None:
    described = describe_device()
    assert described == f"CPU {devices.cpu_name()}, {devices.cpu_cores()} cores"
    assert re.fullmatch(r"CPU .+, [1-9]\d* cores", described)
    if Path("/proc/cpuinfo").exists():
        assert devices.cpu_name() in Path("/proc/cpuinfo").read_text()


def test_without_a_gpu_driver_tensorflow_is_not_imported_to_name_the_device() -> None:
    script = (
        "import sys, search.ops.devices as d; d.GPU_DRIVERS = ('/no/such/driver',); "
        "print(d.describe_device()); print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PACKAGE.parent, capture_output=True, text=True
    )
    lines = done.stdout.splitlines()
    if platform.system() == "Linux":
        assert lines == [f"CPU {devices.cpu_name()}, {devices.cpu_cores()} cores", "False"]
    else:  # elsewhere TensorFlow is asked (macOS' Metal has no driver file to look for)
        assert lines[1] == "True", done.stderr


def test_a_visible_gpu_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, ["NVIDIA L4"])
    assert describe_device() == "GPU NVIDIA L4"


def test_several_gpus_say_how_to_use_each(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, ["NVIDIA A100", "NVIDIA A100"])
    assert describe_device() == "GPU NVIDIA A100 (1 of 2 GPUs; --workers 2 uses each)"


def test_one_gpu_per_worker_then_shared_with_memory_growth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert worker_environments(2, 0) == [{}, {}]
    assert worker_environments(2, 2) == [
        {"CUDA_VISIBLE_DEVICES": "0"},
        {"CUDA_VISIBLE_DEVICES": "1"},
    ]
    shared = worker_environments(3, 2)
    assert [place["CUDA_VISIBLE_DEVICES"] for place in shared] == ["0", "1", "0"]
    assert all(place[MEMORY_GROWTH] == "true" for place in shared)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # the user's choice of GPUs is kept
    assert [p["CUDA_VISIBLE_DEVICES"] for p in worker_environments(2, 2)] == ["2", "3"]


def test_search_workers_each_get_their_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """``search --workers 2`` with two visible GPUs starts each worker on one of them."""
    fake_gpus(monkeypatch, ["NVIDIA L4", "NVIDIA L4"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    started: list[dict[str, str]] = []

    def popen(command: list[str], env: dict[str, str]) -> SimpleNamespace:
        started.append(env)
        return SimpleNamespace(command=command)

    monkeypatch.setattr(subprocess, "Popen", popen)
    options = SimpleNamespace(storage="sqlite:///s.db", tracking_uri="sqlite:///m.db")
    run = SimpleNamespace(name="s", options=options, enqueue_anchors=lambda: None)
    lines: list[str] = []
    workers.start_workers(run, 2, 4, lines.append)  # type: ignore[arg-type]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == ["0", "1"]
    threads = workers.threads_per_worker(2)
    assert lines == [f"starting 2 workers ({threads} intra-op thread(s) each; GPU 0, 1)"]


def test_nothing_in_the_package_forces_the_cpu() -> None:
    """Only the workers' placement names GPUs; no trial code hides them or pins the CPU."""
    forcing = re.compile(r"set_visible_devices|tf\.device\(|CUDA_VISIBLE_DEVICES")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "devices.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if forcing.search(line)
    ]
    assert found == []
