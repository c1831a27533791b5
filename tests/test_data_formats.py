"""User formats (csv, voc, coco): parsing, boxes, splits, classes and every bad-data case."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, Dataset, Samples, load_dataset
from search.data import images as imaging

COLUMNS = ["path", "label", "x_min", "y_min", "x_max", "y_max"]


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts decodes per file name."""
    counts: Counter[str] = Counter()
    real = imaging.decode

    def counting(path: Path, expected: imaging.Probe, max_side: int) -> object:
        counts[path.name] += 1
        return real(path, expected, max_side)

    monkeypatch.setattr(imaging, "decode", counting)
    return counts


def color_of(number: int) -> tuple[int, int, int]:
    """A distinct colour per image number, to tell from a sample which image it shows."""
    return (number * 37 % 256, number * 11 % 256, 255 - number)


def solid(path: Path, number: int = 0, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color_of(number)).save(path)
    return path


def write_csv(path: Path, rows: list[list[object]], header: list[str] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def balanced_csv(
    root: Path,
    per_class: int = 8,
    classes: tuple[str, ...] = ("cat", "dog", "fox"),
    objects: int = 1,
) -> Path:
    """``per_class`` images per class, each with ``objects`` objects of that class."""
    rows: list[list[object]] = []
    number = 0
    for label in classes:
        for _ in range(per_class):
            name = f"img/{label}{number}.png"
            solid(root / name, number)
            for k in range(objects):
                rows.append([name, label, 2 + k, 3, 20 + k, 25])
            number += 1
    return write_csv(root / "labels.csv", rows)


def splits(dataset: Dataset) -> dict[str, Samples]:
    return {"train": dataset.train, "val": dataset.val, "test": dataset.test}


def image_colors(samples: Samples) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in image[0, 0]) for image in samples.images]


def all_boxes(dataset: Dataset) -> Iterator[np.ndarray]:
    for split in (dataset.train, dataset.val, dataset.test):
        yield from split.boxes


# -- csv ------------------------------------------------------------------------------------


def test_csv_loads_splits_and_shares_decoding(tmp_path: Path, decodes: Counter[str]) -> None:
    path = balanced_csv(tmp_path / "ds", per_class=8, objects=3)
    data = load_dataset(f"csv:{path},val=0.25,test=0.25")
    assert data.class_names == ("cat", "dog", "fox")
    assert (len(data.train), len(data.val), len(data.test)) == (36, 18, 18)
    assert set(decodes.values()) == {1} and len(decodes) == 24  # each file decoded once
    # stratified by image: 2 of each class's 8 images in val and in test
    for split, images in (("val", 2), ("test", 2)):
        counts = np.bincount(getattr(data, split).labels, minlength=3)
        assert counts.tolist() == [images * 3] * 3
    # the three objects of an image never straddle splits
    where: dict[tuple[int, ...], set[str]] = {}
    for name, samples in splits(data).items():
        for color in image_colors(samples):
            where.setdefault(color, set()).add(name)
    assert len(where) == 24 and all(len(names) == 1 for names in where.values())
    assert data.train.images.dtype == np.uint8 and data.train.images.shape[1:] == (30, 40, 3)
    assert data.train.sizes.tolist()[0] == [30, 40]


def test_csv_split_is_deterministic_per_seed(tmp_path: Path) -> None:
    path = balanced_csv(tmp_path / "ds", per_class=10)
    first = load_dataset(f"csv:{path},seed=3,cache=0")
    again = load_dataset(f"csv:{path},seed=3,cache=0")
    other = load_dataset(f"csv:{path},seed=4,cache=0")
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


def test_csv_resizes_pads_and_scales_boxes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows: list[list[object]] = []
    for i in range(4):
        wide = solid(root / f"wide{i}.png", i, size=(80, 40))
        tall = solid(root / f"tall{i}.png", 10 + i, size=(30, 60))
        rows += [[wide.name, "wide", 10, 4, 50, 20], [tall.name, "tall", 3, 6, 27, 42]]
    path = write_csv(root / "labels.csv", rows)
    data = load_dataset(f"csv:{path},max_side=40,val=0.25,test=0.25")
    for samples in splits(data).values():
        assert samples.images.shape[1:] == (40, 40, 3)
        for image, size, box, label in zip(
            samples.images,
            samples.sizes,
            samples.boxes,
            samples.labels,
            strict=True,
        ):
            height, width = size
            if data.class_names[label] == "wide":
                assert (height, width) == (20, 40)
                assert box.tolist() == [5, 2, 25, 10]
            else:
                assert (height, width) == (40, 20)
                assert np.allclose(box, [2, 4, 18, 28])
            assert image[:height, :width, 2].min() > 0  # the image's own colour
            assert not image[height:, :].any() and not image[:, width:].any()  # zero padding


