"""Which engine finds the better crop policy per epoch spent? (issue 8, point 5)

Four searches over ``spaces/default.yaml`` on the same data, each stopped at the same epoch
budgets and, at each budget, its chosen policy confirmed (top 1 and the baseline re-trained
over ``--repeats`` seeds):

- Optuna TPE with median pruning (cropsearch's default),
- Optuna TPE with Hyperband pruning (per-epoch validation accuracy),
- keras-tuner Hyperband (a promoted trial continues its checkpoint),
- keras-tuner random search.

Epochs spent are the epochs the search's trials trained (a pruned trial counts the epochs it
ran; a Hyperband continuation counts only its new epochs), read from MLflow. Every store is
under ``--out``'s folder (a temporary one by default), never ``./mlruns``. Writes
``engines.json`` (one row per method, seed and budget), ``engines.md`` (the table) and
``engines.png`` (confirmed test accuracy against epochs spent).

    .venv/bin/python benchmarks/engines.py --data shapes --seeds 5 --budgets 16,32,48

A 2-minute smoke run: ``--data shapes:train=96,val=48,test=48 --seeds 1 --budgets 2
--epochs 1 --repeats 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]

#: Method -> (engine, algorithm, Optuna pruner).
METHODS: dict[str, tuple[str, str, str]] = {
    "optuna-tpe-median": ("optuna", "tpe", "median"),
    "optuna-tpe-hyperband": ("optuna", "tpe", "hyperband"),
    "keras-tuner-hyperband": ("keras-tuner", "hyperband", "median"),
    "keras-tuner-random": ("keras-tuner", "random", "median"),
}


def epochs_spent(tracking_uri: str, study: str) -> int:
    """Epochs the study's search trials trained, from their MLflow metric histories."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return 0
    total = 0
    for run in client.search_runs([experiment.experiment_id], "tags.stage = 'search'"):
        if "duplicate_of" not in run.data.tags:
            total += len(client.get_metric_history(run.info.run_id, "val_accuracy"))
    return total


def search_once(method: str, seed: int, trials: int, args: argparse.Namespace, data: Any) -> Any:
    """Run ``trials`` more trials of the method's study (created or resumed); return the
    search object (its records, tracker and parent run)."""
    from search.engines.common import SearchOptions
    from search.engines.keras_tuner import KerasTunerSearch
    from search.engines.optuna import OptunaSearch
    from search.space import Space

    engine, algorithm, pruner = METHODS[method]
    options = SearchOptions(
        trials=trials,
        epochs=args.epochs,
        seed=seed,
        study=f"{method}-{seed}",
        storage=f"sqlite:///{args.folder}/optuna.db",
        tracking_uri=f"sqlite:///{args.folder}/mlflow.db",
        confirm=False,
        algorithm=algorithm,
        pruner=pruner,  # type: ignore[arg-type]
    )
    space = Space.load(REPO / "spaces" / "default.yaml")
    kind = KerasTunerSearch if engine == "keras-tuner" else OptunaSearch
    run = kind(data, space, options, echo=lambda line: None)
    run.run()
    return run


def measure(method: str, seed: int, args: argparse.Namespace, data: Any) -> list[dict[str, Any]]:
    """Search up to each budget, confirming the chosen policy at each."""
    from search.study.confirm.stage import ConfirmPlan, confirm

    rows = []
    tracking = f"sqlite:///{args.folder}/mlflow.db"
    spent, started = 0, time.perf_counter()
    for budget in args.budgets:
        run = None
        while spent < budget or run is None:
            trials = max(1, (budget - spent) // args.epochs)
            run = search_once(method, seed, trials, args, data)
            spent = epochs_spent(tracking, run.name)
            if spent >= budget:
                break
        plan = ConfirmPlan(1, args.repeats, seed, args.epochs)
        confirmation = confirm(
            run.records, data, run.tracker, run.parent_id, plan, None, echo=lambda line: None
        )
        win, base = confirmation.winner_summary, confirmation.baseline_summary
        row = {
            "method": method,
            "seed": seed,
            "budget": budget,
            "epochs_spent": spent,
            "trials": len(run.records.search_records()),
            "winner": win.label,
            "confirmed_val": win.val.mean,
            "confirmed_test": win.test.mean,
            "baseline_test": base.test.mean if base is not None else None,
            "seconds": time.perf_counter() - started,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per method and budget, the mean (± std over seeds) epochs spent and
    confirmed test accuracy of the chosen policy."""
    lines = [
        "| method | budget | epochs spent | confirmed test accuracy | baseline test | seeds |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["method"], r["budget"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for method, budget in keys:
        mine = [r for r in rows if r["method"] == method and r["budget"] == budget]
        test = [r["confirmed_test"] for r in mine]
        base = [r["baseline_test"] for r in mine if r["baseline_test"] is not None]
        spent = statistics.mean(r["epochs_spent"] for r in mine)
        std = statistics.stdev(test) if len(test) > 1 else 0.0
        base_text = f"{statistics.mean(base):.4f}" if base else "-"
        lines.append(
            f"| {method} | {budget} | {spent:.1f} | {statistics.mean(test):.4f} ± {std:.4f} "
            f"| {base_text} | {len(mine)} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Confirmed test accuracy (mean ± std over seeds) against mean epochs spent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        points = []
        for budget in sorted({r["budget"] for r in rows if r["method"] == method}):
            mine = [r for r in rows if r["method"] == method and r["budget"] == budget]
            test = [r["confirmed_test"] for r in mine]
            points.append(
                (
                    statistics.mean(r["epochs_spent"] for r in mine),
                    statistics.mean(test),
                    statistics.stdev(test) if len(test) > 1 else 0.0,
                )
            )
        if points:
            xs, ys, errors = zip(*points, strict=True)
            axes.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=method)
    axes.set_xlabel("epochs spent by the search")
    axes.set_ylabel("confirmed test accuracy of the chosen policy")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--epochs", type=int, default=4, help="max epochs per trial")
    parser.add_argument("--budgets", default="16,32,48", help="epoch budgets, ascending")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="confirmation seeds")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "engines.json")
    parser.add_argument("--stores", type=Path, default=None, help="[default: a temp folder]")
    args = parser.parse_args()
    args.budgets = sorted(int(b) for b in args.budgets.split(","))
    args.out.parent.mkdir(parents=True, exist_ok=True)

    from search.data import load_dataset

    data = load_dataset(args.data)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as temporary:
        args.folder = args.stores or Path(temporary)
        for seed in range(args.seeds):
            for method in args.methods.split(","):
                rows.extend(measure(method, seed, args, data))
                args.out.write_text(json.dumps({"args": _plain(args), "rows": rows}, indent=1))
    markdown = table(rows)
    args.out.with_suffix(".md").write_text(markdown)
    plot(rows, args.out.with_suffix(".png"))
    print(markdown)


def _plain(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


if __name__ == "__main__":
    main()
