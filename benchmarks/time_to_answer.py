"""Time to an answer: the default ``cropsearch search`` beside a plain hand-written Optuna +
MLflow loop on the same samples (issue 17, point 4).

The plain loop (``--plain``, this file's :func:`plain_search`) is the glue a user would write:
four crop kinds cut per image with ``tf.image`` (full, centre, random, crop around the box),
the same compact CNN, 10 Optuna TPE trials x 4 epochs logged to MLflow, and the best trial's
test accuracy as the answer (no confirmation). ``cropsearch search`` runs with every option
default (10 trials x 4 epochs, then the racing confirmation of the top 3 and the baseline over
3 seeds). Each runs as its own process (imports included), alternately, ``--repeats`` times
in one run; stores go to a temporary folder. Prints each run's wall time and test accuracy,
and the ratio of the medians.

    .venv/bin/python benchmarks/time_to_answer.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DATA = "shapes"
SIZE = 48


def plain_search(folder: Path, seed: int) -> dict[str, Any]:
    """10 trials x 4 epochs of Optuna TPE over four crop kinds, logged to MLflow."""
    import mlflow
    import numpy as np
    import optuna
    import tensorflow as tf

    from search.data import load_dataset
    from search.training.model import build_model

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(DATA)
    mlflow.set_tracking_uri(f"sqlite:///{folder}/plain-mlflow.db")
    mlflow.set_experiment("plain")

    def crop(image: np.ndarray, box: np.ndarray, kind: str, amount: float, rng: Any) -> Any:
        height, width = image.shape[:2]
        if kind == "center":
            out = tf.image.central_crop(image, amount)
        elif kind == "random":
            side_h, side_w = int(height * amount), int(width * amount)
            out = tf.image.random_crop(image, (side_h, side_w, 3), seed=int(rng.integers(1 << 30)))
        elif kind == "object":
            x0, y0, x1, y1 = box
            pad_w, pad_h = (x1 - x0) * amount, (y1 - y0) * amount
            left, top = int(max(x0 - pad_w, 0)), int(max(y0 - pad_h, 0))
            right, bottom = int(min(x1 + pad_w, width)), int(min(y1 + pad_h, height))
            out = tf.image.crop_to_bounding_box(image, top, left, bottom - top, right - left)
        else:
            out = image
        return tf.image.resize(out, (SIZE, SIZE))

    def crops(samples: Any, kind: str, amount: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack(
            [crop(image[:h, :w], box, kind, amount, rng).numpy()
             for image, (h, w), box in zip(samples.images, samples.sizes, samples.boxes,
                                           strict=True)]
        )  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["full", "center", "random", "object"])
        amount = (
            trial.suggest_float("context", 0.0, 0.5)
            if kind == "object"
            else trial.suggest_float("fraction", 0.5, 1.0)
            if kind in ("center", "random")
            else 1.0
        )
        with mlflow.start_run(run_name=f"trial {trial.number}"):
            mlflow.log_params(trial.params)
            tf.keras.utils.set_random_seed(seed + trial.number)
            model = build_model((SIZE, SIZE, 3), data.n_classes)
            model.compile(
                optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            train_x = crops(data.train, kind, amount, seed)
            val_x = crops(data.val, "center" if kind == "random" else kind, amount, seed)
            test_x = crops(data.test, "center" if kind == "random" else kind, amount, seed)
            history = model.fit(
                train_x, data.train.labels, batch_size=64, epochs=4,
                validation_data=(val_x, data.val.labels), verbose=0,
            )  # fmt: skip
            for epoch, value in enumerate(history.history["val_accuracy"]):
                mlflow.log_metric("val_accuracy", value, step=epoch)
            test = float(model.evaluate(test_x, data.test.labels, verbose=0)[1])
            mlflow.log_metric("test_accuracy", test)
            trial.set_user_attr("test_accuracy", test)
            return float(history.history["val_accuracy"][-1])

    study = optuna.create_study(
        direction="maximize",
        storage=f"sqlite:///{folder}/plain-optuna.db",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    study.optimize(objective, n_trials=10)
    best = study.best_trial
    return {"answer": best.params, "test_accuracy": best.user_attrs["test_accuracy"]}


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def run_plain(folder: Path, seed: int) -> dict[str, Any]:
    seconds, out = _timed([sys.executable, __file__, "--plain", str(folder), "--seed", str(seed)])
    result = json.loads(out.strip().splitlines()[-1])
    return {"seconds": seconds, **result}


def run_cropsearch(folder: Path, seed: int, extra: list[str]) -> dict[str, Any]:
    from search.engines.lookup import find_study

    storage = f"sqlite:///{folder}/optuna.db"
    command = [
        sys.executable, "-m", "search.cli", "search", "--data", DATA, "--seed", str(seed),
        "--study", "answer", "--storage", storage, "--tracking-uri",
        f"sqlite:///{folder}/mlflow.db", *extra,
    ]  # fmt: skip
    seconds, _ = _timed(command)
    confirmation = find_study("answer", storage).records.confirmation()
    assert confirmation is not None
    winner = confirmation.winner_summary
    table = [[s.number, s.label, s.val.mean, s.val.std, s.test.mean, s.test.std, s.val.n]
             for s in confirmation.summaries]  # fmt: skip
    return {
        "seconds": seconds, "answer": winner.label, "test_accuracy": winner.test.mean,
        "table": table,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "time_to_answer.json")
    parser.add_argument("extra", nargs="*", help="more `cropsearch search` options, after --")
    args = parser.parse_args()
    if args.plain is not None:
        print(json.dumps(plain_search(args.plain, args.seed)))
        return
    rows: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for method in ("plain", "cropsearch") if repeat % 2 == 0 else ("cropsearch", "plain"):
            folder = Path(tempfile.mkdtemp(prefix=f"answer-{method}-"))
            result = (
                run_plain(folder, args.seed)
                if method == "plain"
                else run_cropsearch(folder, args.seed, args.extra)
            )
            rows.append({"method": method, "repeat": repeat, **result})
            print(f"{method:>10} #{repeat}: {result['seconds']:.0f}s, test "
                  f"{result['test_accuracy']:.4f} ({result['answer']})", flush=True)  # fmt: skip
    medians = {
        m: statistics.median(r["seconds"] for r in rows if r["method"] == m)
        for m in ("plain", "cropsearch")
    }
    ratio = medians["cropsearch"] / medians["plain"]
    tables = [r["table"] for r in rows if r["method"] == "cropsearch"]
    same = all(t == tables[0] for t in tables)
    print(f"cropsearch's confirmation tables, number for number: "
          f"{'the same in every repeat' if same else 'DIFFERENT between repeats'}")  # fmt: skip
    print(f"median wall time: cropsearch {medians['cropsearch']:.0f}s, plain "
          f"{medians['plain']:.0f}s: {ratio:.2f}x")  # fmt: skip
    summary = {"rows": rows, "medians": medians, "ratio": ratio, "same_tables": same}
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