def test_exif_rotation_swaps_size_and_moves_the_box(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows: list[list[object]] = []
    for i in range(3):
        array = np.zeros((20, 40, 3), dtype=np.uint8)
        array[3:9, 5:15] = 255
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / f"turned{i}.png", exif=exif)
        rows.append([f"turned{i}.png", "turned", 5, 3, 15, 9])
        rows.append([solid(root / f"plain{i}.png", i).name, "plain", 1, 1, 5, 5])
    data = load_dataset(f"csv:{write_csv(root / 'labels.csv', rows)},max_side=0,val=0.34,test=0.34")
    turned = data.class_names.index("turned")
    found = 0
    for samples in splits(data).values():
        for image, size, box, label in zip(
            samples.images,
            samples.sizes,
            samples.boxes,
            samples.labels,
            strict=True,
        ):
            if label != turned:
                continue
            found += 1
            assert size.tolist() == [40, 20]  # (height, width): swapped
            assert box.tolist() == [11, 5, 17, 15]  # (20 - 9, 5, 20 - 3, 15)
            ys, xs = np.nonzero(image[..., 0] > 127)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [11, 5, 17, 15]
    assert found == 3


def test_image_modes_all_load_as_rgb(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    rows: list[list[object]] = []
    for i in range(2):
        Image.new("L", (20, 10), 90).save(root / f"gray{i}.png")
        Image.new("RGBA", (20, 10), (200, 100, 50, 255)).save(root / f"alpha{i}.png")
        palette = Image.new("P", (20, 10), 1)
        palette.putpalette([0, 0, 0, 40, 80, 120] + [0] * 762)
        palette.save(root / f"palette{i}.png")
        Image.fromarray(np.full((10, 20), 65535, dtype=np.uint16)).save(root / f"deep{i}.png")
        for name in ("gray", "alpha", "palette", "deep"):
            rows.append([f"{name}{i}.png", name, 1, 1, 9, 9])
    data = load_dataset(f"csv:{write_csv(root / 'labels.csv', rows)},val=0.25,test=0.25")
    expected = {
        "gray": [90] * 3,
        "alpha": [200, 100, 50],
        "palette": [40, 80, 120],
        "deep": [255] * 3,
    }
    seen = set()
    for samples in splits(data).values():
        for image, label in zip(samples.images, samples.labels, strict=True):
            name = data.class_names[label]
            assert image[0, 0].tolist() == expected[name]
            seen.add(name)
    assert seen == set(expected)


def test_csv_bad_samples_are_skipped_and_counted(tmp_path: Path, decodes: Counter[str]) -> None:
    root = tmp_path / "ds"
    good = []
    for i in range(4):
        good.append([solid(root / f"a{i}.png", i).name, "a", 2, 2, 20, 20])
        good.append([solid(root / f"b{i}.png", 10 + i).name, "b", 2, 2, 20, 20])
    good.append([str(root / "a0.png"), "a", 4, 4, 12, 12])  # absolute, inside the root: fine
    outside = solid(tmp_path / "outside.png", 99)
    (root / "link.png").symlink_to(outside)
    (root / "notes.png").write_text("not an image")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "cut.jpg", quality=90)
    data = (root / "cut.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2])
    bad = [
        ["missing.png", "a", 1, 1, 5, 5],
        ["notes.png", "a", 1, 1, 5, 5],
        ["cut.jpg", "b", 1, 1, 5, 5],
        ["../outside.png", "a", 1, 1, 5, 5],
        [str(outside), "a", 1, 1, 5, 5],
        ["link.png", "b", 1, 1, 5, 5],
        ["a1.png", "a", -5, 2, 10, 10],  # partly outside: clipped and kept
        ["b1.png", "b", 30, 20, 50, 40],  # partly outside on the right and bottom
        ["a2.png", "a", 50, 2, 60, 10],  # wholly outside
        ["a3.png", "a", 5, 5, 5, 10],  # zero area
        ["b2.png", "b", 10, 5, 5, 10],  # inverted
        ["b3.png", "b", "nan", 5, 8, 10],  # NaN
        ["b3.png", "b", "abc", 5, 8, 10],  # not a number
        ["b3.png", "", 1, 1, 5, 5],  # no label
    ]
    path = write_csv(root / "labels.csv", good + bad)
    loaded = load_dataset(f"csv:{path},max_side=0,val=0.25,test=0.25")
    report = loaded.report
    assert dict(report.skipped) == {
        "missing file": 1,
        "not an image": 1,
        "corrupt image": 1,
        "path outside dataset root": 3,
        "box outside image": 1,
        "empty box": 1,
        "inverted box": 1,
        "non-finite box": 1,
        "malformed annotation": 2,
    }
    assert report.n_skipped == 12
    assert report.clipped_boxes == 2
    assert report.examples["malformed annotation"][0].startswith("labels.csv:")
    assert sum(len(s) for s in (loaded.train, loaded.val, loaded.test)) == 9 + 2
    boxes = [tuple(b) for b in all_boxes(loaded)]
    assert (0, 2, 10, 10) in boxes and (30, 20, 40, 30) in boxes
    assert decodes["a0.png"] == 1  # relative and absolute rows share one decode
    assert "outside.png" not in decodes and "missing.png" not in decodes


def test_csv_missing_column_is_a_data_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "l.csv", [["x.png", "a", 1, 2, 3]], header=COLUMNS[:-1])
    with pytest.raises(DataError, match=r"l\.csv: missing column\(s\) y_max"):
        load_dataset(f"csv:{path}")


