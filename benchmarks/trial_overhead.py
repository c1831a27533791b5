"""What a trial costs beyond its training: wall time against pure fit/predict compute (issue 9.1).

Runs a default search (built-in ``shapes`` data, ``spaces/default.yaml``, 10 trials x 4
epochs, no confirmation) with its stores in a temporary folder. Right after each trial, the
same steps that trial ran (a ``fit`` of each epoch on its crops, the validation scores after
each, the test scores when it completed) are timed in a warm loop on a model of the same
shape, compiled and traced beforehand; crops are cut outside the timing, and scores come from
one traced ``model(x, training=False)`` over batches of 256 (``predict`` without its per-call
tf.data set-up, which counts as overhead). The loop runs ``--replays`` times and their mean
counts (not the fastest: a trial runs once, and the fastest of two draws of a noisy machine
is below a typical one). The trial's overhead is its
wall time (Optuna's start to complete) minus that compute; the study's overhead is the
search's wall time minus all trials' compute. Measuring right after each trial keeps both
figures under the same machine load.

    .venv/bin/python benchmarks/trial_overhead.py [--trials 10] [--replays 2] [--out FILE]

``--compare FILE`` also checks each trial's validation accuracy and history against an earlier
run's JSON (same seed): run this script from a checkout of an older commit to get one.

``--crops in-graph`` trains on crops cut by the in-graph path (``search.crop.graph``) instead of
the numpy geometry + ``crop_and_resize``: the cost of keeping one geometry
(``docs/crop-design.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
_WARM: dict[tuple[Any, ...], Any] = {}
_WARMED: set[tuple[Any, ...]] = set()


def _warm_model(shape: tuple[int, int, int], n_classes: int, width: int, depth: int) -> Any:
    """One compiled, traced model per shape (built once; its weights drift, its speed does not)."""
    import keras

    from search.training.model import build_model

    key = (shape, n_classes, width, depth)
    if key not in _WARM:
        model = build_model(shape, n_classes, width, depth)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=3e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        _WARM[key] = model
    return _WARM[key]


_INFER: dict[Any, Any] = {}


def _scores(model: Any, crops: Any) -> Any:
    """Class scores, 256 crops a batch, by one traced forward pass per model."""
    import numpy as np
    import tensorflow as tf

    if model not in _INFER:
        spec = tf.TensorSpec([None, *crops.shape[1:]], tf.as_dtype(crops.dtype))
        _INFER[model] = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return np.concatenate(
        [_INFER[model](crops[i : i + 256]).numpy() for i in range(0, len(crops), 256)]
    )


def compute_seconds(
    record: Any, data: Any, train_index: Any, replays: int = 1
) -> tuple[float, float]:
    """The fit and scoring seconds (wall, CPU of this process) of ``record``'s trial, replayed
    on a warm model of its shape: the mean of ``replays`` runs."""
    import numpy as np

    from search.crop.cut import crop_samples

    policy, config = record.crop_policy, record.train
    train = data.train if train_index is None else data.train.take(np.sort(train_index))
    model = _warm_model((*policy.size, 3), data.n_classes, config.width, config.depth)
    epochs = max(len(record.history), 1)
    train_x = [crop_samples(policy, train, True, config.seed, e) for e in range(epochs)]
    val_x = crop_samples(policy, data.val)
    test_x = crop_samples(policy, data.test) if record.state == "complete" else None

    def steps() -> None:
        for x in train_x:
            model.fit(x, train.labels, batch_size=config.batch_size, epochs=1, verbose=0)
            _scores(model, val_x)
        if test_x is not None:
            _scores(model, test_x)

    warm_key = (policy.size, config.width, config.depth, config.batch_size, test_x is None)
    if warm_key not in _WARMED:  # traces for these batch and split sizes
        _WARMED.add(warm_key)
        steps()
    timed = []
    for _ in range(replays):
        started, cpu = time.perf_counter(), time.process_time()
        steps()
        timed.append((time.perf_counter() - started, time.process_time() - cpu))
    return sum(t[0] for t in timed) / replays, sum(t[1] for t in timed) / replays


_IN_GRAPH: dict[tuple[Any, ...], Any] = {}


def in_graph_crop_samples(
    policy: Any,
    samples: Any,
    training: bool = False,
    seed: int = 0,
    epoch: int = 0,
    canvas: Any = None,
) -> Any:
    """``search.crop.cut.crop_samples`` on the in-graph path: ``search.crop.graph.crop_batch``
    traced once per policy and mode, 256 crops per call."""
    import numpy as np
    import tensorflow as tf

    from search.crop.graph import crop_batch

    key = (policy, training)
    if key not in _IN_GRAPH:
        spec = [
            tf.TensorSpec([None, None, None, 3], tf.uint8),
            tf.TensorSpec([None, 2], tf.int64),
            tf.TensorSpec([None, 4], tf.float64),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([], tf.int64),
            tf.TensorSpec([], tf.int64),
        ]

        def crop(images: Any, sizes: Any, boxes: Any, ids: Any, seed: Any, epoch: Any) -> Any:
            crops = crop_batch(policy, images, boxes, sizes, "xyxy", training, seed, epoch, ids)
            return tf.cast(crops, tf.uint8)

        _IN_GRAPH[key] = tf.function(crop, input_signature=spec)
    source = tf.convert_to_tensor(samples.images) if canvas is None else canvas
    ids = np.arange(len(samples), dtype=np.int64)
    parts = [
        _IN_GRAPH[key](
            source[start : start + 256],
            samples.sizes[start : start + 256].astype(np.int64),
            samples.boxes[start : start + 256].astype(np.float64),
            ids[start : start + 256],
            np.int64(seed),
            np.int64(epoch),
        ).numpy()
        for start in range(0, len(samples), 256)
    ]
    return np.concatenate(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "trial_overhead.json")
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON (same seed)")
    parser.add_argument(
        "--replays", type=int, default=2, help="warm replays of each trial; their mean counts"
    )
    parser.add_argument(
        "--crops",
        choices=["numpy", "in-graph"],
        default="numpy",
        help="the path training cuts its crops on (in-graph: the one-geometry alternative)",
    )
    args = parser.parse_args()
    if args.crops == "in-graph":
        import search.training.fit

        search.training.fit.crop_samples = in_graph_crop_samples  # type: ignore[assignment]

    import optuna

    from search.data import load_dataset
    from search.engines.common import SearchOptions
    from search.engines.optuna import OptunaSearch
    from search.space import Space
    from search.study.record import TrialRecord

    data = load_dataset(args.data)
    space = Space.load(REPO / "spaces" / "default.yaml")
    rows: list[dict[str, Any]] = []
    measuring = [0.0]  # seconds spent in the warm loop, taken off the search's wall time

    cpu: dict[int, float] = {}  # trial -> CPU seconds of this process during its objective

    class Measured(OptunaSearch):
        def objective(self, trial: optuna.Trial) -> float:
            started = time.process_time()
            try:
                return super().objective(trial)
            finally:
                cpu[trial.number] = time.process_time() - started

        def _progress(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            super()._progress(study, trial)
            if "record" not in trial.user_attrs:
                return
            started = time.perf_counter()
            record = TrialRecord.from_json(trial.user_attrs["record"])
            wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
            compute, compute_cpu = (
                (0.0, 0.0)
                if record.duplicate_of is not None
                else compute_seconds(record, data, self.train_index, args.replays)
            )
            rows.append(
                {
                    "trial": trial.number,
                    "policy": record.label,
                    "state": record.state,
                    "epochs": len(record.history),
                    "wall": wall,
                    "compute": compute,
                    "cpu": cpu.get(trial.number, 0.0),
                    "compute_cpu": compute_cpu,
                    "val_accuracy": record.val_accuracy,
                    "history": record.history,
                }
            )
            print(
                f"  trial {trial.number:2d} {record.state:8s} wall {wall:5.1f}s  compute "
                f"{compute:5.1f}s  overhead {max(wall - compute, 0) / max(wall, 1e-9):4.0%}; "
                f"CPU {cpu.get(trial.number, 0.0):5.1f}s vs {compute_cpu:5.1f}s  {record.label}",
                flush=True,
            )
            measuring[0] += time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        options = SearchOptions(
            trials=args.trials,
            epochs=args.epochs,
            seed=args.seed,
            study="overhead",
            storage=f"sqlite:///{folder}/optuna.db",
            tracking_uri=f"sqlite:///{folder}/mlflow.db",
            confirm=False,
        )
        started = time.perf_counter()
        Measured(data, space, options, echo=lambda line: None).run()
        search_wall = time.perf_counter() - started - measuring[0]

    wall = sum(r["wall"] for r in rows)
    compute = sum(r["compute"] for r in rows)
    trial_cpu = sum(r["cpu"] for r in rows)
    compute_cpu = sum(r["compute_cpu"] for r in rows)
    summary = {
        "trials": len(rows),
        "trial_wall": wall,
        "trial_compute": compute,
        "trial_overhead": (wall - compute) / wall,
        "search_wall": search_wall,
        "search_overhead": (search_wall - compute) / search_wall,
        "trial_cpu": trial_cpu,
        "compute_cpu": compute_cpu,
        "cpu_overhead": (trial_cpu - compute_cpu) / trial_cpu,
        "load_average": os.getloadavg(),
        "mean_trial_wall": wall / max(len(rows), 1),
        "mean_trial_compute": compute / max(len(rows), 1),
        "overhead_seconds_per_trial": (wall - compute) / max(len(rows), 1),
        "replays": args.replays,
    }
    print(
        f"{len(rows)} trials: wall {wall:.1f}s, fit/predict compute {compute:.1f}s -> "
        f"overhead {summary['trial_overhead']:.1%} of trial wall time "
        f"({summary['overhead_seconds_per_trial']:.2f}s a trial); whole search "
        f"{search_wall:.1f}s -> overhead {summary['search_overhead']:.1%}; CPU time: trials "
        f"{trial_cpu:.1f}s, fit/predict {compute_cpu:.1f}s -> overhead "
        f"{summary['cpu_overhead']:.1%} (load average {os.getloadavg()[0]:.1f})"
    )
    args.out.write_text(json.dumps({"summary": summary, "trials": rows}, indent=1) + "\n")
    if args.compare is not None:
        earlier = {r["trial"]: r for r in json.loads(args.compare.read_text())["trials"]}
        same = [
            r["trial"]
            for r in rows
            if r["trial"] in earlier
            and math.isclose(r["val_accuracy"], earlier[r["trial"]]["val_accuracy"], abs_tol=0)
            and r["history"] == earlier[r["trial"]]["history"]
        ]
        print(f"same results as {args.compare}: {len(same)} of {len(rows)} trials")
        if len(same) != len(rows):
            sys.exit(1)


if __name__ == "__main__":
    main()
