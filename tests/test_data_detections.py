"""A detector's boxes (``detections:FILE``): reading both formats, matching, misses and every
bad-row case, counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, Dataset, load_dataset
from search.data.detections import (
    MALFORMED,
    MATCH_IOU,
    NON_FINITE,
    NON_POSITIVE,
    OUTSIDE_IMAGE,
    UNKNOWN_IMAGE,
    load_detections,
    match_detections,
    pairwise_iou,
    report_lines,
)

CLASSES = ("cat", "dog")
#: Two objects per image, far apart: (x, y, w, h) in COCO form.
OBJECTS = ((2, 2, 10, 10), (40, 20, 12, 14))
SIZE = (64, 48)  # stored (width, height)


def coco_dataset(
    root: Path,
    n_images: int = 8,
    orientation: int = 1,
    objects: tuple[tuple[int, int, int, int], ...] = OBJECTS,
) -> Path:
    """``n_images`` images of two objects each (cat left, dog right), as a COCO file."""
    images, annotations = [], []
    for number in range(n_images):
        name = f"img/{number}.jpg" if orientation != 1 else f"img/{number}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", SIZE, (number * 20 % 256, 90, 200))
        if orientation != 1:
            exif = Image.Exif()
            exif[0x0112] = orientation
            image.save(path, exif=exif)
        else:
            image.save(path)
        images.append({"id": 100 + number, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
        for k, bbox in enumerate(objects):
            annotations.append(
                {"id": 10 * number + k, "image_id": 100 + number, "category_id": k + 1,
                 "bbox": list(bbox), "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    path = root / "instances.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def load(coco: Path) -> Dataset:
    return load_dataset(f"coco:{coco},val=0.25,test=0.25,cache=0")


def shifted(bbox: tuple[int, int, int, int], dx: float) -> list[float]:
    x, y, w, h = bbox
    return [x + dx, y, w, h]


def test_coco_results_match_each_object_its_own_detection(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path)
    data = load(coco)
    # Every image: each object's box moved 1 pixel right, listed in reverse order, so a
    # positional pairing would swap them; the right-hand object's is missing in image 101.
    results = [
        {"image_id": 100 + n, "category_id": 1, "bbox": shifted(OBJECTS[k], 1.0), "score": 0.9}
        for n in range(8)
        for k in (1, 0)
        if not (n == 1 and k == 1)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    detections = load_detections(path, data, coco)
    assert (detections.rows_read, detections.usable) == (15, 15)
    for split in (data.val, data.test, data.train):
        matched = match_detections(split, detections)
        assert split.image is not None
        names = [data.images.names[i] for i in split.image] if data.images else []
        for row, name in enumerate(names):
            left = split.boxes[row][0] < 30
            if name == "img/1.png" and not left:
                assert np.isnan(matched.boxes[row]).all() and np.isnan(matched.iou[row])
                continue
            # The detection is the annotated box one pixel to the right, not the other object's.
            assert matched.boxes[row] == pytest.approx(split.boxes[row] + [1, 0, 1, 0])
            w = split.boxes[row][2] - split.boxes[row][0]
            assert matched.iou[row] == pytest.approx((w - 1) / (w + 1))
    everything = [match_detections(s, detections) for s in (data.train, data.val, data.test)]
    assert sum(m.misses for m in everything) == 1
    assert sum(m.matched for m in everything) == 15


def test_csv_detections_by_file_name_and_a_far_box_is_a_miss(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path, n_images=8)
    data = load(coco)
    rows = ["file,x0,y0,x1,y1,score"]
    for n in range(8):
        rows.append(f"img/{n}.png,2,2,12,12,0.8")  # the cat's box exactly
        rows.append(f"img/{n}.png,20,30,26,40,0.7")  # overlaps neither object
    path = tmp_path / "detections.csv"
    path.write_text("\n".join(rows) + "\n")
    detections = load_detections(path, data)
    matched = match_detections(data.test, detections)
    left = data.test.boxes[:, 0] < 30
    assert np.allclose(matched.boxes[left], data.test.boxes[left])
    assert np.allclose(matched.iou[left], 1.0)
    assert np.isnan(matched.boxes[~left]).all(), "a box overlapping no object is no detection"
    assert matched.misses == int((~left).sum()) and matched.mean_iou == pytest.approx(1.0)


def test_one_detection_serves_one_object(tmp_path: Path) -> None:
    overlapping = ((0, 0, 20, 20), (10, 0, 20, 20))  # IoU 1/3 with each other
    coco = coco_dataset(tmp_path, objects=overlapping)
    data = load(coco)
    results = [
        {"image_id": 100 + n, "category_id": 1, "bbox": list(overlapping[0]), "score": 0.9}
        for n in range(8)
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    matched = match_detections(data.test, load_detections(path, data, coco))
    first = data.test.boxes[:, 0] == 0
    assert np.allclose(matched.iou[first], 1.0)
    assert np.isnan(matched.iou[~first]).all(), "the cat's detection is not the dog's too"


def test_every_bad_row_is_skipped_and_counted(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path, n_images=8)
    data = load(coco)
    good = {"image_id": 100, "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9}
    results = [
        good,
        {**good, "image_id": 999},  # unknown image
        {**good, "image_id": "100"},  # unknown image (a string, not the id)
        {**good, "bbox": [100, 100, 5, 5]},  # wholly outside the 64x48 image
        {**good, "bbox": [-20, -20, 10, 10]},  # wholly outside (ends at the edge)
        {**good, "bbox": [2, 2, 0, 10]},  # zero width
        {**good, "bbox": [2, 2, 5, -1]},  # negative height
        {**good, "bbox": [2, 2, float("inf"), 5]},  # non-finite
        {**good, "bbox": [2, 2, 5]},  # malformed
        {**good, "bbox": ["a", 2, 5, 5]},  # malformed
        "not an object",  # malformed
        {**good, "bbox": [60, 40, 20, 20]},  # partly outside: clipped and kept
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results).replace("Infinity", "1e999"))
    detections = load_detections(path, data, coco)
    assert detections.rows_read == 12 and detections.usable == 2
    assert dict(detections.skipped) == {
        UNKNOWN_IMAGE: 2, OUTSIDE_IMAGE: 2, NON_POSITIVE: 2, NON_FINITE: 1, MALFORMED: 3,
    }  # fmt: skip
    image = data.images.names.index("img/0.png") if data.images else -1
    assert detections.by_image[image][1] == pytest.approx([60, 40, 64, 48])
    lines = report_lines(detections, {"val": match_detections(data.val, detections), "train": None})
    assert lines[0].endswith("12 read, 2 usable, 10 skipped")
    assert any(line.startswith(f"  skipped, {MALFORMED}: 3") for line in lines)
    assert "  train: not matched (training uses the annotated boxes)" in lines


def test_csv_bad_rows_are_counted(tmp_path: Path) -> None:
    data = load(coco_dataset(tmp_path))
    path = tmp_path / "detections.csv"
    path.write_text(
        "file,x0,y0,x1,y1,score\n"
        "img/0.png,2,2,12,12,0.9\n"
        "img/none.png,2,2,12,12,0.9\n"  # unknown image
        "img/0.png,x,2,12,12,0.9\n"  # malformed
        "img/0.png,2,2\n"  # malformed
        "img/0.png,12,2,2,12,0.9\n"  # non-positive
        "img/0.png,nan,2,12,12,0.9\n"  # non-finite
        "\n"
    )
    detections = load_detections(path, data)
    assert detections.rows_read == 6 and detections.usable == 1
    assert dict(detections.skipped) == {
        UNKNOWN_IMAGE: 1, MALFORMED: 2, NON_POSITIVE: 1, NON_FINITE: 1,
    }  # fmt: skip


def test_detections_follow_the_image_through_exif_rotation(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path, orientation=6)  # stored 64x48, shown rotated 90 clockwise
    data = load(coco)
    results = [
        {"image_id": 100 + n, "category_id": 1, "bbox": list(bbox), "score": 0.9}
        for n in range(8)
        for bbox in OBJECTS
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    detections = load_detections(path, data, coco)
    matched = match_detections(data.test, detections)
    # Detections equal to the annotations land exactly on the (rotated) annotated boxes.
    assert data.test.sizes[0].tolist() == [64, 48]
    assert np.allclose(matched.boxes, data.test.boxes) and np.allclose(matched.iou, 1.0)


def test_wrong_files_are_one_clear_error(tmp_path: Path) -> None:
    coco = coco_dataset(tmp_path)
    data = load(coco)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(DataError, match=r"bad\.json: not valid JSON"):
        load_detections(bad_json, data, coco)
    a_dict = tmp_path / "dict.json"
    a_dict.write_text("{}")
    with pytest.raises(DataError, match="top level is not a list"):
        load_detections(a_dict, data, coco)
    header = tmp_path / "header.csv"
    header.write_text("path,a,b\n")
    with pytest.raises(DataError, match=r"header\.csv: the header must be file,x0,y0,x1,y1"):
        load_detections(header, data)
    with pytest.raises(DataError, match=r"missing\.csv: cannot read"):
        load_detections(tmp_path / "missing.csv", data)
    shapes = load_dataset("shapes:train=12,val=6,test=6")
    with pytest.raises(DataError, match="is generated, not read from image files"):
        load_detections(header, shapes)


def test_pairwise_iou_and_the_threshold() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    # [0,0,10,10] vs [5,0,15,10]: 50 shared of 150; [0,0,2,2] lies inside [0,0,10,10].
    expected = np.array([[1.0, 50 / 150, 0.0], [4 / 100, 0.0, 0.0]])
    assert np.allclose(pairwise_iou(a, b), expected)
    assert 0 < MATCH_IOU < 0.5
