"""Choosing the crop for the boxes it will have (``--boxes``), end to end on tiny data: the
scores use those boxes, the study records them, the views and the exported file name them,
and a detector's own boxes (COCO results) are matched, reported and used."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from conftest import search_args
from mlflow.tracking import MlflowClient
from test_data_detections import OBJECTS, coco_dataset

import search
from search.cli import main
from search.crop.geometry import box_iou

pytestmark = pytest.mark.slow  # trains real models

LEVELS = ("exact", "iou0.9", "iou0.75", "iou0.5", "none")


def _run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


def _parent(tracking: str, study: str) -> Any:
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(study)
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`cropsearch.role` = 'study'")
    return client, parent


def test_a_search_for_detector_like_boxes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import search.training.fit

    real_train = search.training.fit.train_policy
    seen: list[tuple[float, float, float]] = []

    def watch(policy: search.CropPolicy, data: Any, *args: Any, **kwargs: Any) -> Any:
        val, test = data.val, data.test
        seen.append(
            (
                float(box_iou(val.boxes, val.annotated_boxes).mean()),
                float(box_iou(test.boxes, test.annotated_boxes).mean()),
                float(np.abs(data.train.annotated_boxes - data.train.boxes).max()),
            )
        )
        return real_train(policy, data, *args, **kwargs)

    monkeypatch.setattr(search.training.fit, "train_policy", watch)
    args = [*search_args(tmp_path, "noisy", trials=7, confirm=True), "--boxes", "iou:0.75"]
    code, output = _run(args)
    assert code == 0, output
    # Every training (trials and confirmation) was scored with boxes of mean IoU 0.75 and
    # trained on the annotated boxes.
    assert len(seen) >= 7
    for val_iou, test_iou, train_change in seen:
        assert val_iou == pytest.approx(0.75, abs=0.01) and test_iou == pytest.approx(
            0.75, abs=0.01
        )
        assert train_change == 0.0
    assert "scored with boxes of mean IoU 0.75" in output
    assert "verdict: with boxes of mean IoU 0.75 at inference, " in output
    assert "iou0.75 *" in output, "the robustness table stars the boxes chosen for"

    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    study = optuna.load_study(study_name="noisy", storage=storage)
    assert study.user_attrs["boxes"] == "iou:0.75"
    # The default space searches box_noise, and one object anchor trains at the matched noise
    # (a mean IoU of 0.75 is a noise of about 0.14: see the policy's box_noise).
    assert "box_noise" in study.user_attrs["space_spec"]["params"]
    noisy = [t.params["box_noise"] for t in study.trials if t.params.get("box_noise", 0) > 0]
    assert noisy and noisy[0] == pytest.approx(0.14, abs=0.02)

    client, parent = _parent(tracking, "noisy")
    assert parent.data.params["boxes"] == "iou:0.75"
    folder = tmp_path / "artifacts-out"
    folder.mkdir()
    table = Path(client.download_artifacts(parent.info.run_id, "robustness.csv", str(folder)))
    rows = list(csv.reader(line for line in table.read_text().splitlines() if line[:1] != "#"))
    for level in LEVELS:
        assert f"{level}_test_mean" in rows[0]
    assert len(rows) == 1 + 2, "the winner and the baseline, each at every level"
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"robustness.png", "robustness.csv", "confirmation.csv"} <= names

    policy_file = tmp_path / "best.yaml"
    code, _ = _run(["export", "--study", "noisy", "--storage", storage, "-o", str(policy_file)])
    assert code == 0
    document = yaml.safe_load(policy_file.read_text())
    assert document["provenance"]["boxes"] == "iou:0.75"
    confirmation = document.get("confirmation")
    if confirmation is not None:  # the confirmed winner: its scores at every level
        assert confirmation["boxes"] == "iou:0.75"
        assert set(LEVELS) <= set(confirmation["robustness"])

    # A worker scores validation with the boxes the study recorded, as the search did.
    from search.ops.workers import join_study

    worker = join_study("noisy", storage, tracking, 1, lambda line: None)
    val = worker.data.val
    assert box_iou(val.boxes, val.annotated_boxes).mean() == pytest.approx(0.75, abs=0.01)
    assert worker.options.boxes == "iou:0.75" and not worker.options.objectives

    # Resumed with other boxes: refused in one line.
    capsys.readouterr()
    code, _ = _run([*search_args(tmp_path, "noisy", trials=1), "--boxes", "exact"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "study 'noisy' chooses for --boxes iou:0.75" in err


def test_several_box_sources_or_a_wrong_one_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra, message in (
        (["--boxes", "exact", "--boxes", "exact"], "--boxes names exact twice"),
        (
            ["--boxes", "exact", "--boxes", "none", "--engine", "keras-tuner"],
            "needs --engine optuna",
        ),
        (["--boxes", "exact", "--boxes", "none", "--pruner", "median"], "Optuna prunes single"),
        (["--boxes", "iou:2"], "the IoU must be a number in (0, 1)"),
        (["--boxes", f"detections:{tmp_path}/missing.json"], "no such file"),
    ):
        code, _ = _run([*search_args(tmp_path, "bad", trials=1), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "optuna.db").exists() or "bad" not in optuna.get_all_study_names(
        f"sqlite:///{tmp_path}/optuna.db"
    )


def test_a_multi_objective_search_confirms_its_pareto_front(tmp_path: Path) -> None:
    """--boxes given twice: each trial is scored with both (Optuna's two objectives), the
    Pareto front is confirmed and drawn, the answer is for the first, and export --trial
    writes a member with its scores; a worker joins with the same objectives."""
    from search.engines.lookup import find_study
    from search.ops.workers import join_study
    from search.results.export import load_policy
    from search.study.selection import pareto_front
    from search.study.store import RecordStore

    boxes = ["--boxes", "exact", "--boxes", "none"]
    args = [*search_args(tmp_path, "both", trials=7, confirm=True), *boxes]
    code, output = _run(args)
    assert code == 0, output
    assert "multi-objective" in output and "no pruning" in output
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    study = optuna.load_study(study_name="both", storage=storage)
    assert len(study.directions) == 2
    assert study.user_attrs["objective_boxes"] == ["exact", "none"]
    assert study.user_attrs["boxes"] == "exact"
    records: RecordStore = find_study("both", storage).records
    by_number = {r.number: r for r in records.search_records()}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 7
    for trial in complete:
        record = by_number[trial.number]
        assert trial.values == [record.val_by_boxes["exact"], record.val_by_boxes["none"]]
        assert record.val_by_boxes["exact"] == record.val_accuracy
        if record.policy["kind"] == "full":  # reads no box: the same either way
            assert trial.values[0] == trial.values[1]
    # Our front is Optuna's own (best_trials), one trial per distinct pair of scores.
    front = pareto_front(records.search_records(), ["exact", "none"])
    optuna_front = {tuple(t.values) for t in study.best_trials}
    assert {tuple(by_number[r.number].val_by_boxes.values()) for r in front} == optuna_front
    listed = ", ".join(str(r.number) for r in front)
    assert f"the Pareto front over exact, none: trial(s) {listed}" in output
    confirmation = records.confirmation()
    assert confirmation is not None and confirmation.objectives == ["exact", "none"]
    assert confirmation.pareto == [r.number for r in front]
    confirmed = {s.number for s in confirmation.summaries}
    assert {r.number for r in front} <= confirmed
    assert all({"exact", "none"} <= set(s.robustness) for s in confirmation.summaries)
    assert "(the first --boxes)" in confirmation.verdict

    client, parent = _parent(tracking, "both")
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto.png", "pareto.csv", "robustness.csv"} <= names
    folder = tmp_path / "artifacts-out"
    folder.mkdir()
    table = Path(client.download_artifacts(parent.info.run_id, "pareto.csv", str(folder)))
    rows = list(csv.DictReader(line for line in table.read_text().splitlines() if line[:1] != "#"))
    assert {int(r["trial"]) for r in rows if r["pareto_front"] == "True"} == {
        r.number for r in front
    }
    assert all(r["none_test_mean"] for r in rows if r["pareto_front"] == "True")

    out = tmp_path / "answer.yaml"
    code, text = _run(["export", "--study", "both", "--storage", storage, "-o", str(out)])
    assert code == 0 and "the first --boxes; the Pareto front is trial(s)" in text, text
    member = front[-1]
    out_member = tmp_path / "member.yaml"
    code, text = _run(["export", "--study", "both", "--storage", storage,
                       "--trial", str(member.number), "-o", str(out_member)])  # fmt: skip
    assert code == 0, text
    document = yaml.safe_load(out_member.read_text())
    assert document["provenance"]["objectives"] == ["exact", "none"]
    assert document["pareto"]["front"] == confirmation.pareto
    assert document["pareto"]["val_accuracy"]["none"] == pytest.approx(
        member.val_by_boxes["none"], abs=1e-6
    )
    assert {"exact", "none"} <= set(document["pareto"]["test_accuracy"])
    assert load_policy(out_member) == member.crop_policy, "the file applies as written"

    # A worker joins with the study's recorded objectives, whatever it is told.
    worker = join_study("both", storage, tracking, 1, lambda line: None)
    assert worker.boxes is not None and worker.boxes.objectives == ["exact", "none"]
    assert len(worker.study.directions) == 2


def test_a_detector_s_boxes_end_to_end(tmp_path: Path) -> None:
    """A COCO dataset and detections made from its annotations with shifted boxes, some
    deleted (misses) and some bad rows: the search reports the match and chooses for them."""
    coco = coco_dataset(tmp_path / "data", n_images=16)
    results = []
    for n in range(16):
        for k, bbox in enumerate(OBJECTS):
            if (n + k) % 5 == 0:
                continue  # a miss
            x, y, w, h = bbox
            results.append(
                {"image_id": 100 + n, "category_id": k + 1, "bbox": [x + 2, y + 1, w, h],
                 "score": 0.9}
            )  # fmt: skip
    results.append({"image_id": 999, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5})
    detections = tmp_path / "detections.json"
    detections.write_text(json.dumps(results))
    data = f"coco:{coco},val=0.25,test=0.25"
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "search", "--data", data, "--trials", "3", "--epochs", "1", "--study", "detected",
        "--storage", storage, "--tracking-uri", tracking, "--top", "1", "--repeats", "2",
        "--boxes", f"detections:{detections}",
    ]  # fmt: skip
    code, output = _run(args)
    assert code == 0, output
    assert (
        f"detections: {detections}: {len(results)} read, {len(results) - 1} usable, 1 skipped"
        in (output)
    )
    assert "skipped, unknown image: 1" in output
    assert "misses (no box: full image)" in output
    assert f"verdict: with the detections in {detections} at inference" in output
    policy_file = tmp_path / "best.yaml"
    code, _ = _run(["export", "--study", "detected", "--storage", storage, "-o", str(policy_file)])
    assert code == 0
    document = yaml.safe_load(policy_file.read_text())
    assert document["provenance"]["boxes"] == f"detections:{detections}"
    if document.get("confirmation") is not None:
        assert "detections" in document["confirmation"]["robustness"]