def test_csv_empty_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        load_dataset(f"csv:{path}")


def test_missing_annotation_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.csv: no such file"):
        load_dataset(f"csv:{tmp_path / 'nothing.csv'}")


def test_class_with_one_sample_is_a_data_error(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows = [[solid(root / f"{c}{i}.png", i).name, c, 1, 1, 9, 9] for c in "ab" for i in range(3)]
    rows.append([solid(root / "c0.png", 50).name, "c", 1, 1, 9, 9])
    path = write_csv(root / "labels.csv", rows)
    with pytest.raises(DataError) as caught:
        load_dataset(f"csv:{path}")
    message = str(caught.value)
    assert "class(es) 'c' (1) have fewer than 2 samples" in message
    assert "leave them out with classes=a|b" in message
    assert "\n" not in message
    data = load_dataset(f"csv:{path},classes=a|b,val=0.34,test=0.34")
    assert data.class_names == ("a", "b")
    assert data.report.skipped["class not in classes="] == 1


def test_single_class_is_a_data_error(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows = [[solid(root / f"a{i}.png", i).name, "a", 1, 1, 9, 9] for i in range(5)]
    with pytest.raises(DataError, match=r"labels\.csv: only one class \('a', 5 samples\)"):
        load_dataset(f"csv:{write_csv(root / 'labels.csv', rows)}")


def test_empty_dataset_is_a_data_error(tmp_path: Path) -> None:
    rows = [[f"gone{i}.png", "a", 1, 1, 9, 9] for i in range(3)]
    path = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(
        DataError, match=r"labels\.csv: no usable samples \(skipped: 3 missing file\)"
    ):
        load_dataset(f"csv:{path}")


def test_header_only_csv_has_no_samples(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no usable samples"):
        load_dataset(f"csv:{write_csv(tmp_path / 'labels.csv', [])}")


def test_classes_option_orders_and_filters(tmp_path: Path) -> None:
    path = balanced_csv(tmp_path / "ds", per_class=4)
    data = load_dataset(f"csv:{path},classes=fox|cat,val=0.25,test=0.25")
    assert data.class_names == ("fox", "cat")
    assert data.report.skipped == Counter({"class not in classes=": 4})
    with pytest.raises(DataError, match=r"classes= names 'wolf', not found .*found: cat, dog, fox"):
        load_dataset(f"csv:{path},classes=cat|wolf")


def test_min_size_drops_small_objects(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows: list[list[object]] = []
    for i in range(4):
        rows.append([solid(root / f"a{i}.png", i).name, "a", 0, 0, 20, 20])
        rows.append([solid(root / f"b{i}.png", 9 + i).name, "b", 0, 0, 20, 20])
        rows.append([f"b{i}.png", "b", 0, 0, 30, 3])  # 3 px on its shorter side
    data = load_dataset(f"csv:{write_csv(root / 'l.csv', rows)},min_size=4,val=0.25,test=0.25")
    assert data.report.skipped == Counter({"smaller than min_size": 4})


def test_empty_val_split_is_a_data_error(tmp_path: Path) -> None:
    path = balanced_csv(tmp_path / "ds", per_class=2, classes=("a", "b"))
    with pytest.raises(DataError, match=r"labels\.csv: the val split is empty"):
        load_dataset(f"csv:{path},val=0.01,test=0.3")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("val=1.5", r"option val=1\.5 is outside \[0, 1\]"),
        ("val=0.6,test=0.5", "leaves nothing to train on"),
        ("max_side=-1", "option max_side=-1 is outside"),
        ("seed=x", "option seed='x' is not a valid int"),
        ("colour=red", r"unknown option\(s\) colour for format 'csv'"),
        ("classes=|", "classes= names no class"),
        ("classes=a|a", "classes= repeats a"),
        ("cache=2", "option cache=2 is outside"),
    ],
)
def test_bad_options_are_data_errors(tmp_path: Path, options: str, message: str) -> None:
    path = balanced_csv(tmp_path / "ds", per_class=2)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{path},{options}")


# -- voc ------------------------------------------------------------------------------------


def voc_xml(filename: str | None, objects: list[tuple[str, ...]]) -> str:
    parts = ["<annotation>", f"<filename>{filename}</filename>" if filename else ""]
    for name, *corners in objects:
        box = "".join(
            f"<{k}>{v}</{k}>"
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True)
        )
        parts.append(
            f"<object><name>{name}</name><difficult>0</difficult><bndbox>{box}</bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


def voc_dataset(root: Path, per_class: int = 4, lists: dict[str, list[str]] | None = None) -> Path:
    (root / "Annotations").mkdir(parents=True)
    number = 0
    for label in ("bird", "boat"):
        for _ in range(per_class):
            stem = f"{number:06d}"
            solid(root / "JPEGImages" / f"{stem}.png", number)
            xml = voc_xml(f"{stem}.png", [(label, "6", "4", "15", "10")])
            (root / "Annotations" / f"{stem}.xml").write_text(xml)
            number += 1
    for name, stems in (lists or {}).items():
        folder = root / "ImageSets" / "Main"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems))
    return root


