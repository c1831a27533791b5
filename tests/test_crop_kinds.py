"""The table of crop kinds (``search.crop.kinds``): complete, consistent with the policy and the
window maths, and the crop package's imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from search.crop import geometry
from search.crop.kinds import KINDS, OBJECT_KINDS, RANDOM_KINDS, CropKind, Kind
from search.crop.policy import BOUNDS, CropPolicy

CROP_PACKAGE = Path(geometry.__file__).parent
SIZES = np.array([[60, 80], [90, 50], [64, 64]])
BOXES = np.array([[10.0, 5.0, 40.0, 30.0], [2.0, 20.0, 30.0, 70.0], [20.0, 20.0, 44.0, 44.0]])


def test_every_kind_has_one_row() -> None:
    assert tuple(KINDS) == get_args(Kind)
    assert get_args(CropPolicy.model_fields["kind"].annotation) == tuple(KINDS)
    for name, kind in KINDS.items():
        assert isinstance(kind, CropKind) and kind.name == name
    assert tuple(name for name in KINDS if KINDS[name].needs_box) == OBJECT_KINDS
    assert tuple(name for name in KINDS if KINDS[name].random) == RANDOM_KINDS


def test_every_window_table_has_a_row_for_every_kind() -> None:
    from search.crop import graph  # imports TensorFlow

    assert list(geometry.WINDOWS) == list(KINDS)
    assert list(graph.WINDOWS) == list(KINDS)


@pytest.mark.parametrize("name", list(KINDS))
def test_relevant_fields_are_bounded_policy_fields(name: str) -> None:
    fields = KINDS[name].fields
    assert len(set(fields)) == len(fields)
    for field in fields:
        assert field in CropPolicy.model_fields and field in BOUNDS


@pytest.mark.parametrize("name", list(KINDS))
def test_conventions_set_relevant_fields_and_validate_as_policies(name: str) -> None:
    convention = KINDS[name].convention
    assert set(convention) <= set(KINDS[name].fields)
    policy = CropPolicy(kind=name, **convention)
    assert all(getattr(policy, field) == value for field, value in convention.items())
    with pytest.raises(TypeError):
        convention["fraction"] = 0.5  # type: ignore[index]


@pytest.mark.parametrize("name", list(KINDS))
def test_needs_box_is_what_the_geometry_needs(name: str) -> None:
    policy = CropPolicy(kind=name)
    if KINDS[name].needs_box:
        with pytest.raises(ValueError, match="needs object boxes"):
            policy.windows(SIZES)
    else:
        assert policy.windows(SIZES).shape == (3, 4)


@pytest.mark.parametrize("name", list(KINDS))
def test_random_is_what_the_geometry_does(name: str) -> None:
    """Random kinds draw other train windows under other seeds; the others (at their
    convention, so no jitter or box noise) train on their eval window. Eval never draws."""
    policy = CropPolicy(kind=name, **KINDS[name].convention)
    eval_windows = policy.windows(SIZES, BOXES)
    train = [policy.windows(SIZES, BOXES, training=True, seed=seed) for seed in range(3)]
    assert np.array_equal(policy.windows(SIZES, BOXES, seed=5), eval_windows)
    if KINDS[name].random:
        assert not np.array_equal(train[0], train[1]) or not np.array_equal(train[1], train[2])
    else:
        for windows in train:
            assert np.array_equal(windows, eval_windows)


def _runtime_imports(path: Path) -> tuple[set[str], list[tuple[str, str]], list[str]]:
    """A crop module's ``search.*`` imports at import time (not under ``TYPE_CHECKING``, not in
    functions), the (module, name) pairs it imports from them, and its imports in functions."""
    tree = ast.parse(path.read_text())
    modules: set[str] = set()
    names: list[tuple[str, str]] = []
    in_functions: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            found: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module:
                found = [child.module]
                names.extend((child.module, alias.name) for alias in child.names)
                found += [f"{child.module}.{alias.name}" for alias in child.names]
            elif isinstance(child, ast.Import):
                found = [alias.name for alias in child.names]
            for module in found:
                if not module.startswith("search."):
                    continue
                if inside:
                    in_functions.append(module)
                else:
                    modules.add(module)
            visit(child, inside)

    visit(tree, False)
    return modules, names, in_functions


def test_the_crop_package_imports_run_one_way() -> None:
    """No import loop among the crop modules, no private name crossing files, and imports in
    functions only where ``policy.py`` delegates its behaviour (keeping the value free of it)."""
    own = {f"search.crop.{path.stem}": path for path in CROP_PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in own.items():
        imported, names, in_functions = _runtime_imports(path)
        graph[module] = {name for name in imported if name in own and name != module}
        crossing = [f"{m}.{n}" for m, n in names if m in own and n.startswith("_")]
        assert not crossing, f"{module} imports private names {crossing}"
        if module != "search.crop.policy":
            assert not [m for m in in_functions if m in own], f"{module} imports in a function"

    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import loop: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    assert graph["search.crop.kinds"] == set()
    assert graph["search.crop.policy"] == {"search.crop.kinds"}
