"""Is a screening trial's rank the full budget's rank? (issue 7, point 4c)

Trains each anchor policy of ``spaces/default.yaml`` (the baseline and every kind at its
conventional setting) twice on the same data and seed: at the screening fidelity (the
``--screen`` default: 5,000 training samples) and at the full budget (the whole training
split), and compares the two rankings by validation accuracy (Spearman's rho, top-1 and top-3
agreement) and their cost.

    .venv/bin/python benchmarks/screening.py --data mnist:../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"mnist:{REPO.parent / 'shared' / 'data' / 'mnist'}")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "screening.json")
    args = parser.parse_args()

    from scipy import stats

    from search.data import load_dataset
    from search.engines.common import screen_fraction, screen_index
    from search.settings import TrainConfig, derive_seed
    from search.space import Space, split_values
    from search.training.fit import train_policy

    data = load_dataset(args.data)
    space = Space.load(REPO / "spaces" / "default.yaml")
    base = TrainConfig(epochs=args.epochs, seed=derive_seed(args.seed, "train"))
    fraction = screen_fraction(len(data.train), None)
    index = screen_index(len(data.train), fraction, args.seed)
    rows: list[dict[str, Any]] = []
    for values in [space.baseline(), *space.conventions()]:
        policy, config = split_values(values, base)
        row: dict[str, Any] = {"policy": policy.label()}
        for name, subset in (("screen", index), ("full", None)):
            started = time.perf_counter()
            result = train_policy(policy, data, config, train_index=subset)
            row[f"{name}_val"] = result.val_accuracy
            row[f"{name}_seconds"] = time.perf_counter() - started
        rows.append(row)
        print(
            f"{row['policy']}: screen {row['screen_val']:.4f} ({row['screen_seconds']:.0f}s), "
            f"full {row['full_val']:.4f} ({row['full_seconds']:.0f}s)",
            flush=True,
        )
    rho = float(stats.spearmanr([r["screen_val"] for r in rows], [r["full_val"] for r in rows])[0])

    def top(key: str, k: int) -> set[str]:
        return {r["policy"] for r in sorted(rows, key=lambda r: -r[key])[:k]}

    summary = {
        "data": args.data,
        "train": len(data.train),
        "screen_samples": len(data.train) if index is None else len(index),
        "spearman_rho": rho,
        "top1_same": top("screen_val", 1) == top("full_val", 1),
        "top3_overlap": len(top("screen_val", 3) & top("full_val", 3)),
        "cost_ratio": sum(r["full_seconds"] for r in rows) / sum(r["screen_seconds"] for r in rows),
        "rows": rows,
    }
    args.out.write_text(json.dumps(summary, indent=1))
    print("| policy | screening val (5,000 samples) | full-budget val | ")
    print("|---|---|---|")
    for r in sorted(rows, key=lambda r: -r["full_val"]):
        print(f"| `{r['policy']}` | {r['screen_val']:.4f} | {r['full_val']:.4f} |")
    print(
        f"Spearman rho {rho:.2f}; same top-1: {summary['top1_same']}; top-3 overlap "
        f"{summary['top3_overlap']}/3; full budget costs {summary['cost_ratio']:.1f}x screening"
    )


if __name__ == "__main__":
    main()
