"""Search spaces: the shipped files, validation errors, and sampling with Optuna (TF-free)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from search.crop.kinds import OBJECT_KINDS
from search.crop.policy import CropPolicy
from search.settings import TrainConfig
from search.space import Space, SpaceError, SpaceFile, space_json_schema, split_values

SPACES = Path(__file__).resolve().parent.parent / "spaces"
SPACE_FILES = sorted(SPACES.glob("*.yaml"))

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fixed(params: dict[str, Any]) -> optuna.trial.FixedTrial:
    """A trial that answers every suggestion from ``params``."""
    return optuna.trial.FixedTrial(params)


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _space(tmp_path: Path, params: dict[str, Any], fixed: dict[str, Any] | None = None) -> Path:
    return _write(tmp_path, yaml.safe_dump({"fixed": fixed or {}, "params": params}))


def test_shipped_schema_is_the_generated_schema() -> None:
    shipped = json.loads((SPACES / "space.schema.json").read_text())
    assert shipped == space_json_schema(), (
        "regenerate spaces/space.schema.json from search.space.space_json_schema()"
    )


def test_the_expected_spaces_are_shipped() -> None:
    assert {path.stem for path in SPACE_FILES} >= {"default", "object", "classic"}


@pytest.mark.parametrize("path", SPACE_FILES, ids=[p.name for p in SPACE_FILES])
def test_every_shipped_space_loads_and_samples_valid_policies(path: Path) -> None:
    space = Space.load(path)
    assert space.name == path.stem and space.spec.description
    assert "Schema: spaces/space.schema.json" in path.read_text()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(40):
        trial = study.ask()
        policy, _ = split_values(space.sample(trial), TrainConfig())
        kinds.add(policy.kind)
        study.tell(trial, 0.0)
    kind_param = space.spec.params["kind"]
    assert kinds == set(kind_param.choices)  # type: ignore[union-attr]
    policy, _ = split_values(space.baseline(), TrainConfig())
    assert policy.kind == "full"


def test_object_and_classic_spaces_search_what_they_say() -> None:
    object_space = Space.load(SPACES / "object.yaml")
    kinds = object_space.spec.params["kind"].choices  # type: ignore[union-attr]
    assert set(kinds) == set(OBJECT_KINDS)
    classic = Space.load(SPACES / "classic.yaml")
    kinds = classic.spec.params["kind"].choices  # type: ignore[union-attr]
    assert set(kinds) == {"full", "center", "random", "random_resized"}
    fraction = classic.spec.params["fraction"]
    # covers timm's crop_pct (0.75..1) and torchvision's RandomResizedCrop scale (0.08..1)
    assert fraction.low == 0.08 and fraction.high == 1.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "low", "high", "bounds"),
    [
        ("context", 0.0, 3.0, "[-0.25, 2.0]"),
        ("fraction", 0.01, 0.5, "[0.05, 1.0]"),
        ("aspect_ratio", 0.5, 5.0, "[0.25, 4.0]"),
        ("jitter", 0.0, 0.6, "[0.0, 0.5]"),
    ],
)
def test_range_outside_the_policy_bounds_names_parameter_and_file(
    tmp_path: Path, name: str, low: float, high: float, bounds: str
) -> None:
    path = _space(
        tmp_path,
        {
            "kind": {"type": "categorical", "choices": ["object"]},
            name: {"type": "float", "low": low, "high": high},
        },
    )
    with pytest.raises(SpaceError) as error:
        Space.load(path)
    message = str(error.value)
    assert str(path) in message and f"parameter '{name}'" in message and bounds in message


def test_out_of_bounds_choice_training_field_and_fixed_value(tmp_path: Path) -> None:
    path = _space(tmp_path, {"size": {"type": "categorical", "choices": [[48, 48], [4, 4]]}})
    with pytest.raises(SpaceError, match=r"bad\.yaml: parameter 'size'.*\[8, 1024\]"):
        Space.load(path)
    path = _space(tmp_path, {"learning_rate": {"type": "float", "low": 1e-3, "high": 2.0}})
    with pytest.raises(SpaceError, match=r"bad\.yaml: parameter 'learning_rate' = 2\.0"):
        Space.load(path)
    path = _space(
        tmp_path, {"kind": {"type": "categorical", "choices": ["full"]}}, fixed={"context": 5}
    )
    with pytest.raises(SpaceError, match=r"parameter 'context'.*5"):
        Space.load(path)


def test_unknown_parameter(tmp_path: Path) -> None:
    path = _space(tmp_path, {"contxt": {"type": "float", "low": 0.0, "high": 1.0}})
    with pytest.raises(SpaceError, match=r"bad\.yaml: parameter 'contxt' is not a policy or"):
        Space.load(path)
    path = _space(
        tmp_path, {"kind": {"type": "categorical", "choices": ["full"]}}, fixed={"colour": 1}
    )
    with pytest.raises(SpaceError, match="fixed 'colour' is not a policy or training field"):
        Space.load(path)


def test_bad_literal_choice(tmp_path: Path) -> None:
    path = _space(tmp_path, {"kind": {"type": "categorical", "choices": ["full", "objekt"]}})
    with pytest.raises(SpaceError, match=r"parameter 'kind'.*'objekt' must be one of"):
        Space.load(path)


def test_when_naming_a_later_parameter(tmp_path: Path) -> None:
    path = _space(
        tmp_path,
        {
            "context": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": ["object"]}},
            "kind": {"type": "categorical", "choices": ["full", "object"]},
        },
    )
    with pytest.raises(SpaceError, match=r"parameter 'context': 'when' names 'kind'"):
        Space.load(path)


def test_malformed_files(tmp_path: Path) -> None:
    path = _write(tmp_path, "params:\n  kind: {type: categorical, choices: [full\n")
    with pytest.raises(SpaceError, match=r"bad\.yaml: not valid YAML \(line \d+\)"):
        Space.load(path)
    with pytest.raises(SpaceError, match="must be a mapping"):
        Space.load(_write(tmp_path, "- kind\n- context\n"))
    with pytest.raises(SpaceError, match=r"params\.kind"):
        Space.load(_write(tmp_path, "params:\n  kind: {type: categorical}\n"))
    with pytest.raises(SpaceError, match=r"low=1\.0 > high=0\.5"):
        Space.load(_space(tmp_path, {"context": {"type": "float", "low": 1.0, "high": 0.5}}))
    with pytest.raises(SpaceError, match="no such space file"):
        Space.load(tmp_path / "missing.yaml")


def test_fixed_trial_samples_only_the_active_parameters() -> None:
    space = Space.load(SPACES / "default.yaml")
    # FixedTrial raises if asked for a parameter it was not given, so these runs also prove
    # that context and jitter are never suggested for center, nor fraction for object.
    center = space.sample(_fixed({"kind": "center", "fraction": 0.5, "aspect_ratio": 1.5}))
    assert center == {"size": [48, 48], "kind": "center", "fraction": 0.5, "aspect_ratio": 1.5}
    obj = space.sample(
        _fixed({"kind": "object", "context": 0.3, "jitter": 0.1, "aspect_ratio": 1.0})
    )
    assert "fraction" not in obj and obj["context"] == 0.3
    full = space.sample(_fixed({"kind": "full"}))
    assert full == {"size": [48, 48], "kind": "full"}
    with pytest.raises(ValueError, match="context"):
        space.sample(_fixed({"kind": "object", "jitter": 0.1, "aspect_ratio": 1.0}))


def test_study_respects_when() -> None:
    space = Space.load(SPACES / "default.yaml")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=10))

    def objective(trial: optuna.Trial) -> float:
        policy, _ = split_values(space.sample(trial), TrainConfig())
        return policy.context if policy.kind in OBJECT_KINDS else policy.fraction

    study.optimize(objective, n_trials=60)
    seen = set()
    for trial in study.trials:
        kind = trial.params["kind"]
        seen.add(kind)
        expected = {"kind"} | {
            name
            for name, param in space.spec.params.items()
            if param.when and kind in param.when["kind"]
        }
        assert set(trial.params) == expected, (kind, trial.params)
        if kind == "center":
            assert "context" not in trial.params and "jitter" not in trial.params
    assert {"center", "object", "full"} <= seen


def test_list_choices_come_back_as_lists() -> None:
    spec = SpaceFile.model_validate(
        {"params": {"size": {"type": "categorical", "choices": [[32, 32], [48, 64]]}}}
    )
    values = Space(spec).sample(_fixed({"size": "[48, 64]"}))
    assert values["size"] == [48, 64]
    assert CropPolicy(**values).size == (48, 64)


def test_when_value_outside_the_field_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "params:\n"
        "  kind: {type: categorical, choices: [object, center]}\n"
        "  context: {type: float, low: 0.0, high: 1.0, when: {kind: [objekt]}}\n"
    )
    with pytest.raises(SpaceError, match=r"typo\.yaml.*'kind'.*objekt"):
        Space.load(path)


def test_every_kind_of_the_default_space_has_a_conventional_anchor() -> None:
    space = Space.load("spaces/default.yaml")
    anchors = space.conventions()
    assert [a["kind"] for a in anchors] == [
        "center", "random", "random_resized", "object", "object_random"
    ]  # fmt: skip
    by_kind = {a["kind"]: a for a in anchors}
    assert by_kind["center"]["fraction"] == 0.875  # timm crop_pct
    assert by_kind["random_resized"]["fraction"] == 0.08  # torchvision scale=(0.08, 1)
    assert by_kind["object"]["context"] == 0.2
    assert "context" not in by_kind["center"]  # only the parameters active for the kind
    for anchor in anchors:
        CropPolicy(**{k: v for k, v in anchor.items()}, size=48)


def test_anchors_are_moved_into_the_space_range(tmp_path: object) -> None:
    space = Space.load("spaces/object.yaml")
    for anchor in space.conventions():
        assert -0.1 <= anchor["context"] <= 1.5
        assert anchor["context"] == pytest.approx(round(anchor["context"] / 0.05) * 0.05)
