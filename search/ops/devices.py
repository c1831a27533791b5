"""The device trials train on, and one GPU per worker process.

TensorFlow places a trial's ops on its first visible GPU when it sees one, else on the CPU;
nothing in cropsearch chooses for it. A process trains one trial at a time, so one search keeps
one GPU busy; ``search --workers N`` gives each worker process one GPU of its own
(``CUDA_VISIBLE_DEVICES``), and shares them round-robin when there are more workers than GPUs.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

#: The GPUs a process may see (CUDA's variable, read by TensorFlow).
VISIBLE = "CUDA_VISIBLE_DEVICES"
#: Set for workers that share a GPU: TensorFlow then allocates GPU memory as it needs it
#: instead of all of it at start.
MEMORY_GROWTH = "TF_FORCE_GPU_ALLOW_GROWTH"


#: What a GPU driver puts on a Linux machine (NVIDIA, AMD ROCm, WSL). Without any of them
#: TensorFlow finds no GPU, and is not imported to be asked (its import takes seconds that the
#: command's data loading would otherwise wait for).
GPU_DRIVERS = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def visible_gpus() -> list[Any]:
    """TensorFlow's visible GPUs (``PhysicalDevice``), in its order."""
    if platform.system() == "Linux" and not any(Path(p).exists() for p in GPU_DRIVERS):
        return []
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def gpu_name(device: Any) -> str:
    """The GPU's product name as TensorFlow reports it, else its device name."""
    import tensorflow as tf

    try:
        details = tf.config.experimental.get_device_details(device)
    except (ValueError, RuntimeError):
        details = {}
    return str(details.get("device_name") or device.name)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, macOS' ``sysctl``), else what ``platform``
    knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        try:
            done = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            if done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def describe_device() -> str:
    """Where this process's trials train: ``GPU <name>`` or ``CPU <model>, <n> cores``
    (the parent run's ``device`` param and the first line of ``search``)."""
    gpus = visible_gpus()
    if not gpus:
        return f"CPU {cpu_name()}, {cpu_cores()} cores"
    if len(gpus) == 1:
        return f"GPU {gpu_name(gpus[0])}"
    return f"GPU {gpu_name(gpus[0])} (1 of {len(gpus)} GPUs; --workers {len(gpus)} uses each)"


def worker_environments(workers: int, gpus: int) -> list[dict[str, str]]:
    """What each of ``workers`` processes adds to its environment: with ``gpus`` visible GPUs,
    worker ``i`` sees GPU ``i % gpus`` alone (numbered as in a ``CUDA_VISIBLE_DEVICES`` already
    set), with memory growth when it shares it; without GPUs, nothing."""
    if gpus == 0:
        return [{} for _ in range(workers)]
    given = [part.strip() for part in os.environ.get(VISIBLE, "").split(",")]
    ids = given if len(given) >= gpus and all(given) else [str(i) for i in range(gpus)]
    shared = workers > gpus
    return [
        {VISIBLE: ids[i % gpus], **({MEMORY_GROWTH: "true"} if shared else {})}
        for i in range(workers)
    ]
