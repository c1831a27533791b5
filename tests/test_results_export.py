"""Policy files: YAML or JSON, read back strictly (version, sections, known fields in bounds);
a hand-written file may give any subset of the fields, the rest taking their defaults."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from conftest import SearchRun
from memory_store import MemoryStore

from search.cli import main
from search.crop.policy import CropPolicy
from search.results.export import (
    FORMAT,
    PolicyFileError,
    export_study,
    load_policy,
    write_policy_file,
)
from search.settings import TrainConfig
from search.study.record import TrialRecord
from search.study.store import FoundStudy

POLICY = CropPolicy(kind="object", context=0.3, size=(40, 48), box_noise=0.1)


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": FORMAT,
        "policy": POLICY.to_dict(),
        "provenance": {"study": "s", "trial": 3, "anything": [1, 2]},
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


@pytest.mark.parametrize("name", ["best.yaml", "best.yml", "best.json", "BEST.JSON"])
def test_round_trip_in_the_suffix_format(tmp_path: Path, name: str) -> None:
    path = write_policy_file(_document(), tmp_path / name)
    text = path.read_text()
    if name.lower().endswith(".json"):
        assert json.loads(text)["format"] == FORMAT
    else:
        assert text.startswith("format: cropsearch.policy/v1\npolicy:\n")
    assert load_policy(path) == POLICY


def test_format_given_overrides_the_suffix(tmp_path: Path) -> None:
    path = write_policy_file(_document(), tmp_path / "policy.txt", "json")
    assert json.loads(path.read_text())["policy"]["kind"] == "object"
    # a JSON document in a .yaml file is read too (JSON is YAML)
    path = write_policy_file(_document(), tmp_path / "policy.yaml", "json")
    assert load_policy(path) == POLICY


def _policy_with(**fields: Any) -> dict[str, Any]:
    policy = {**POLICY.to_dict(), **fields}
    return {k: v for k, v in policy.items() if v is not None}


BOOLEAN = r"^\S+: policy field 'context' = True: a boolean is not a number$"
RANGE = r"'context' = 2\.5 is outside the allowed range \[-0\.25, 2\.0\]"
STRICT_ERRORS = [
    ("version", _document(format="cropsearch.policy/v2"), r"unknown format '\S+/v2'"),
    ("no-policy", _document(policy=None), r"missing field 'policy'"),
    ("extra-section", _document(comment="hi"), r"unknown field 'comment' \(known: format"),
    ("policy-list", _document(policy=[1, 2]), r"field 'policy' must be a mapping, got list"),
    ("provenance-text", _document(provenance="x"), r"field 'provenance' must be a mapping"),
    ("bool", _document(policy={"kind": "object", "context": True}), BOOLEAN),
    ("extra", _document(policy=_policy_with(colour="red")), r"unknown policy field 'colour'"),
    ("range", _document(policy=_policy_with(context=2.5)), RANGE),
    ("size", _document(policy=_policy_with(size=[4, 48])), r"'size'"),
    ("literal", _document(policy=_policy_with(kind="objekt")), r"'kind' = 'objekt' must be one"),
]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    ("document", "message"), [r[1:] for r in STRICT_ERRORS], ids=[r[0] for r in STRICT_ERRORS]
)
def test_strict_loading_names_the_field(
    tmp_path: Path, suffix: str, document: dict[str, Any], message: str
) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(json.dumps(document) if suffix == ".json" else yaml.safe_dump(document))
    with pytest.raises(PolicyFileError, match=message) as error:
        load_policy(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_typo_is_named_and_the_field_it_missed_takes_its_default(tmp_path: Path) -> None:
    document = _document(policy=_policy_with(context=None, contxt=0.3))
    path = write_policy_file(document, tmp_path / "typo.yaml")
    with pytest.raises(PolicyFileError, match=r"unknown policy field 'contxt'") as error:
        load_policy(path)
    assert "missing" not in str(error.value)


@pytest.mark.parametrize("versioned", [True, False])
def test_a_hand_written_file_gives_some_fields_the_rest_take_defaults(
    tmp_path: Path, versioned: bool
) -> None:
    """The issue's file, with ``format`` and without: it loads as the documented defaults plus
    its two fields; the same with a wrong value is one line naming the field and the value,
    with nothing about the fields it left out."""
    path = tmp_path / "hand.yaml"
    head = f"format: {FORMAT}\npolicy: " if versioned else ""
    path.write_text(head + "{kind: object, context: 0.3}\n")
    assert load_policy(path) == CropPolicy(kind="object", context=0.3)
    defaults = CropPolicy().to_dict()
    assert load_policy(path).to_dict() == {**defaults, "kind": "object", "context": 0.3}
    path.write_text(head + "{kind: object, context: true}\n")
    with pytest.raises(PolicyFileError) as error:
        load_policy(path)
    message = str(error.value)
    assert message == f"{path}: policy field 'context' = True: a boolean is not a number"


def test_wrong_values_come_before_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(f"format: {FORMAT}\npolicy: {{colour: red, context: 5}}\n")
    with pytest.raises(PolicyFileError) as error:
        load_policy(path)
    assert str(error.value).index("'context' = 5") < str(error.value).index("'colour'")


def test_an_exported_file_lists_every_field(tmp_path: Path) -> None:
    partial = tmp_path / "partial.yaml"
    partial.write_text(f"format: {FORMAT}\npolicy: {{kind: center}}\n")
    document = _document(policy=load_policy(partial).to_dict())
    written = yaml.safe_load(write_policy_file(document, tmp_path / "out.yaml").read_text())
    assert list(written["policy"]) == list(CropPolicy.model_fields)


def test_a_bare_mapping_of_fields_takes_defaults(tmp_path: Path) -> None:
    path = tmp_path / "fields.yaml"
    path.write_text("kind: center\nfraction: 0.5\n")
    assert load_policy(path) == CropPolicy(kind="center", fraction=0.5)
    path.write_text("kind: center\nfractoin: 0.5\n")
    with pytest.raises(PolicyFileError, match="unknown policy field 'fractoin'"):
        load_policy(path)


def test_bad_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": "cropsearch.policy/v1",\n "policy": {,}}')
    with pytest.raises(PolicyFileError, match=r"not valid JSON \(.*line 2 column"):
        load_policy(path)
    path.write_text("[" * 100_000)
    with pytest.raises(PolicyFileError, match="not valid JSON"):
        load_policy(path)


def test_cli_reports_a_bad_policy_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_policy_file(_document(format="cropsearch.policy/v9"), tmp_path / "p.json")
    assert main(["preview", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown format 'cropsearch.policy/v9'" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_export_writes_json_and_yaml(tiny_search: SearchRun, tmp_path: Path) -> None:
    common = ["export", "--study", tiny_search.study, "--storage", tiny_search.storage]
    assert main([*common, "-o", str(tmp_path / "best.json")]) == 0
    assert main([*common, "-o", str(tmp_path / "best.txt"), "--format", "json"]) == 0
    assert main([*common, "-o", str(tmp_path / "best.yaml")]) == 0
    as_json = json.loads((tmp_path / "best.json").read_text())
    assert json.loads((tmp_path / "best.txt").read_text())["policy"] == as_json["policy"]
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["policy"] == as_json["policy"]
    assert load_policy(tmp_path / "best.json") == load_policy(tmp_path / "best.yaml")
    assert main([*common, "-o", str(tmp_path / "x"), "--format", "xml"]) == 2


def _confirmed_on_two_networks(
    monkeypatch: pytest.MonkeyPatch, theirs: dict[int, float]
) -> FoundStudy:
    """A study whose own network ranks trial 2 first and whose ``m:Net`` at 64x80 scores
    ``theirs`` (by trial), each confirmed over 2 seeds by a stand-in trainer."""
    import search.study.confirm.stage as stage

    ours = {0: 0.40, 1: 0.60, 2: 0.90}

    def train(setup: Any, *args: Any, **kwargs: Any) -> TrialRecord:
        levels = theirs if setup.train.model else ours
        value = levels[setup.number] + setup.train.seed % 7 / 1000
        return setup.record(1, state="complete", val_accuracy=value, test_accuracy=value)

    monkeypatch.setattr(stage, "run_trial", train)
    records = [
        TrialRecord(study="s", number=n, state="complete", baseline=n == 0,
                    policy={"kind": kind}, train=TrainConfig(epochs=1), val_accuracy=ours[n])
        for n, kind in enumerate(("full", "center", "object"))
    ]  # fmt: skip
    store = MemoryStore(records)
    data = SimpleNamespace(has_boxes=False, n_classes=6)
    for plan in (
        stage.ConfirmPlan(top=2, repeats=2, race=False),
        stage.ConfirmPlan(top=2, repeats=2, race=False, model="m:Net", size=(64, 80)),
    ):
        stage.confirm(store, data, None, "p", plan, None, lambda _: None)  # type: ignore[arg-type]
    return FoundStudy("s", "optuna", store, {})  # type: ignore[arg-type]


def test_export_takes_the_winner_of_the_users_network_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = _confirmed_on_two_networks(monkeypatch, {0: 0.50, 1: 0.95, 2: 0.70})
    exported = export_study(found, tmp_path / "policy.yaml")
    assert exported.record.number == 1  # their winner, not ours (trial 2)
    assert "on m:Net@64x80 (your network)" in exported.how
    written = yaml.safe_load((tmp_path / "policy.yaml").read_text())
    assert written["policy"]["kind"] == "center" and written["policy"]["size"] == [64, 80]
    assert [n["network"] for n in written["networks"]] == ["study", "m:Net@64x80"]


def test_export_keeps_the_study_s_winner_when_the_users_network_has_not_learned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = _confirmed_on_two_networks(monkeypatch, {0: 0.17, 1: 0.18, 2: 0.16})  # chance: 1/6
    exported = export_study(found, tmp_path / "policy.yaml")
    assert exported.record.number == 2
    assert "not trained enough to judge" in exported.how
    written = yaml.safe_load((tmp_path / "policy.yaml").read_text())
    assert written["policy"]["kind"] == "object" and written["policy"]["size"] == [48, 48]
