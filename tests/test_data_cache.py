"""The decode cache (hit, miss on change, bypass, broken entries) and the memory limit."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, load_dataset
from search.data import images as imaging
from search.data.cache import cache_dir


@pytest.fixture
def dataset_csv(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    rows = []
    for i in range(12):
        label = "ab"[i % 2]
        Image.new("RGB", (32, 24), (i * 20, 255 - i * 20, 7)).save(root / f"{i}.png")
        rows.append([f"{i}.png", label, 1, 2, 20, 22])
    path = root / "labels.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "label", "x_min", "y_min", "x_max", "y_max"])
        writer.writerows(rows)
    return path


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = imaging.decode

    def counting(path: Path, expected: imaging.Probe, max_side: int) -> object:
        calls.append(path.name)
        return real(path, expected, max_side)

    monkeypatch.setattr(imaging, "decode", counting)
    return calls


def test_cache_folder_comes_from_the_environment(cache_folder: Path) -> None:
    assert cache_dir() == cache_folder


def test_second_load_hits_the_cache(
    dataset_csv: Path, cache_folder: Path, decode_calls: list[str]
) -> None:
    spec = f"csv:{dataset_csv},val=0.25,test=0.25"
    first = load_dataset(spec)
    entries = list(cache_folder.glob("csv-*.npz"))
    assert len(entries) == 1 and len(decode_calls) == 12
    assert first.report.notes[-1] == f"cache: decoded and stored in {entries[0]}"
    stamp = entries[0].stat().st_mtime_ns
    second = load_dataset(spec)
    assert len(decode_calls) == 12  # nothing decoded again
    assert entries[0].stat().st_mtime_ns == stamp  # and nothing rewritten
    assert second.report.notes[-1] == f"cache: loaded {entries[0]}"
    assert second.fingerprint == first.fingerprint
    assert second.class_names == first.class_names
    for name in ("train", "val", "test"):
        a, b = getattr(first, name), getattr(second, name)
        for field in ("images", "sizes", "boxes", "labels"):
            assert np.array_equal(getattr(a, field), getattr(b, field))


def test_a_touched_image_misses_the_cache(
    dataset_csv: Path, cache_folder: Path, decode_calls: list[str]
) -> None:
    spec = f"csv:{dataset_csv},val=0.25,test=0.25"
    load_dataset(spec)
    image = dataset_csv.parent / "3.png"
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_dataset(spec)
    assert len(decode_calls) == 24
    assert len(list(cache_folder.glob("csv-*.npz"))) == 2


def test_edited_annotations_or_options_miss_the_cache(
    dataset_csv: Path, cache_folder: Path, decode_calls: list[str]
) -> None:
    load_dataset(f"csv:{dataset_csv},val=0.25,test=0.25")
    load_dataset(f"csv:{dataset_csv},val=0.25,test=0.25,max_side=16")
    assert len(list(cache_folder.glob("csv-*.npz"))) == 2
    with dataset_csv.open("a") as file:
        file.write("0.png,b,3,3,9,9\n")
    load_dataset(f"csv:{dataset_csv},val=0.25,test=0.25")
    assert len(list(cache_folder.glob("csv-*.npz"))) == 3
    assert len(decode_calls) == 36
    load_dataset(f"csv:{dataset_csv},test=0.25,val=0.25,max_memory=2")  # same content
    assert len(decode_calls) == 36


def test_cache_off_neither_reads_nor_writes(
    dataset_csv: Path, cache_folder: Path, decode_calls: list[str]
) -> None:
    data = load_dataset(f"csv:{dataset_csv},val=0.25,test=0.25,cache=0")
    assert not cache_folder.exists() or not list(cache_folder.iterdir())
    assert data.report.notes[-1] == "cache: off (cache=0)"
    assert len(decode_calls) == 12


def test_a_broken_cache_entry_is_rebuilt(
    dataset_csv: Path, cache_folder: Path, decode_calls: list[str]
) -> None:
    spec = f"csv:{dataset_csv},val=0.25,test=0.25"
    first = load_dataset(spec)
    (entry,) = cache_folder.glob("csv-*.npz")
    entry.write_bytes(b"PK\x03\x04 not really a zip")
    second = load_dataset(spec)
    assert len(decode_calls) == 24
    assert second.fingerprint == first.fingerprint
    assert load_dataset(spec).report.notes[-1].startswith("cache: loaded")


def test_skips_survive_the_cache(tmp_path: Path, dataset_csv: Path) -> None:
    with dataset_csv.open("a") as file:
        file.write("missing.png,a,1,1,5,5\n0.png,a,-4,1,5,5\n")
    spec = f"csv:{dataset_csv},val=0.25,test=0.25"
    first, second = load_dataset(spec), load_dataset(spec)
    assert second.report.skipped == first.report.skipped == {"missing file": 1}
    assert second.report.clipped_boxes == first.report.clipped_boxes == 1
    assert second.report.examples == {"missing file": ["missing.png"]}


def test_memory_limit_stops_before_decoding(
    dataset_csv: Path, decode_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = f"csv:{dataset_csv},max_memory=0.00001"
    with pytest.raises(DataError) as caught:
        load_dataset(spec)
    message = str(caught.value)
    assert message.startswith(f"{spec}: the decoded canvases would need 2.57e-05 GiB")
    assert "(12 samples x 24x32x3 bytes), over the 1e-05 GiB limit" in message
    assert "max_memory=" in message and "CROPSEARCH_MAX_MEMORY" in message
    assert decode_calls == []
    monkeypatch.setenv("CROPSEARCH_MAX_MEMORY", "0.00001")
    with pytest.raises(DataError, match="over the 1e-05 GiB limit"):
        load_dataset(f"csv:{dataset_csv}")
    assert load_dataset(f"csv:{dataset_csv},max_memory=1,val=0.25,test=0.25")
    monkeypatch.setenv("CROPSEARCH_MAX_MEMORY", "lots")
    with pytest.raises(DataError, match="CROPSEARCH_MAX_MEMORY='lots' is not a number of GiB"):
        load_dataset(f"csv:{dataset_csv}")
