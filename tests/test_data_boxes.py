"""Box sources at inference (``--boxes``): parsing, calibrated levels, no box, a detector's
boxes, and eval crops of samples without a box."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from test_data_detections import OBJECTS, coco_dataset, load

from search.crop.geometry import box_iou, noisy_boxes
from search.crop.policy import CropPolicy
from search.data import load_dataset
from search.data.boxes import (
    LEVELS,
    BoxSource,
    BoxSourceError,
    inference_boxes,
    level_seeds,
    scored_with,
)
from search.settings import derive_seed

SHAPES = "shapes:train=24,val=64,test=64,canvas=48"


@pytest.mark.parametrize(
    ("text", "source", "name"),
    [
        ("exact", BoxSource("exact"), "exact"),
        ("none", BoxSource("none"), "none"),
        ("iou:0.75", BoxSource("iou", iou=0.75), "iou0.75"),
        (" iou:0.5 ", BoxSource("iou", iou=0.5), "iou0.5"),
        ("detections:out/dets.json", BoxSource("detections", path="out/dets.json"), "detections"),
    ],
)  # fmt: skip
def test_sources_parse_and_name_themselves(text: str, source: BoxSource, name: str) -> None:
    parsed = BoxSource.parse(text)
    assert parsed == source and parsed.name == name
    assert BoxSource.parse(str(parsed)) == parsed, "the spec round-trips"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iou:1", r"--boxes 'iou:1': the IoU must be a number in \(0, 1\)"),
        ("iou:0", r"the IoU must be a number in \(0, 1\)"),
        ("iou:x", r"the IoU must be a number in \(0, 1\)"),
        ("iou:nan", r"the IoU must be a number in \(0, 1\)"),
        ("iou", r"--boxes 'iou': expected exact, iou:X"),
        ("detections:", "expected exact, iou:X"),
        ("exact:1", "expected exact"),
        ("boxes", "expected exact"),
    ],
)  # fmt: skip
def test_a_wrong_source_is_one_line_naming_it(text: str, message: str) -> None:
    with pytest.raises(BoxSourceError, match=message):
        BoxSource.parse(text)


def test_levels_are_the_robustness_table_s() -> None:
    assert [level.name for level in LEVELS] == ["exact", "iou0.9", "iou0.75", "iou0.5", "none"]


def test_iou_boxes_are_calibrated_seeded_and_the_test_ones_are_the_robustness_level_s() -> None:
    data = load_dataset(SHAPES)
    source = BoxSource.parse("iou:0.75")
    boxes = inference_boxes(source, data, seed=3)
    for name, samples, found in (("val", data.val, boxes.val), ("test", data.test, boxes.test)):
        measured = float(box_iou(samples.boxes, found).mean())
        assert measured == pytest.approx(0.75, abs=0.01)
        assert boxes.described[name]["mean_iou"] == pytest.approx(measured)
    noise = boxes.described["test"]["noise"]
    expected = noisy_boxes(data.test.boxes, data.test.sizes, noise, derive_seed(3, "boxes"))
    assert np.array_equal(boxes.test, expected)
    assert level_seeds(3)["val"] != level_seeds(3)["test"]
    again = inference_boxes(source, data, seed=3)
    assert np.array_equal(again.val, boxes.val) and np.array_equal(again.test, boxes.test)
    other = inference_boxes(source, data, seed=4)
    assert not np.array_equal(other.test, boxes.test)


def test_scored_data_keeps_its_training_boxes_annotations_and_identity() -> None:
    data = load_dataset(SHAPES)
    assert scored_with(data, inference_boxes(BoxSource(), data, 0)) is data
    none = scored_with(data, inference_boxes(BoxSource("none"), data, 0))
    assert np.isnan(none.val.boxes).all() and np.isnan(none.test.boxes).all()
    assert none.val.missing_boxes.all() and not data.val.missing_boxes.any()
    assert np.array_equal(none.test.annotated_boxes, data.test.boxes)
    assert none.train is data.train and none.fingerprint == data.fingerprint
    noisy = scored_with(data, inference_boxes(BoxSource("iou", iou=0.5), data, 0))
    taken = noisy.test.take(np.arange(5))
    assert np.array_equal(taken.annotated_boxes, data.test.boxes[:5])
    assert not np.array_equal(taken.boxes, data.test.boxes[:5])


def test_detections_become_the_scored_boxes_with_their_report(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path)
    data = load(coco)
    results = [
        {"image_id": 100 + n, "category_id": 1, "bbox": list(OBJECTS[0]), "score": 0.9}
        for n in range(8)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    boxes = inference_boxes(BoxSource.parse(f"detections:{path}"), data, seed=0)
    left = data.test.boxes[:, 0] < 30
    assert np.allclose(boxes.test[left], data.test.boxes[left])
    assert np.isnan(boxes.test[~left]).all(), "the right-hand objects have no detection"
    assert boxes.described["test"]["misses"] == int((~left).sum())
    assert boxes.lines[0].startswith(f"detections: {path}: 8 read, 8 usable, 0 skipped")
    assert any("train: not matched" in line for line in boxes.lines)


def test_a_sample_without_a_box_is_cropped_as_the_full_image() -> None:
    from search.training.fit import eval_crops

    data = load_dataset(SHAPES)
    samples = data.test.take(np.arange(6))
    missing = np.array([True, False, True, False, False, True])
    boxes = samples.boxes.copy()
    boxes[missing] = np.nan
    holed = dataclasses.replace(samples, boxes=boxes)
    obj = CropPolicy(kind="object", context=0.2, size=32)
    full = obj.model_copy(update={"kind": "full"})
    crops = eval_crops(obj, holed)
    assert np.array_equal(crops[~missing], eval_crops(obj, samples)[~missing])
    assert np.array_equal(crops[missing], eval_crops(full, samples)[missing])
    center = CropPolicy(kind="center", fraction=0.5, size=32)
    assert np.array_equal(eval_crops(center, holed), eval_crops(center, samples))
    everything = dataclasses.replace(samples, boxes=np.full((6, 4), np.nan))
    assert np.array_equal(eval_crops(obj, everything), eval_crops(full, samples))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("exact", "exact boxes"),
        ("iou:0.75", "boxes of mean IoU 0.75"),
        ("none", "no boxes (full image)"),
        ("detections:d.json", "the detections in d.json"),
    ],
)
def test_sources_describe_themselves(text: str, words: str) -> None:
    assert BoxSource.parse(text).describe() == words
