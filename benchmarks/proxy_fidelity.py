"""Can the compact CNN's ranking of crop policies be trusted for a larger network? (issue 20)

Confirms the same policies — the full-image baseline, every kind's anchor (its conventional
setting) and the best of a short random screen of the space — over ``--seeds`` seeds on the
compact CNN (the proxy) and on a larger network, at the policy's size and at each
``--scales`` multiple of it (the windows are the same; only the resize target changes), and
compares the rankings by validation accuracy: Kendall's tau (scipy's exact p-value and a
bootstrap interval over the seeds), whether the top-1 agrees, and the cost of each network.
A network whose best policy is not ``LEARNED_MARGIN`` above chance is reported as not
trained, and no agreement is computed from it. Results are written after every run and a
rerun skips the runs already in ``--out``.

    nice -n 10 .venv/bin/python benchmarks/proxy_fidelity.py --data shapes
    nice -n 10 .venv/bin/python benchmarks/proxy_fidelity.py \
        --data mnist:../shared/data/mnist --out benchmarks/proxy_fidelity_mnist.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def policies(
    data: Any, space: Any, screen: int, keep: int, epochs: int, seed: int
) -> list[dict[str, Any]]:
    """The baseline, the anchors, and the ``keep`` best of ``screen`` random draws of the
    space (each trained once on the compact CNN, as a search's screening would)."""
    import optuna

    from search.settings import TrainConfig, derive_seed
    from search.space import split_values
    from search.training.fit import train_policy

    chosen = [space.baseline(), *space.conventions()]
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scored = []
    for _ in range(screen):
        trial = study.ask()
        values = space.sample(trial)
        policy, config = split_values(
            values, TrainConfig(epochs=epochs, seed=derive_seed(seed, "train"))
        )
        score = train_policy(policy, data, config).val_accuracy or 0.0
        study.tell(trial, score)
        print(f"screen {policy.label()}: val {score:.4f}", flush=True)
        scored.append((score, values))
    scored.sort(key=lambda s: -s[0])
    seen = {label(values) for values in chosen}
    fresh = []
    for _, values in scored:  # never a second baseline or a repeated draw
        if label(values) not in seen:
            seen.add(label(values))
            fresh.append(values)
    return chosen + fresh[:keep]


def label(values: dict[str, Any]) -> str:
    """The policy's label (two draws of the space can name the same policy)."""
    from search.settings import TrainConfig
    from search.space import split_values

    return split_values(values, TrainConfig())[0].label()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--epochs", type=int, default=4, help="the compact CNN's (the search default)"
    )
    parser.add_argument(
        "--large", default="width=52", help="width=N (the compact family at width N) or keras:NAME"
    )
    parser.add_argument("--large-epochs", type=int, default=6)
    parser.add_argument("--scales", default="1", help="comma-separated size multiples, e.g. 1,2")
    parser.add_argument(
        "--screen", type=int, default=6, help="random policies screened for the best two"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "proxy_fidelity.json")
    args = parser.parse_args()

    from search.crop.policy import CropPolicy
    from search.data import load_dataset
    from search.settings import TrainConfig
    from search.space import Space, shipped_space, split_values
    from search.study.confirm.agreement import has_learned, rank_agreement
    from search.study.confirm.stage import confirm_seeds
    from search.training.fit import train_policy
    from search.training.model import build_network, hyperparameters

    data = load_dataset(args.data)
    space = Space.load(
        shipped_space("spaces/default.yaml" if data.has_boxes else "spaces/classic.yaml")
    )
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    out.setdefault("conditions", {}).update(
        data=args.data,
        seeds=args.seeds,
        epochs=args.epochs,
        large=args.large,
        large_epochs=args.large_epochs,
        cpus=os.cpu_count(),
        train=len(data.train),
        val=len(data.val),
        classes=data.n_classes,
    )
    if "policies" not in out:
        out["policies"] = policies(data, space, args.screen, 2, args.epochs, args.seed)
    named = [label(values) for values in out["policies"]]
    missing = 1 + len(space.conventions()) + 2 - len(set(named))  # baseline, anchors, best two
    if missing > 0:  # an earlier version kept a repeat: add the next distinct (its runs stay)
        drawn = policies(data, space, args.screen, 2 + len(named), args.epochs, args.seed)
        out["policies"] += [v for v in drawn if label(v) not in named][:missing]
    runs: dict[str, Any] = out.setdefault("runs", {})
    large = args.large
    networks = {
        "compact": ({}, args.epochs),
        large: (
            {"model": large} if large.startswith("keras:") else {"width": int(large.split("=")[1])},
            args.large_epochs,
        ),
    }
    scales = [int(s) for s in args.scales.split(",")]
    seeds = confirm_seeds(args.seed, args.seeds)
    for name, (fields, _) in networks.items():
        policy, config = split_values(out["policies"][0], TrainConfig(**fields))
        net = build_network(
            config.model, (*policy.size, 3), data.n_classes, hyperparameters(config)
        )
        out.setdefault("params", {})[name] = net.count_params()
    for scale in scales:  # seed-major: a run cut short still has whole seeds
        for seed in seeds:
            for name, (fields, epochs) in networks.items():
                for index, values in enumerate(out["policies"]):
                    key = f"{name}|x{scale}|{index}|{seed}"
                    if key in runs:
                        continue
                    policy, config = split_values(
                        values, TrainConfig(epochs=epochs, seed=seed, **fields)
                    )
                    size = [scale * s for s in policy.size]
                    policy = CropPolicy.from_dict({**policy.to_dict(), "size": size})
                    started = time.perf_counter()
                    result = train_policy(policy, data, config)
                    runs[key] = {
                        "val": result.val_accuracy,
                        "test": result.test_accuracy,
                        "seconds": time.perf_counter() - started,
                    }
                    print(
                        f"{key} {policy.label()}: val {result.val_accuracy:.4f} "
                        f"({runs[key]['seconds']:.0f}s)",
                        flush=True,
                    )
                    args.out.write_text(json.dumps(out, indent=1))
    summary = []
    labels = [label(v) for v in out["policies"]]
    for scale in scales:
        table: dict[str, list[list[float]]] = {}
        cost: dict[str, float] = {}
        for name in networks:
            table[name] = [
                [runs[k]["val"] for s in seeds if (k := f"{name}|x{scale}|{i}|{s}") in runs]
                for i in range(len(labels))
            ]
            cost[name] = sum(
                r["seconds"] for k, r in runs.items() if k.startswith(f"{name}|x{scale}|")
            )
        complete = [
            i
            for i in range(len(labels))
            if all(table[n][i] for n in networks) and labels.index(labels[i]) == i
        ]
        means = {n: [statistics.fmean(table[n][i]) for i in complete] for n in networks}
        learned = {n: has_learned(max(means[n]), data.n_classes) for n in networks}
        entry: dict[str, Any] = {
            "scale": scale,
            "policies": [labels[i] for i in complete],
            "means": means,
            "seconds": cost,
            "learned": learned,
        }
        if all(learned.values()) and len(complete) >= 2:
            tau = rank_agreement(*(list(table[n][i] for i in complete) for n in networks))
            top = [complete[max(range(len(complete)), key=means[n].__getitem__)] for n in networks]
            entry.update(
                tau=tau.tau,
                p=tau.p_value,
                low=tau.low,
                high=tau.high,
                top1={n: labels[t] for n, t in zip(networks, top, strict=True)},
                top1_agrees=top[0] == top[1],
            )
        summary.append(entry)
        print(json.dumps(entry, indent=1), flush=True)
    out["summary"] = summary
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