def test_voc_boxes_are_converted_to_pixel_edges(tmp_path: Path) -> None:
    root = voc_dataset(tmp_path / "VOC")
    data = load_dataset(f"voc:{root},max_side=0,val=0.25,test=0.25")
    assert data.class_names == ("bird", "boat")
    assert {tuple(b) for b in all_boxes(data)} == {(5.0, 3.0, 15.0, 10.0)}
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 8


def test_voc_image_sets_decide_the_splits(tmp_path: Path) -> None:
    lists = {
        "train": ["000000", "000001", "000004", "000005"],
        "val": ["000002", "000006"],
        "test": ["000003", "000007"],
    }
    root = voc_dataset(tmp_path / "VOC", lists=lists)
    data = load_dataset(f"voc:{root}")
    for name, stems in lists.items():
        colors = {color_of(int(stem)) for stem in stems}
        assert set(image_colors(getattr(data, name))) == colors
    assert any("ImageSets/Main train.txt, val.txt, test.txt" in note for note in data.report.notes)


def test_voc_without_test_list_carves_test_from_train(tmp_path: Path) -> None:
    train = ["000000", "000001", "000002", "000004", "000005", "000006"]
    lists = {"train": train, "val": ["000003"]}  # 000007 is in no list
    root = voc_dataset(tmp_path / "VOC", lists=lists)
    data = load_dataset(f"voc:{root},test=0.34")
    assert set(image_colors(data.val)) == {color_of(3)}
    assert len(data.test) == 2 and len(data.train) == 4
    assert set(image_colors(data.test)) <= {color_of(int(s)) for s in train}
    assert data.report.skipped == Counter({"not in a split list": 1})


def test_voc_bad_files_and_objects(tmp_path: Path) -> None:
    root = voc_dataset(tmp_path / "VOC")
    folder = root / "Annotations"
    (folder / "broken.xml").write_text("<annotation><object>")
    (folder / "other.xml").write_text("<svg></svg>")
    (folder / "nobox.xml").write_text(
        "<annotation><filename>000000.png</filename><object><name>bird</name></object></annotation>"
    )
    (folder / "text.xml").write_text(voc_xml("000001.png", [("bird", "a", "1", "5", "5")]))
    (folder / "escape.xml").write_text(voc_xml("../../outside.png", [("bird", "1", "1", "5", "5")]))
    solid(tmp_path / "outside.png")
    (folder / "inverted.xml").write_text(voc_xml("000002.png", [("boat", "9", "1", "5", "5")]))
    data = load_dataset(f"voc:{root},val=0.25,test=0.25")
    assert data.report.skipped == Counter(
        {
            "unreadable annotation file": 2,
            "malformed annotation": 2,
            "path outside dataset root": 1,
            "inverted box": 1,
        }
    )


