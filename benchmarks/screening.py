"""Which screening fidelity ranks policies as the full budget does? (issue 17, point 3)

Trains a set of policies of ``spaces/default.yaml`` (the baseline, every kind's anchor, and
``--sampled`` more drawn at random from the space) at each screening fidelity (epochs x share
of the training split) and at the full budget (the confirmation's: every epoch on the whole
split), over ``--seeds`` seeds, and compares each fidelity's ranking by validation accuracy
with the full budget's: Spearman's rho, Kendall's tau, whether the top-1 is the same, whether
the full budget's winner is in the fidelity's top 3 (what the confirmation re-trains), and the
cost against the full budget.

With two or more seeds the comparison is across seeds (a fidelity on seed A against the full
budget on seed B, averaged over the pairs), and the full budget against itself on another seed
is printed as the ceiling: no fidelity can agree with the full budget better than the full
budget agrees with itself.

    .venv/bin/python benchmarks/screening.py --data shapes --sampled 6 --seeds 2
    .venv/bin/python benchmarks/screening.py --data mnist:../shared/data/mnist \\
        --fidelities 4:5000,2:5000,1:5000,4:2500,2:2500 --reuse-full benchmarks/screening.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
FULL = "full budget"


def parse_fidelity(text: str, n_train: int) -> tuple[int, int]:
    """``EPOCHS:SHARE`` (``all``, a fraction, or a sample count) as (epochs, samples)."""
    epochs, share = text.split(":")
    if share == "all":
        return int(epochs), n_train
    amount = float(share)
    return int(epochs), min(n_train, round(amount * n_train) if amount <= 1 else int(amount))


def sampled_policies(space: Any, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` configurations drawn by Optuna's random sampler (distinct labels)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(count)]


def agreement(screen: dict[str, float], full: dict[str, float]) -> dict[str, Any]:
    """How ``screen``'s ranking of policies agrees with ``full``'s."""
    from scipy import stats

    labels = sorted(full)
    a, b = [screen[k] for k in labels], [full[k] for k in labels]
    best = max(labels, key=lambda k: full[k])
    top3 = sorted(labels, key=lambda k: -screen[k])[:3]
    return {
        "spearman": float(stats.spearmanr(a, b)[0]),
        "kendall": float(stats.kendalltau(a, b)[0]),
        "top1_same": max(labels, key=lambda k: screen[k]) == best,
        "winner_in_top3": best in top3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--fidelities", default="2:all,1:all,4:0.5,2:0.5,1:0.5")
    parser.add_argument("--epochs", type=int, default=4, help="the full budget's epochs")
    parser.add_argument("--sampled", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-full", type=Path, default=None,
        help="take seed 0's full-budget scores from an earlier output of this script",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from search.data import load_dataset
    from search.engines.common import screen_index
    from search.settings import TrainConfig, derive_seed
    from search.space import Space, split_values
    from search.training.fit import train_policy

    data = load_dataset(args.data)
    n_train = len(data.train)
    space = Space.load(REPO / "spaces" / "default.yaml")
    configurations = [
        space.baseline(),
        *space.conventions(),
        *sampled_policies(space, args.sampled, args.seed),
    ]
    fidelities = {text: parse_fidelity(text, n_train) for text in args.fidelities.split(",")}
    reused: dict[str, float] = {}
    if args.reuse_full is not None:
        earlier = json.loads(args.reuse_full.read_text())
        reused = {r["policy"]: r["full_val"] for r in earlier["rows"] if "full_val" in r}
    out = args.out or REPO / "benchmarks" / f"screening_{args.data.split(':')[0]}.json"
    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        base = TrainConfig(epochs=args.epochs, seed=derive_seed(args.seed + seed, "train"))
        for values in configurations:
            policy, config = split_values(values, base)
            label = policy.label()
            runs = [(FULL, args.epochs, n_train), *((t, *f) for t, f in fidelities.items())]
            for name, epochs, samples in runs:
                if name == FULL and seed == 0 and label in reused:
                    rows.append({"policy": label, "seed": seed, "fidelity": name,
                                 "val": reused[label], "seconds": None})  # fmt: skip
                    continue
                index = screen_index(n_train, samples / n_train, args.seed + seed)
                started = time.perf_counter()
                result = train_policy(
                    policy, data, config.model_copy(update={"epochs": epochs}), train_index=index
                )
                seconds = time.perf_counter() - started
                rows.append({"policy": label, "seed": seed, "fidelity": name,
                             "val": result.val_accuracy, "seconds": seconds})  # fmt: skip
                print(f"seed {seed} {name:>11} {label}: val {result.val_accuracy:.4f} "
                      f"({seconds:.1f}s)", flush=True)  # fmt: skip
            out.write_text(json.dumps({"data": args.data, "rows": rows}, indent=1))

    def scores(fidelity: str, seed: int) -> dict[str, float]:
        return {r["policy"]: r["val"] for r in rows if r["fidelity"] == fidelity
                and r["seed"] == seed}  # fmt: skip

    def cost(fidelity: str) -> float:
        timed = [r["seconds"] for r in rows if r["fidelity"] == fidelity and r["seconds"]]
        return sum(timed) / max(len(timed), 1)

    seeds = range(args.seeds)
    pairs = list(itertools.permutations(seeds, 2)) or [(0, 0)]
    summary: dict[str, Any] = {}
    full_cost = cost(FULL) if any(r["seconds"] for r in rows if r["fidelity"] == FULL) else None
    for name in [FULL, *fidelities] if len(pairs) > 1 or args.seeds > 1 else list(fidelities):
        found = [agreement(scores(name, a), scores(FULL, b)) for a, b in pairs]
        summary[name] = {
            "spearman": statistics.mean(f["spearman"] for f in found),
            "kendall": statistics.mean(f["kendall"] for f in found),
            "top1_same": sum(f["top1_same"] for f in found),
            "winner_in_top3": sum(f["winner_in_top3"] for f in found),
            "comparisons": len(found),
            "seconds": cost(name),
            "cost_vs_full": cost(name) / full_cost if full_cost else None,
        }
    reference = "across seeds" if args.seeds > 1 else "same seed (no ceiling: one seed)"
    print(f"\n{args.data}: {len(configurations)} policies, {args.seeds} seed(s), {n_train} "
          f"training samples; agreement with the full budget ({args.epochs} epochs on "
          f"{n_train}), {reference}")  # fmt: skip
    print("| fidelity | Spearman rho | Kendall tau | same top-1 | full winner in top 3 | "
          "seconds per run | cost vs full |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        shown = name if name == FULL else "{} epochs x {} samples".format(*fidelities[name])
        ratio = f"{s['cost_vs_full']:.2f}" if s["cost_vs_full"] else "-"
        print(f"| {shown} | {s['spearman']:.2f} | {s['kendall']:.2f} | "
              f"{s['top1_same']}/{s['comparisons']} | {s['winner_in_top3']}/{s['comparisons']} "
              f"| {s['seconds']:.1f} | {ratio} |")  # fmt: skip
    out.write_text(json.dumps({"data": args.data, "rows": rows, "summary": summary}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
