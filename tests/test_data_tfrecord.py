"""``tfrecord:GLOB``: Object Detection API records written with ``tf.io.TFRecordWriter``."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_DATA, search_args
from PIL import Image

from search.data import DataError, Dataset, load_dataset
from search.data import images as imaging

SIZE = (40, 30)  # (width, height) of the test images


def png(number: int, size: tuple[int, int] = SIZE, exif: Image.Exif | None = None) -> bytes:
    """A PNG of one colour per image number, so a sample tells which image it shows."""
    out = io.BytesIO()
    color = (number * 37 % 256, number * 11 % 256, 255 - number)
    image = Image.new("RGB", size, color)
    image.save(out, format="PNG", **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def color_of(number: int) -> tuple[int, int, int]:
    return (number * 37 % 256, number * 11 % 256, 255 - number)


def example(
    image: bytes | None,
    boxes: list[tuple[float, float, float, float]],
    texts: list[str] | None = None,
    labels: list[int] | None = None,
    filename: str | None = None,
) -> bytes:
    """A serialized ``tf.train.Example`` in the API layout; boxes as (xmin, ymin, xmax, ymax)."""

    def floats(values: list[float]) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    feature: dict[str, tf.train.Feature] = {
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE[1]])),
        "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[SIZE[0]])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
    }
    if image is not None:
        feature["image/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    if filename is not None:
        name = filename.encode()
        feature["image/filename"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[name]))
    for k, key in enumerate(("xmin", "ymin", "xmax", "ymax")):
        feature[f"image/object/bbox/{key}"] = floats([box[k] for box in boxes])
    if texts is not None:
        values = [t.encode() for t in texts]
        feature["image/object/class/text"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=values)
        )
    if labels is not None:
        feature["image/object/class/label"] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=labels)
        )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path: Path, records: list[bytes], gzip: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), options="GZIP" if gzip else None) as writer:
        for record in records:
            writer.write(record)
    return path


BOXES = [(0.1, 0.2, 0.5, 0.9), (0.5, 0.0, 1.0, 0.5), (0.25, 0.1, 0.75, 0.4)]


def pets(root: Path, per_file: int = 6, start: int = 0) -> list[bytes]:
    """``per_file`` images with three objects each: a cat, a dog and a cat or dog in turn."""
    records = []
    for i in range(start, start + per_file):
        texts = ["cat", "dog", "cat" if i % 2 else "dog"]
        records.append(example(png(i), BOXES, texts=texts, filename=f"img{i}.png"))
    return records


def splits(data: Dataset) -> dict[str, object]:
    return {"train": data.train, "val": data.val, "test": data.test}


def image_colors(data: Dataset) -> dict[str, set[tuple[int, ...]]]:
    return {
        name: {tuple(int(v) for v in image[0, 0]) for image in samples.images}  # type: ignore[attr-defined]
        for name, samples in splits(data).items()
    }


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each decode's image size in bytes."""
    seen: list[int] = []
    real = imaging.decode

    def counting(source: imaging.Source, expected: imaging.Probe, max_side: int) -> object:
        seen.append(len(source) if isinstance(source, bytes) else -1)
        return real(source, expected, max_side)

    monkeypatch.setattr(imaging, "decode", counting)
    return seen


def test_plain_and_gzip_files_with_several_objects(tmp_path: Path, decodes: list[int]) -> None:
    write_records(tmp_path / "rec" / "shard-a.record", pets(tmp_path, 6, 0))
    write_records(tmp_path / "rec" / "shard-b.record.gz", pets(tmp_path, 6, 6), gzip=True)
    data = load_dataset(f"tfrecord:{tmp_path / 'rec' / 'shard-*'},max_side=0,val=0.25,test=0.25")
    assert data.class_names == ("cat", "dog")
    assert data.has_boxes
    assert (len(data.train), len(data.val), len(data.test)) == (18, 9, 9)
    assert len(decodes) == 12  # each image decoded once for its three objects
    colors = image_colors(data)
    assert sum(len(c) for c in colors.values()) == 12
    assert not (colors["train"] & colors["val"]) and not (colors["val"] & colors["test"])
    boxes = {tuple(np.round(b, 3)) for s in (data.train, data.val, data.test) for b in s.boxes}
    assert boxes == {(4.0, 6.0, 20.0, 27.0), (20.0, 0.0, 40.0, 15.0), (10.0, 3.0, 30.0, 12.0)}
    assert data.train.sizes[0].tolist() == [30, 40]
    assert any("12 records in 2 files (1 gzip-compressed)" in note for note in data.report.notes)


