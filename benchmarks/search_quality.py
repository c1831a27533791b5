"""Does the default search land where it should? (issue 7, point 5)

On ``shapes`` the best region is known by construction: the object crop with context of about
0.25 or more on every side (the cue bar lies 0.10-0.24 x the object's size outside its box).
This script runs the default search (10 trials x 4 epochs, then confirmation of the top 3 and
the baseline over 3 seeds) for several sampler seeds, and an exhaustive reference grid
(kind x context x aspect, each point confirmed the same way: 3 seeds x 4 epochs on all
training data), and reports per seed the confirmed winner, whether it lies in the known region
(``object`` with context >= 0.2), its confirmed test accuracy next to the grid's best
(chosen by confirmed validation mean, as the search chooses) and the epochs each spent.

    .venv/bin/python benchmarks/search_quality.py --seeds 10 --out benchmarks/search_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
#: Context lower bound of the known best region (the bar is >= 70% visible on every side).
REGION_CONTEXT = 0.2
GRID_CONTEXTS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
GRID_ASPECTS = (0.5, 1.0, 2.0)


def in_region(policy: dict[str, Any]) -> bool:
    """Whether a policy lies in the known best region of ``shapes``."""
    return policy["kind"] == "object" and policy["context"] >= REGION_CONTEXT


def grid_policies() -> list[dict[str, Any]]:
    """The reference grid: every kind at its conventional setting, and the object crop on a
    context x aspect grid."""
    points: list[dict[str, Any]] = [
        {"kind": "full"},
        {"kind": "center", "fraction": 0.875},
        {"kind": "random_resized", "fraction": 0.08},
        {"kind": "object_random", "fraction": 0.08, "context": 0.25},
    ]
    points += [
        {"kind": "object", "context": c, "aspect_ratio": a}
        for c in GRID_CONTEXTS
        for a in GRID_ASPECTS
    ]
    return [{"size": [48, 48], **p} for p in points]


def run_grid(data: Any, epochs: int, repeats: int) -> list[dict[str, Any]]:
    """Each grid point trained with the confirmation seeds of seed 0."""
    from search.crop.policy import CropPolicy
    from search.settings import TrainConfig
    from search.study.confirm.stage import confirm_seeds
    from search.study.confirm.statistics import estimate
    from search.training.fit import train_policy

    rows = []
    for i, fields in enumerate(grid_policies(), start=1):
        policy = CropPolicy.from_dict(fields)
        vals, tests = [], []
        for seed in confirm_seeds(0, repeats):
            result = train_policy(policy, data, TrainConfig(epochs=epochs, seed=seed))
            vals.append(result.val_accuracy)
            tests.append(result.test_accuracy)
        val, test = estimate(vals), estimate(tests)
        rows.append(
            {
                "policy": policy.to_dict(),
                "label": policy.label(),
                "val_mean": val.mean,
                "test_mean": test.mean,
                "test_std": test.std,
                "epochs": epochs * repeats,
            }
        )
        print(
            f"grid {i}/{len(grid_policies())}: {policy.label()}: val {val}, test {test}", flush=True
        )
    return rows


def run_search(data: Any, space: Any, seed: int, folder: Path) -> dict[str, Any]:
    """The default search (``cropsearch search --seed SEED``) into ``folder``."""
    from search.engines.common import SearchOptions
    from search.engines.optuna import OptunaSearch

    lines: list[str] = []
    options = SearchOptions(
        seed=seed,
        study=f"quality-{seed}",
        storage=f"sqlite:///{folder}/optuna.db",
        tracking_uri=f"sqlite:///{folder}/mlflow.db",
    )
    started = time.monotonic()
    run = OptunaSearch(data, space, options, echo=lines.append)
    confirmation = run.run()
    seconds = time.monotonic() - started
    assert confirmation is not None
    records = run.records.search_records()
    win = confirmation.winner_summary
    search_epochs = sum(len(r.history) for r in records if r.duplicate_of is None)
    confirm_epochs = sum(len(r.history) for r in run.records.confirm_records())
    return {
        "seed": seed,
        "winner": win.label,
        "winner_policy": win.policy,
        "in_region": in_region(win.policy),
        "val_mean": win.val.mean,
        "test_mean": win.test.mean,
        "test_std": win.test.std,
        "verdict": confirmation.verdict,
        "epochs": search_epochs + confirm_epochs,
        "seconds": seconds,
        "log": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "search_quality.json")
    parser.add_argument(
        "--grid-only", action="store_true", help="Only the reference grid, into --out."
    )
    parser.add_argument(
        "--grid", type=Path, default=None,
        help="Take the reference grid from an earlier output instead of training it again.",
    )  # fmt: skip
    parser.add_argument(
        "--report", nargs=2, type=Path, metavar=("SEARCHES", "GRID"),
        help="Print the table from two earlier outputs (searches, grid) and stop.",
    )  # fmt: skip
    args = parser.parse_args()
    if args.report:
        searches, grid = (json.loads(path.read_text()) for path in args.report)
        report({"searches": searches["searches"], "grid": grid["grid"]})
        return

    from search.data import load_dataset
    from search.space import Space

    data = load_dataset("shapes")
    space = Space.load(REPO / "spaces" / "default.yaml")
    results: dict[str, Any] = {"searches": [], "grid": []}
    if args.grid_only:
        results["grid"] = run_grid(data, args.epochs, args.repeats)
        args.out.write_text(json.dumps(results, indent=1))
        return
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            row = run_search(data, space, seed, Path(folder))
            results["searches"].append(row)
            print(
                f"seed {seed}: {row['winner']} in_region={row['in_region']} "
                f"test {row['test_mean']:.4f} ± {row['test_std']:.4f}, {row['epochs']} epochs, "
                f"{row['seconds']:.0f}s",
                flush=True,
            )
            args.out.write_text(json.dumps(results, indent=1))
    results["grid"] = (
        json.loads(args.grid.read_text())["grid"]
        if args.grid is not None
        else run_grid(data, args.epochs, args.repeats)
    )
    args.out.write_text(json.dumps(results, indent=1))
    report(results)


def report(results: dict[str, Any]) -> None:
    """The README table."""
    grid = results["grid"]
    best = max(grid, key=lambda r: r["val_mean"])
    grid_epochs = sum(r["epochs"] for r in grid)
    print(
        f"grid: {len(grid)} points, {grid_epochs} epochs; best by confirmed val: "
        f"{best['label']} test {best['test_mean']:.4f} ± {best['test_std']:.4f}"
    )
    print("| seed | confirmed winner | in region | test (mean ± std) | vs grid best | epochs |")
    print("|---|---|---|---|---|---|")
    for r in results["searches"]:
        print(
            f"| {r['seed']} | `{r['winner']}` | {'yes' if r['in_region'] else 'no'} | "
            f"{r['test_mean']:.4f} ± {r['test_std']:.4f} | "
            f"{100 * (r['test_mean'] - best['test_mean']):+.2f} | "
            f"{r['epochs']} ({100 * r['epochs'] / grid_epochs:.0f}% of the grid's) |"
        )
    inside = sum(r["in_region"] for r in results["searches"])
    close = sum(r["test_mean"] >= best["test_mean"] - 0.01 for r in results["searches"])
    print(f"in region: {inside}/{len(results['searches'])}; within 1 point: {close}")


if __name__ == "__main__":
    main()
