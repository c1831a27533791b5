"""Does choosing for the boxes a user will have pay? (issue 16, point 5)

For each target box level (exact, iou:0.9, iou:0.75, iou:0.5, none) one default search
(``cropsearch search --boxes LEVEL``, same data, same ``--seed``) chooses and confirms its
winner; the exact-box search's confirmation scores its own winner at every level. Both
confirmations train with the same seeds (derived from ``--seed``) and score the same test
images with the same disturbed boxes, so the two winners pair by seed: the table gives, per
level, each winner's test accuracy at that level and the paired 95% interval of the
difference (the level's winner minus the exact-box winner).

    .venv/bin/python benchmarks/box_quality.py --data shapes
    .venv/bin/python benchmarks/box_quality.py --data mnist:../shared/data/mnist,train=5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
LEVELS = ("exact", "iou:0.9", "iou:0.75", "iou:0.5", "none")


def _search(data: str, level: str, seed: int, folder: Path, extra: list[str]) -> tuple[str, float]:
    """One default search choosing for ``level``; returns its study name and wall time."""
    study = "box-" + level.replace(":", "")
    command = [
        sys.executable, "-c", "import sys; from search.cli import main; sys.exit(main())",
        "search", "--data", data, "--boxes", level, "--seed", str(seed), "--study", study,
        "--storage", f"sqlite:///{folder}/optuna.db",
        "--tracking-uri", f"sqlite:///{folder}/mlflow.db", *extra,
    ]  # fmt: skip
    if _confirmed(f"sqlite:///{folder}/optuna.db", study):
        print(f"{level}: already in {folder}", flush=True)
        return study, float("nan")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    (folder / f"{study}.txt").write_text(done.stdout)
    if done.returncode != 0:
        raise SystemExit(
            f"search for {level} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    verdict = [line for line in done.stdout.splitlines() if line.startswith("verdict:")]
    print(f"{level}: {seconds:.0f}s; {verdict[-1] if verdict else 'no verdict'}", flush=True)
    return study, seconds


def _confirmed(storage: str, study: str) -> bool:
    """Whether ``study`` exists in ``storage`` with its confirmation (a resumed benchmark)."""
    from search.engines.common import StudyError
    from search.engines.lookup import find_study

    try:
        return find_study(study, storage).records.confirmation() is not None
    except (StudyError, KeyError):
        return False


def _winner_runs(storage: str, study: str) -> tuple[str, dict[int, Any]]:
    """The confirmed winner's label and its confirmation runs by training seed."""
    from search.engines.lookup import find_study

    found = find_study(study, storage)
    confirmation = found.records.confirmation()
    assert confirmation is not None, f"study {study} has no confirmation"
    runs = {
        r.train.seed: r
        for r in found.records.confirm_records()
        if r.number == confirmation.winner and r.state == "complete"
    }
    return confirmation.winner_summary.label, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", nargs="+", default=list(LEVELS))
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: beside)")
    parser.add_argument(
        "--folder", type=Path, default=None,
        help="the stores' folder; levels already confirmed there are not searched again",
    )  # fmt: skip
    parser.add_argument("extra", nargs="*", help="more `cropsearch search` options, after --")
    args = parser.parse_args()

    from search.data.boxes import BoxSource
    from search.study.confirm.statistics import estimate, paired_interval

    folder = args.folder or Path(tempfile.mkdtemp(prefix="box-quality-"))
    storage = f"sqlite:///{folder}/optuna.db"
    studies = {}
    for level in args.levels:
        studies[level] = _search(args.data, level, args.seed, folder, args.extra)
    exact_label, exact_runs = _winner_runs(storage, studies["exact"][0])
    rows: list[dict[str, Any]] = []
    for level in args.levels:
        name = BoxSource.parse(level).name
        label, runs = _winner_runs(storage, studies[level][0])
        seeds = sorted(set(runs) & set(exact_runs))
        chosen = [runs[s].test_accuracy or 0.0 for s in seeds]  # scored at its own level
        reference = [
            exact_runs[s].test_accuracy if name == "exact" else exact_runs[s].robustness[name]
            for s in seeds
        ]
        diff = paired_interval(chosen, reference)
        row = {
            "level": level,
            "winner": label,
            "winner_test": estimate(chosen).mean,
            "exact_winner": exact_label,
            "exact_winner_test": estimate(reference).mean,
            "diff_points": 100 * diff.mean,
            "low_points": 100 * diff.low,
            "high_points": 100 * diff.high,
            "seeds": len(seeds),
            "search_seconds": round(studies[level][1], 1),
        }
        rows.append(row)
        print(
            f"{level:>9}: chosen {label} {row['winner_test']:.4f} vs exact-box winner "
            f"{row['exact_winner_test']:.4f}: {row['diff_points']:+.2f} "
            f"[{row['low_points']:+.2f}, {row['high_points']:+.2f}] points ({len(seeds)} seeds)",
            flush=True,
        )
    out = args.out or REPO / "benchmarks" / f"box_quality_{args.data.split(':')[0]}.json"
    out.write_text(json.dumps({"data": args.data, "seed": args.seed, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