def test_voc_without_annotations_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "VOC").mkdir()
    with pytest.raises(DataError, match="VOC: no Annotations folder"):
        load_dataset(f"voc:{tmp_path / 'VOC'}")
    (tmp_path / "VOC" / "Annotations").mkdir()
    with pytest.raises(DataError, match=r"Annotations: no \.xml annotation files"):
        load_dataset(f"voc:{tmp_path / 'VOC'}")


# -- coco -----------------------------------------------------------------------------------


def coco_document(images_dir: Path, n: int = 6) -> dict[str, list[dict[str, object]]]:
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for i in range(n):
        solid(images_dir / f"{i}.png", i)
        images.append({"id": 100 + i, "file_name": f"{i}.png", "width": 40, "height": 30})
        annotations.append(
            {
                "id": i,
                "image_id": 100 + i,
                "category_id": 3 if i % 2 else 1,
                "bbox": [2.5, 3, 10, 20],
                "iscrowd": 0,
            }
        )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 3, "name": "zebra"},
            {"id": 1, "name": "yak"},
            {"id": 7, "name": "gnu"},
        ],
    }


def test_coco_boxes_labels_and_class_order(tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco_document(tmp_path)))
    data = load_dataset(f"coco:{path},max_side=0,val=0.34,test=0.34")
    assert data.class_names == ("yak", "zebra")  # by category id; unused 'gnu' left out
    assert {tuple(b) for b in all_boxes(data)} == {(2.5, 3.0, 12.5, 23.0)}
    assert (len(data.train), len(data.val), len(data.test)) == (2, 2, 2)


def test_coco_images_option_and_bad_annotations(tmp_path: Path) -> None:
    document = coco_document(tmp_path / "pictures")
    extra = [
        {"id": 50, "image_id": 100, "category_id": 99, "bbox": [1, 1, 5, 5]},
        {"id": 51, "image_id": 100, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        {"id": 52, "image_id": 101, "category_id": 1, "bbox": [1, 1, -5, 5]},
        {"id": 53, "image_id": 101, "category_id": 1, "bbox": [math.nan, 1, 5, 5]},
        {"id": 54, "image_id": 101, "category_id": 1, "bbox": [1, 1, 5]},
        {"id": 55, "image_id": 999, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 56, "image_id": 102, "category_id": 1, "bbox": [1, 1, 0, 5]},
        {"id": 57, "image_id": 102, "category_id": 1, "bbox": [1, 1, "5", 5]},
        {"id": 58, "image_id": 103, "category_id": 3, "bbox": [30, 20, 20, 20]},
    ]
    document["annotations"] += extra
    path = tmp_path / "meta" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    data = load_dataset(f"coco:{path},images={tmp_path / 'pictures'},val=0.34,test=0.34")
    assert data.report.skipped == Counter(
        {
            "unknown category": 1,
            "crowd annotation": 1,
            "negative box size": 1,
            "non-finite box": 1,
            "malformed annotation": 2,
            "unknown image id": 1,
            "empty box": 1,
        }
    )
    assert data.report.clipped_boxes == 1
    assert data.report.examples["unknown category"] == ["instances.json annotation id 50"]


def test_coco_without_images_option_misses_files(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(coco_document(tmp_path / "pictures")))
    with pytest.raises(DataError, match=r"no usable samples \(skipped: 6 missing file\)"):
        load_dataset(f"coco:{path}")


def test_coco_malformed_json_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_text('{"images": [}')
    with pytest.raises(DataError, match=r"instances\.json: not valid JSON \(.* line 1 column 13\)"):
        load_dataset(f"coco:{path}")
    path.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(DataError, match="not a COCO instances file \\(no 'annotations' list\\)"):
        load_dataset(f"coco:{path}")
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}))
    with pytest.raises(DataError, match="category #0 has no id or name"):
        load_dataset(f"coco:{path}")


@pytest.mark.parametrize("fmt", ["mnist", "csv", "voc", "coco", "tfrecord", "folder"])
def test_located_formats_need_a_location(fmt: str) -> None:
    with pytest.raises(DataError, match=f"format '{fmt}' needs a location, as {fmt}:PATH"):
        load_dataset(f"{fmt}:seed=1")