def test_label_map_names_numeric_labels(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    records = [example(png(i), BOXES[:2], labels=[2, 1], filename=f"{i}.png") for i in range(4)] + [
        example(png(9), BOXES[:2], texts=["kitty", "puppy"])
    ]  # texts naming map items
    write_records(root / "data.tfrecord", records)
    (root / "label_map.pbtxt").write_text(
        "# pets\nitem {\n  id: 1\n  name: 'kitty'\n  display_name: \"Cat\"\n}\n"
        "item { name: \"puppy\" id: 2 keypoints { id: 0 label: 'nose' } }\n"
    )
    data = load_dataset(f"tfrecord:{root / 'data.tfrecord'},val=0.2,test=0.2")
    assert data.class_names == ("Cat", "puppy")  # by id; display_name over name
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 10
    assert any("(2 ids)" in note for note in data.report.notes)


def test_numbers_name_labels_without_a_label_map(tmp_path: Path) -> None:
    records = [example(png(i), BOXES[:2], labels=[10, 2]) for i in range(4)]
    records += [example(png(i), BOXES[:2], labels=[7, 2]) for i in range(4, 6)]
    path = write_records(tmp_path / "numbers.record", records)
    data = load_dataset(f"tfrecord:{path},val=0.25,test=0.25")
    assert data.class_names == ("2", "7", "10")  # numeric order
    assert any("label map: none" in note for note in data.report.notes)
    other = tmp_path / "maps" / "pets.pbtxt"  # explicit, since it is not beside the records
    other.parent.mkdir()
    other.write_text("item { id: 2 name: 'two' }\nitem { id: 10 name: 'ten' }\n")
    mapped = load_dataset(f"tfrecord:{path},label_map={other},val=0.25,test=0.25")
    assert mapped.class_names == ("two", "ten")
    assert mapped.report.skipped == Counter({"unknown category": 2})
    first = mapped.report.examples["unknown category"][0]
    assert first == "numbers.record record 4 object 1 (label 7)"


def test_bad_samples_are_skipped_and_counted(tmp_path: Path) -> None:
    good = pets(tmp_path, 8)
    nan = float("nan")
    bad = [
        example(b"not an image at all", BOXES[:2], texts=["cat", "dog"]),  # 2 not an image
        example(png(1)[:60], BOXES[:1], texts=["cat"]),  # 1 corrupt image
        example(None, BOXES[:1], texts=["cat"], filename="gone.png"),  # 1 no image/encoded
        example(png(2), [(0.1, 0.1, 1.2, 0.5), (-0.5, 0.1, 0.5, 0.5)], texts=["cat", "dog"]),
        example(png(3), [(0.6, 0.1, 0.2, 0.5), (0.3, 0.3, 0.3, 0.6)], texts=["cat", "dog"]),
        example(png(4), [(nan, 0.1, 0.2, 0.5)], texts=["cat"]),  # 1 non-finite
        example(png(5), BOXES[:2], texts=["cat", ""]),  # 1 missing label (empty text)
        example(png(6), BOXES[:2]),  # 2 missing label (no class lists)
        example(png(7), BOXES[:2], texts=["cat"]),  # 2 mismatched: 2 boxes, 1 text
        example(png(8), BOXES[:2], texts=["cat", "dog"], labels=[1]),  # 2 mismatched
        example(png(10), [], texts=[]),  # no objects: nothing to count
        b"\x08\x01garbage that is no Example",  # 1 unreadable record
    ]
    path = write_records(tmp_path / "mixed.record", good + bad)
    data = load_dataset(f"tfrecord:{path},val=0.25,test=0.25")
    assert dict(data.report.skipped) == {
        "not an image": 2,
        "corrupt image": 1,
        "no image/encoded": 1,
        "box outside [0, 1]": 2,
        "inverted box": 1,
        "empty box": 1,
        "non-finite box": 1,
        "missing label": 3,
        "mismatched list lengths": 4,
        "unreadable record": 1,
    }
    assert sum(len(s) for s in (data.train, data.val, data.test)) == 24 + 1  # the 'cat' of png(5)
    assert data.report.examples["no image/encoded"] == ["mixed.record record 10 (gone.png)"]
    assert any("1 without objects" in note for note in data.report.notes)


def test_file_names_decide_the_splits(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    write_records(root / "pets_train.record-00000-of-00001", pets(tmp_path, 8, 0))
    write_records(root / "pets_val.record-00000-of-00001", pets(tmp_path, 2, 20))
    data = load_dataset(f"tfrecord:{root},test=0.25")
    colors = image_colors(data)
    assert colors["val"] == {color_of(20), color_of(21)}
    assert len(colors["test"]) == 2 and len(colors["train"]) == 6  # test carved from train
    assert any("splits: from file names" in note for note in data.report.notes)


def test_exif_orientation_moves_the_box(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    records = [
        example(png(i, exif=exif), [(0.25, 0.1, 0.5, 0.3)], texts=["turned"]) for i in range(3)
    ] + [example(png(5 + i), [(0.0, 0.0, 0.5, 0.5)], texts=["plain"]) for i in range(3)]
    path = write_records(tmp_path / "turned.record", records)
    data = load_dataset(f"tfrecord:{path},max_side=0,val=0.34,test=0.34")
    turned = data.class_names.index("turned")
    for samples in (data.train, data.val, data.test):
        for size, box, label in zip(samples.sizes, samples.boxes, samples.labels, strict=True):
            if label == turned:
                assert size.tolist() == [40, 30]  # (height, width): swapped
                # stored box (10, 3, 20, 9) in a 40x30 image, turned: (30 - 9, 10, 30 - 3, 20)
                assert np.allclose(box, [21, 10, 27, 20], atol=1e-4)


def test_options_resize_select_and_filter(tmp_path: Path) -> None:
    path = write_records(tmp_path / "p.record", pets(tmp_path, 8))
    spec = f"tfrecord:{path},max_side=20,classes=dog|cat,min_size=10,val=0.25,test=0.25"
    data = load_dataset(spec)
    assert data.class_names == ("dog", "cat")
    assert data.train.images.shape[1:] == (15, 20, 3)  # 40x30 at longest side 20
    assert np.allclose(data.train.sizes, [15, 20])
    # the third box of each image is 20x9 pixels in the original, under min_size=10
    assert data.report.skipped == Counter({"smaller than min_size": 8})


def test_cache_skips_reading_the_records_again(tmp_path: Path) -> None:
    path = write_records(tmp_path / "p.record", pets(tmp_path, 6))
    first = load_dataset(f"tfrecord:{path},val=0.34,test=0.34")
    again = load_dataset(f"tfrecord:{path},val=0.34,test=0.34")
    assert first.fingerprint == again.fingerprint
    assert any(note.startswith("cache: loaded") for note in again.report.notes)
    write_records(path, pets(tmp_path, 6, 1))
    changed = load_dataset(f"tfrecord:{path},val=0.34,test=0.34")
    assert changed.fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is a text file, not records " * 4, r"bad\.record: not a TFRecord file"),
        (b"\x1f\x8b\x08\x00broken gzip", r"bad\.record: not a TFRecord file"),
    ],
)
def test_a_file_that_is_not_tfrecord_is_a_data_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.record"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(f"tfrecord:{path}")
    assert "\n" not in str(caught.value)


def test_a_truncated_file_is_a_data_error(tmp_path: Path) -> None:
    path = write_records(tmp_path / "cut.record", pets(tmp_path, 4))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"cut\.record: unreadable after 3 records \(truncated"):
        load_dataset(f"tfrecord:{path}")


