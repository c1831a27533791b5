"""What a new model's first ``fit`` costs beyond a warm one, with its optimizer and metric
variables created before the fit (``compile_for_training``) and without (Keras' default:
created inside the first trace, which makes TensorFlow trace the train step twice).

Each measurement is a fresh process (the first trace of a process is the cost in question),
alternating between the two, on the default trial's shapes: 1,500 images of 48x48, batch
64, the compact CNN compiled as a trial compiles it.

    .venv/bin/python benchmarks/first_fit.py [--runs 5]

Prints, per variant, the median wall and CPU seconds of the first and of the second ``fit``
(one epoch each) and the train-step traces; the losses must be equal (same results).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(prebuild: bool) -> dict[str, object]:
    """One process's first and second fit (run in a child: ``--child``)."""
    import keras
    import numpy as np

    import search.training.reuse as reuse

    if not prebuild:
        reuse.compile_for_training = lambda model, schedule, *_: model.compile(  # type: ignore[assignment]
            optimizer=keras.optimizers.Adam(learning_rate=schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    keras.utils.set_random_seed(0)
    model = reuse.compiled_model((48, 48, 3), 6, 16, 4, 3e-3, 48, reuse=False)
    traces = [0]
    step = model.train_step

    def counted(data: object) -> object:
        traces[0] += 1
        return step(data)

    model.train_step = counted  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1500, 48, 48, 3)).astype("float32")
    y = rng.integers(0, 6, 1500)
    fits = []
    for epoch in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        history = model.fit(x, y, batch_size=64, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        fits.append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        "first_wall": fits[0][0], "first_cpu": fits[0][1],
        "second_wall": fits[1][0], "second_cpu": fits[1][1],
        "traces": traces[0], "loss": history.history["loss"][-1],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=["with", "without"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child == "with")))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    results: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    for run in range(args.runs):
        for variant in results:
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results[variant].append(row)
            print(
                f"run {run + 1} {variant:7s} first fit {row['first_wall']:.2f}s "
                f"(CPU {row['first_cpu']:.2f}s), second {row['second_wall']:.2f}s "
                f"(CPU {row['second_cpu']:.2f}s), {row['traces']} traces",
                flush=True,
            )
    for variant, rows in results.items():
        median = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "loss"}
        print(
            f"{variant:7s} state built before: median first fit {median['first_wall']:.2f}s "
            f"(CPU {median['first_cpu']:.2f}s), second {median['second_wall']:.2f}s "
            f"(CPU {median['second_cpu']:.2f}s); first over second "
            f"{median['first_wall'] - median['second_wall']:.2f}s"
        )
    losses = {r["loss"] for rows in results.values() for r in rows}
    print(f"same loss in every run: {len(losses) == 1}")


if __name__ == "__main__":
    main()
