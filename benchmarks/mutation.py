"""Mutation testing as a measure of the tests: the share of mutants each area's fast tests kill.

Runs mutmut 3 once per area (the crop geometry, the selection rules, the confirmation
statistics, the pruning rule), each in its own scratch copy of ``search/`` and ``tests/`` under
``build/mutation/<area>/`` with a ``[tool.mutmut]`` section that mutates only that area's module
and runs only its fast test files (none imports TensorFlow: mutmut forks its test process).
The Hypothesis properties of the crop geometry (``tests/test_crop_properties.py``, 200-300
examples each) are left out: run for each of its ~1,200 mutants they would take hours here.
Prints killed/total per module and each survivor's name; ``--json`` also writes the counts.
Not part of CI: it takes minutes to an hour on 2 cores.

Usage::

    nice -n 15 .venv/bin/python benchmarks/mutation.py --max-children 2
    nice -n 15 .venv/bin/python benchmarks/mutation.py --area statistics --show-survivors

``mutmut show <name>`` in ``build/mutation/<area>/`` prints a survivor's diff.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: mutmut's exit code per mutant -> status (mutmut.stats.status_by_exit_code, the ones we meet).
KILLED_CODES = {1, 3}
SURVIVED_CODES = {0}


@dataclass(frozen=True)
class Area:
    """One module under mutation and the fast test files that should catch its mutants."""

    module: str
    tests: tuple[str, ...]
    #: Tests of those files left out (``--deselect``): they import TensorFlow.
    deselect: tuple[str, ...] = ()


AREAS: dict[str, Area] = {
    "geometry": Area(
        "search/crop/geometry.py",
        (
            "tests/test_crop_geometry.py",
            "tests/test_crop_kinds.py",
            "tests/test_study_confirm_boxes.py",
        ),
        ("tests/test_crop_kinds.py::test_every_window_table_has_a_row_for_every_kind",),
    ),
    "selection": Area(
        "search/study/selection.py",
        (
            "tests/test_study_selection.py",
            "tests/test_study_confirm_stage.py",
            "tests/test_study_confirm_model.py",
        ),
    ),
    "statistics": Area(
        "search/study/confirm/statistics.py",
        ("tests/test_study_confirm_statistics.py", "tests/test_study_confirm_model.py"),
    ),
    "pruning": Area(
        "search/engines/optuna_pruning.py",
        ("tests/test_engines_optuna_pruning.py", "tests/test_engines_optuna.py"),
    ),
}


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def prepare(area: Area, folder: Path) -> None:
    """A fresh scratch copy of the package and the tests with this area's mutmut settings."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "search", folder / "search", ignore=ignore)
    shutil.copytree(REPO / "tests", folder / "tests", ignore=ignore)
    shutil.copytree(REPO / "spaces", folder / "spaces")
    settings = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["search/"]',
            f"only_mutate = {_toml_list([area.module])}",
            f"pytest_add_cli_args_test_selection = {_toml_list(list(area.tests))}",
            "pytest_add_cli_args = "
            + _toml_list(
                ["-p", "no:cacheprovider", "-m", "not slow"]
                + [arg for test in area.deselect for arg in ("--deselect", test)]
            ),
            "",
        ]
    )
    (folder / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text() + settings)


def counts(folder: Path, area: Area) -> dict[str, object]:
    """Killed, survived and other mutants of the area's module, from mutmut's meta file."""
    meta = json.loads((folder / "mutants" / (area.module + ".meta")).read_text())
    codes: dict[str, int | None] = meta["exit_code_by_key"]
    killed = sorted(name for name, code in codes.items() if code in KILLED_CODES)
    survived = sorted(name for name, code in codes.items() if code in SURVIVED_CODES)
    other = {
        name: code for name, code in codes.items() if name not in killed and name not in survived
    }
    return {
        "module": area.module,
        "total": len(codes),
        "killed": len(killed),
        "survived": survived,
        "other": other,
    }


def run_area(name: str, area: Area, max_children: int, work: Path) -> dict[str, object]:
    """Run mutmut on one area in its scratch folder; its counts."""
    folder = work / name
    prepare(area, folder)
    started = time.monotonic()
    subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "run", "--max-children", str(max_children)],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    result = counts(folder, area)
    result["seconds"] = round(time.monotonic() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--area", choices=sorted(AREAS), action="append")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "mutation")
    parser.add_argument("--show-survivors", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args()
    results = {}
    for name in args.area or list(AREAS):
        result = run_area(name, AREAS[name], args.max_children, args.work)
        results[name] = result
        total, killed = int(result["total"]), int(result["killed"])  # type: ignore[call-overload]
        share = 100 * killed / total if total else 0.0
        print(
            f"{name:<10} {result['module']:<36} killed {killed}/{total} ({share:.1f}%)"
            f"  survived {len(result['survived'])}  other {len(result['other'])}"  # type: ignore[arg-type]
            f"  {result['seconds']}s",
            flush=True,
        )
        if args.show_survivors:
            for survivor in result["survived"]:  # type: ignore[attr-defined]
                print(f"    survived: {survivor}")
            for other, code in result["other"].items():  # type: ignore[attr-defined]
                print(f"    exit code {code}: {other}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