@pytest.mark.parametrize(
    ("label_map", "message"),
    [
        ("item { name: 'cat' }", "item 1 has no integer id"),
        ("item { id: 1 }", "item id 1 has no name"),
        ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", "id 1 appears twice"),
        ("item { id: 1 name: 'a'", "an item is not closed"),
        ("labels: 3", "expected 'item {'"),
        ("", "no items"),
    ],
)
def test_a_malformed_label_map_is_a_data_error(
    tmp_path: Path, label_map: str, message: str
) -> None:
    write_records(tmp_path / "p.record", pets(tmp_path, 2))
    (tmp_path / "label_map.pbtxt").write_text(label_map)
    with pytest.raises(DataError, match=rf"label_map\.pbtxt: not a label map \({message}"):
        load_dataset(f"tfrecord:{tmp_path / 'p.record'}")


def test_no_matching_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing-\*\.record: no file matches"):
        load_dataset(f"tfrecord:{tmp_path / 'nothing-*.record'}")
    with pytest.raises(DataError, match=r"no \.record/\.tfrecord files in"):
        load_dataset(f"tfrecord:{tmp_path}")


@pytest.mark.slow
def test_search_and_export_on_tfrecords(tmp_path: Path) -> None:
    from search.cli import main

    records = []
    rng = np.random.default_rng(0)
    for i in range(24):  # a bright square (class 'square') or bar (class 'bar') on noise
        pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
        square = i % 2 == 0
        x, y = int(rng.integers(2, 16)), int(rng.integers(2, 16))
        w, h = (10, 10) if square else (14, 4)
        pixels[y : y + h, x : x + w] = 255
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="PNG")
        box = (x / 32, y / 32, (x + w) / 32, (y + h) / 32)
        records.append(example(out.getvalue(), [box], texts=["square" if square else "bar"]))
    write_records(tmp_path / "shapes.record.gz", records, gzip=True)
    args = search_args(tmp_path, "tfrecord")
    args[args.index(TINY_DATA)] = f"tfrecord:{tmp_path / 'shapes.record.gz'},val=0.25,test=0.25"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0, out.getvalue()
        storage = f"sqlite:///{tmp_path}/optuna.db"
        policy = tmp_path / "best.yaml"
        assert main(["export", "--study", "tfrecord", "--storage", storage, "-o", str(policy)]) == 0
    assert policy.exists()
